package evil_test

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"go.podman.io/storage/pkg/archive"

	"github.com/forge-build/forge/tests/internal/evil"
)

// FuzzUnpackLayer applies arbitrary tar streams as a layer with storage's
// pkg/archive.UnpackLayer, the extraction (with whiteout handling) under every layer forge
// pulls and every archive ADD unpacks, on top of a lower layer that holds symlinks out of
// the root: `evil -> /`, `up -> ../../..`, `out -> ../outside`, and an absolute link to
// that outside directory. Whatever the stream, nothing may change outside the layer's
// root: the sibling directory `outside` and its sentinel files stay as they were, and no
// new file appears next to the root. forge adds chrooted extraction on top; this target
// checks the path resolution alone, which must hold without it.
//
// Run it as an ordinary user (go test -fuzz FuzzUnpackLayer ./tests/internal/evil/): a
// regression writes wherever the fuzzing user can.
func FuzzUnpackLayer(f *testing.F) {
	logrus.SetOutput(io.Discard) // pkg/archive logs each ignored chown error
	for _, seed := range unpackSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, layer []byte) {
		parent := t.TempDir()
		root, outside := filepath.Join(parent, "layer"), filepath.Join(parent, "outside")
		lower(t, root, outside)
		before := tree(t, outside)
		opts := &archive.TarOptions{NoLchown: true, InUserNS: true, IgnoreChownErrors: true}
		_, _ = archive.UnpackLayer(root, bytes.NewReader(layer), opts) // errors are fine; escapes are not
		if after := tree(t, outside); after != before {
			t.Fatalf("the layer changed a directory outside its root:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "layer" && e.Name() != "outside" {
				t.Fatalf("the layer created %s next to its root", e.Name())
			}
		}
	})
}

// lower makes the layer's root as a lower layer left it, and the outside directory.
func lower(t *testing.T, root, outside string) {
	t.Helper()
	for _, d := range []string{filepath.Join(root, "d", "sub"), filepath.Join(outside, "d")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		filepath.Join(root, "d", "a"): "a", filepath.Join(root, "d", "sub", "b"): "b",
		filepath.Join(outside, "secret"): "secret", filepath.Join(outside, "d", "file"): "file",
	} {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{
		"evil": "/", "up": "../../../../../../../..", "out": "../outside", "abs": outside, "d/sub/back": "../../../outside",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// tree describes every file below dir: path, type, mode, link count, size, content.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		b.WriteString(p + " " + fi.Mode().String())
		if fi.Mode().IsRegular() {
			content, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.WriteString(" " + string(content))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return b.String()
}

// unpackSeeds are the hostile layers of tests/hostile_layers_test.go, aimed at the
// outside directory.
func unpackSeeds() [][]byte {
	up := strings.Repeat("../", 12)
	e := func(entries ...evil.Entry) []byte { return evil.MustTar(entries...) }
	f := func(name string) evil.Entry { return evil.File(name, "x") }
	return [][]byte{
		e(f("../outside/x"), f("./../outside/x"), f("a/../../outside/x"), f("/outside/x"), f(up+"x")),
		e(f("evil/x"), f("up/x"), f("out/x"), f("abs/x"), f("d/sub/back/x")),
		e(evil.Symlink("s", "/"), f("s/x"), evil.Symlink("t", "../outside"), f("t/x")),
		e(evil.Hardlink("h", "../outside/secret"), evil.Hardlink("h2", "out/secret"), evil.Hardlink("out/h3", "d/a")),
		e(evil.Symlink(".", "../outside"), f("x")),
		e(evil.Symlink("", "/"), evil.Symlink("/", "/"), f("x")),
		e(f(".wh."), f(".wh.."), f(".wh..."), f("d/.wh..wh..opq"), f("d/.wh..wh..opqX")),
		e(f("out/.wh.secret"), f("out/.wh..wh..opq"), f("abs/d/.wh.file"), f("up/.wh.x"), f("../outside/.wh.secret")),
		e(evil.Whiteout("d"), evil.Dir("d/"), f("d/new"), evil.Whiteout("nothere"), evil.Whiteout("evil")),
		e(f("x"), evil.Dir("x/"), evil.Symlink("x", "../outside"), f("x/y")),
		e(evil.Entry{Name: "fifo", Type: '6'}, evil.Entry{Name: "null", Type: '3', Major: 1, Minor: 3}),
		e(evil.Entry{Name: "out", Type: '5'}, f("out/x")),
		evil.SparseTar("sparse", "data", 1<<20),
	}
}
