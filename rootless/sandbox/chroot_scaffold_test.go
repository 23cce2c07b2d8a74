package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// imageTree makes a small root filesystem whose every entry has an old modification time,
// as an unpacked image has.
func imageTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{"etc/hosts": "127.0.0.1 image\n", "etc/passwd": "root:x:0:0::/root:/bin/sh\n", "bin/sh": "#!"}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []string{"etc/hosts", "etc/passwd", "bin/sh", "etc", "bin", "empty", "."} {
		if err := os.Chtimes(filepath.Join(root, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// describe lists every entry under root with its type, mode, size, modification time and
// content: what a layer made by comparing before and after would see.
func describe(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v %d %s", p[len(root):], fi.Mode(), fi.Size(), fi.ModTime().UTC().Format(time.RFC3339Nano))
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " " + string(data)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func chrootConfig(t *testing.T) Config {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o400); err != nil {
		t.Fatal(err)
	}
	return Config{
		Volumes: []Volume{{Source: src, Dest: "/src", ReadOnly: true}, {Source: secret, Dest: "/run/secrets/token"},
			{Root: src, Source: ".", Dest: "/empty"}},
		Tmpfs: []Tmpfs{{Dest: "/scratch"}},
	}
}

// TestScaffoldLeavesNoTrace: what chroot isolation puts into a root filesystem for a run
// is there during the run and, afterwards, gone without a trace in names, modes, sizes,
// times or contents.
func TestScaffoldLeavesNoTrace(t *testing.T) {
	t.Parallel()
	root := imageTree(t)
	before := describe(t, root)
	sc := &scaffold{root: root, log: slog.New(slog.DiscardHandler)}
	err := sc.build(context.Background(), chrootConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"src/main.go": "package main\n", "empty/main.go": "package main\n", "run/secrets/token": "s3cret",
		"etc/resolv.conf": hostFile("/etc/resolv.conf"),
	} {
		if got, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(got) != want {
			t.Errorf("during the run, /%s = %q, %v; want %q", p, got, err, want)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc/hosts")); string(got) == "127.0.0.1 image\n" {
		t.Errorf("during the run, /etc/hosts is still the image's")
	}
	if fi, err := os.Stat(filepath.Join(root, "scratch")); err != nil || !fi.IsDir() {
		t.Errorf("during the run, /scratch is not a directory: %v", err)
	}
	if err := sc.undo(); err != nil {
		t.Fatal(err)
	}
	if after := describe(t, root); !slices.Equal(before, after) {
		t.Errorf("the root filesystem changed:\nbefore %q\nafter  %q", before, after)
	}
}

// TestScaffoldDropsEditsOfMountedFiles: /etc/hosts and /etc/resolv.conf stand for the
// bind mounts a build with namespaces makes, where a command's edits never reach the
// image: the image's own file gets its content back, the file made for the run goes,
// even when the command edited them.
func TestScaffoldDropsEditsOfMountedFiles(t *testing.T) {
	t.Parallel()
	root := imageTree(t)
	hosts := filepath.Join(root, "etc/hosts")
	orig, err := os.ReadFile(hosts)
	if err != nil {
		t.Fatal(err)
	}
	sc := &scaffold{root: root, log: slog.New(slog.DiscardHandler)}
	if err := sc.build(context.Background(), Config{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	for _, p := range []string{"etc/hosts", "etc/resolv.conf"} {
		f, err := os.OpenFile(filepath.Join(root, p), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("10.0.0.1 mine\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if err := sc.undo(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(hosts); string(got) != string(orig) {
		t.Errorf("/etc/hosts after the run holds %q, want the image's %q", got, orig)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/resolv.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/etc/resolv.conf, made for the run and edited by it, is still there: %v", err)
	}
}

// TestScaffoldKeepsCache: what the command writes to a cache mount (a writable volume in
// a Root) is in the cache afterwards; what it writes to another volume is not.
func TestScaffoldKeepsCache(t *testing.T) {
	t.Parallel()
	root, cache, other := imageTree(t), t.TempDir(), t.TempDir()
	sc := &scaffold{root: root, log: slog.New(slog.DiscardHandler)}
	err := sc.build(context.Background(), Config{Volumes: []Volume{{Root: cache, Source: "", Dest: "/cache"}, {Source: other, Dest: "/other"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"cache/hit", "other/lost"} {
		if err := os.WriteFile(filepath.Join(root, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := sc.undo(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(cache, "hit")); err != nil || string(got) != "x" {
		t.Errorf("the cache lost what the command wrote: %q, %v", got, err)
	}
	if _, err := os.Lstat(filepath.Join(other, "lost")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a plain volume got what the command wrote: %v", err)
	}
}

// TestScaffoldRefusesToCover: a mount target the image has files at needs a real mount.
func TestScaffoldRefusesToCover(t *testing.T) {
	t.Parallel()
	root := imageTree(t)
	sc := &scaffold{root: root, log: slog.New(slog.DiscardHandler)}
	err := sc.build(context.Background(), Config{Tmpfs: []Tmpfs{{Dest: "/etc"}}})
	if !errors.Is(err, ErrNeedsNamespaces) {
		t.Errorf("a tmpfs over /etc: got %v, want ErrNeedsNamespaces", err)
	}
	if err := sc.undo(); err != nil {
		t.Fatal(err)
	}
}

// TestScaffoldStaysInside: a command that replaces a directory holding a copied volume
// with a symlink out of the root does not make the undo remove anything outside.
func TestScaffoldStaysInside(t *testing.T) {
	t.Parallel()
	root, outside := imageTree(t), t.TempDir()
	victim := filepath.Join(outside, "secrets", "token")
	if err := os.MkdirAll(filepath.Dir(victim), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o400); err != nil {
		t.Fatal(err)
	}
	sc := &scaffold{root: root, log: slog.New(slog.DiscardHandler)}
	if err := sc.build(context.Background(), Config{Volumes: []Volume{{Source: secret, Dest: "/run/secrets/token"}}}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "run")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "run")); err != nil {
		t.Fatal(err)
	}
	_ = sc.undo()
	if got, err := os.ReadFile(victim); err != nil || string(got) != "keep" {
		t.Errorf("a file outside the root was touched: %q, %v", got, err)
	}
}

// TestScaffoldLeavesSymlinks: an image whose /etc/resolv.conf is a symlink (to a file
// that exists only on a running system) keeps it, and the run starts.
func TestScaffoldLeavesSymlinks(t *testing.T) {
	t.Parallel()
	root := imageTree(t)
	link := filepath.Join(root, "etc/resolv.conf")
	if err := os.Symlink("../run/systemd/resolve/stub-resolv.conf", link); err != nil {
		t.Fatal(err)
	}
	sc := &scaffold{root: root, log: slog.New(slog.DiscardHandler)}
	if err := sc.build(context.Background(), Config{}); err != nil {
		t.Fatal(err)
	}
	if err := sc.undo(); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(link); err != nil || target != "../run/systemd/resolve/stub-resolv.conf" {
		t.Errorf("/etc/resolv.conf: %q, %v; want the image's symlink", target, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "run")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/run was made for the symlink's target: %v", err)
	}
}
