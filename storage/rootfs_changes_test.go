package storage

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.podman.io/storage/pkg/archive"
	"golang.org/x/sys/unix"
)

// writeTree makes files (name -> content; a name ending in "/" is a directory) under dir,
// all with the same old modification time, as an unpacked layer has them.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	old := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if name[len(name)-1] == '/' {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Deepest first, so that setting a file's time does not change its directory's after.
	slices.Reverse(names)
	for _, name := range names {
		if err := os.Chtimes(filepath.Join(dir, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// rewrite replaces the content of p in place and gives it its old times back, so that
// only its inode change time tells.
func rewrite(t *testing.T, p, content string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.UtimesNano(p, []unix.Timespec{st.Atim, st.Mtim}); err != nil {
		t.Fatal(err)
	}
}

func TestDiffTree(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"a": "one", "same": "s", "gone-file": "x", "mode": "m",
		"d/": "", "d/x": "old x", "d/y": "y",
		"gone/": "", "gone/1": "1", "gone/sub/2": "2",
		"keep/": "", "keep/f": "f", "keep/sub/deep": "d", "linked": "l",
	}
	parent, root := t.TempDir(), t.TempDir()
	writeTree(t, parent, files)
	writeTree(t, root, files) // the container's copy of its image
	ctx := context.Background()
	before, err := readRecord(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	// No pause: readRecord returns only once a change gets a later change time.
	rewrite(t, filepath.Join(root, "a"), "two")  // same size and times, other content
	rewrite(t, filepath.Join(root, "same"), "s") // written, but the same content
	if err := os.Chmod(filepath.Join(root, "mode"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "keep/sub/deep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "gone-file")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "gone")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "d")); err != nil {
		t.Fatal(err)
	}
	writeTree(t, root, map[string]string{"d/x": "old x", "new/n": "n"})
	if err := os.Link(filepath.Join(root, "linked"), filepath.Join(root, "new/link")); err != nil {
		t.Fatal(err)
	}

	got, err := diffTree(ctx, root, parent, before)
	if err != nil {
		t.Fatal(err)
	}
	want := []archive.Change{
		{Path: "/a", Kind: archive.ChangeModify},
		{Path: "/d", Kind: archive.ChangeModify},
		{Path: "/d/.wh..opq", Kind: archive.ChangeDelete},
		{Path: "/d/x", Kind: archive.ChangeAdd}, // in a replaced directory: there, even unchanged
		{Path: "/gone", Kind: archive.ChangeDelete},
		{Path: "/gone-file", Kind: archive.ChangeDelete},
		{Path: "/keep", Kind: archive.ChangeModify}, // holds a change, as overlay copies it up
		{Path: "/keep/sub", Kind: archive.ChangeModify},
		{Path: "/keep/sub/deep", Kind: archive.ChangeModify},
		{Path: "/linked", Kind: archive.ChangeModify}, // unchanged, but the first name of a new link
		{Path: "/mode", Kind: archive.ChangeModify},
		{Path: "/new", Kind: archive.ChangeAdd},
		{Path: "/new/link", Kind: archive.ChangeAdd},
		{Path: "/new/n", Kind: archive.ChangeAdd},
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes:\n got %v\nwant %v", got, want)
	}
}

func TestDiffTreeNothingChanged(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTree(t, root, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n", "bin/": ""})
	ctx := context.Background()
	before, err := readRecord(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := diffTree(ctx, root, "", before)
	if err != nil || len(got) != 0 {
		t.Errorf("want no changes, got %v, %v", got, err)
	}
}
