package commit

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/forge-build/forge/storage"
)

// inodeOf returns the inode number of path.
func inodeOf(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return inode(fi)
}

// TestCommitConsume: a commit of a container that is removed afterwards moves the
// container's changes into the new layer on overlay (the same inodes, nothing copied),
// copies them on vfs, and either way gives the same image a copying commit gives: the
// same files and whiteouts, a diff_id that matches what the store and a push reproduce.
func TestCommitConsume(t *testing.T) {
	for _, driver := range drivers() {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture(t, driver)
			f.change(t)
			st := f.s.Storage()
			var before uint64
			upper, err := st.DifferTarget(f.c.LayerID)
			if driver == "overlay" {
				if err != nil {
					t.Fatal(err)
				}
				before = inodeOf(t, filepath.Join(upper, "new.txt"))
			}

			id, err := Commit(ctx, f.s, f.c, Options{Consume: true})
			if err != nil {
				t.Fatal(err)
			}
			img, err := st.Image(id)
			if err != nil {
				t.Fatal(err)
			}
			layer, err := st.Layer(img.TopLayer)
			if err != nil {
				t.Fatal(err)
			}
			if driver == "overlay" {
				dir, err := st.DifferTarget(layer.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got := inodeOf(t, filepath.Join(dir, "new.txt")); got != before {
					t.Errorf("new.txt in the new layer is inode %d, the container's was %d: copied, not moved", got, before)
				}
				if left, err := os.ReadDir(upper); err != nil || len(left) != 0 {
					t.Errorf("container layer after the move: %v entries, err %v; want an empty directory", len(left), err)
				}
			}

			// The store reproduces the recorded bytes from the moved files.
			rc, err := st.Diff("", layer.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			diff, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if got := digest.FromBytes(diff); got != layer.UncompressedDigest || int64(len(diff)) != layer.UncompressedSize {
				t.Errorf("diff of the new layer: %s (%d bytes), layer records %s (%d bytes)",
					got, len(diff), layer.UncompressedDigest, layer.UncompressedSize)
			}
			cfg := imageConfig(t, f.s, id)
			if ids := cfg.RootFS.DiffIDs; len(ids) != 2 || ids[1] != layer.UncompressedDigest {
				t.Errorf("diff_ids %v, want the new layer's %s last", ids, layer.UncompressedDigest)
			}
			names := tarNames(t, bytes.NewReader(diff))
			for _, w := range []string{"new.txt", "etc/.wh.remove-me", "dir/c"} {
				if !slices.Contains(names, w) {
					t.Errorf("layer %v lacks %s", names, w)
				}
			}
			// overlay records the replaced directory as opaque, vfs whiteouts its old files.
			if !slices.Contains(names, "dir/.wh..wh..opq") && !slices.Contains(names, "dir/.wh.a") {
				t.Errorf("layer %v does not hide the old contents of dir", names)
			}

			// What a container of the new image sees.
			if err := f.s.RemoveContainer(f.c); err != nil {
				t.Fatal(err)
			}
			c := newContainer(t, f.s, id)
			root, err := f.s.Mount(c)
			if err != nil {
				t.Fatal(err)
			}
			defer f.s.Unmount(c, false)
			if b, err := os.ReadFile(filepath.Join(root, "new.txt")); err != nil || string(b) != "new\n" {
				t.Errorf("new.txt: %q, %v", b, err)
			}
			if _, err := os.Lstat(filepath.Join(root, "etc/remove-me")); !os.IsNotExist(err) {
				t.Errorf("etc/remove-me is back: %v", err)
			}
			if ents, err := os.ReadDir(filepath.Join(root, "dir")); err != nil || len(ents) != 1 || ents[0].Name() != "c" {
				t.Errorf("dir holds %v (%v), want only c", ents, err)
			}

			// A push sends a layer whose content matches the config's diff_id.
			layout := t.TempDir()
			if _, err := f.s.Push(ctx, id, "oci:"+layout+":t", storage.PushOptions{}); err != nil {
				t.Fatal(err)
			}
			man := readLayoutManifest(t, layout)
			pushed, err := io.ReadAll(layoutBlob(t, layout, man.Layers[len(man.Layers)-1]))
			if err != nil {
				t.Fatal(err)
			}
			if got := digest.FromBytes(pushed); got != layer.UncompressedDigest {
				t.Errorf("pushed layer uncompresses to %s, diff_id is %s", got, layer.UncompressedDigest)
			}
		})
	}
}

// TestCommitConsumeMounted: a container someone still has mounted is copied, not moved.
func TestCommitConsumeMounted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "overlay")
	f.change(t)
	root, err := f.s.Mount(f.c)
	if err != nil {
		t.Fatal(err)
	}
	defer f.s.Unmount(f.c, false)
	if _, err := Commit(context.Background(), f.s, f.c, Options{Consume: true}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "new.txt")); err != nil || string(b) != "new\n" {
		t.Errorf("the mounted container lost new.txt: %q, %v", b, err)
	}
}

// TestCommitConsumeNoChanges: a consumed container without changes adds no layer.
func TestCommitConsumeNoChanges(t *testing.T) {
	for _, driver := range drivers() {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, driver)
			before := layerCount(t, f.s)
			id, err := Commit(context.Background(), f.s, f.c, Options{Consume: true, Changes: []string{"ENV A=1"}})
			if err != nil {
				t.Fatal(err)
			}
			if got := layerCount(t, f.s); got != before {
				t.Errorf("layers: %d, want %d (no new layer)", got, before)
			}
			if cfg := imageConfig(t, f.s, id); len(cfg.RootFS.DiffIDs) != 1 {
				t.Errorf("diff_ids %v, want only the base's", cfg.RootFS.DiffIDs)
			}
		})
	}
}
