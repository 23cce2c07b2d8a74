package commit

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A linked layer keeps its digest on every image it is put on.
func TestCommitLink(t *testing.T) {
	for _, driver := range drivers() {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture(t, driver)
			// The layer: made in an empty container.
			lc := newContainer(t, f.s, "scratch")
			root, err := f.s.Mount(lc)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(root, "app"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "app/linked.txt"), []byte("linked\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := f.s.Unmount(lc, false); err != nil {
				t.Fatal(err)
			}
			linked, err := Commit(ctx, f.s, lc, Options{})
			if err != nil {
				t.Fatal(err)
			}
			want := imageConfig(t, f.s, linked).RootFS.DiffIDs
			// Two different images below it: the base, and the base with changes.
			f.change(t)
			changed, err := Commit(ctx, f.s, f.c, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, below := range []string{f.baseID, changed} {
				c := newContainer(t, f.s, below)
				c.Config.Config.Cmd = []string{"linked"}
				id, err := CommitLink(ctx, f.s, c, linked, Options{CreatedBy: "COPY --link"})
				if err != nil {
					t.Fatal(err)
				}
				cfg := imageConfig(t, f.s, id)
				belowIDs := imageConfig(t, f.s, below).RootFS.DiffIDs
				if !slices.Equal(cfg.RootFS.DiffIDs, append(slices.Clone(belowIDs), want...)) {
					t.Errorf("diff IDs %v, want %v then the linked layer's %v", cfg.RootFS.DiffIDs, belowIDs, want)
				}
				if h := cfg.History[len(cfg.History)-1]; h.CreatedBy != "COPY --link" || h.EmptyLayer {
					t.Errorf("history entry %+v", h)
				}
				if !slices.Equal(cfg.Config.Cmd, []string{"linked"}) {
					t.Errorf("Cmd %q: the container's configuration is the image's", cfg.Config.Cmd)
				}
				if names := topLayerFiles(t, f.s, id); !slices.Contains(names, "app/linked.txt") || slices.Contains(names, "new.txt") {
					t.Errorf("top layer %v: want the linked layer only", names)
				}
			}
			// An image of more than one layer is refused, and leaves no layer behind.
			before := layerCount(t, f.s)
			if _, err := CommitLink(ctx, f.s, newContainer(t, f.s, f.baseID), changed, Options{}); err == nil {
				t.Error("an image of two layers was linked")
			}
			if got := layerCount(t, f.s); got != before+1 { // the container's own layer
				t.Errorf("layers: %d, want %d", got, before+1)
			}
		})
	}
}
