package commit

import (
	"context"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

func TestReconfigure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "vfs")
	f.change(t)
	id, err := Commit(ctx, f.s, f.c, Options{CreatedBy: "RUN old"})
	if err != nil {
		t.Fatal(err)
	}
	layers := layerCount(t, f.s)
	cfg := imageConfig(t, f.s, id)
	cfg.History[len(cfg.History)-1].CreatedBy = "RUN new"
	fixed, err := Reconfigure(ctx, f.s, id, cfg, Options{Names: []string{"fixed"}})
	if err != nil {
		t.Fatal(err)
	}
	if fixed == id {
		t.Fatalf("another history gave the same image %s", id)
	}
	if got := imageConfig(t, f.s, fixed); got.History[len(got.History)-1].CreatedBy != "RUN new" {
		t.Errorf("history %+v", got.History)
	}
	if layerCount(t, f.s) != layers {
		t.Errorf("the layers were copied: %d layers, were %d", layerCount(t, f.s), layers)
	}
	if a, b := topLayerFiles(t, f.s, id), topLayerFiles(t, f.s, fixed); len(a) == 0 || len(a) != len(b) {
		t.Errorf("top layer files %q, want %q", b, a)
	}
	again, err := Reconfigure(ctx, f.s, id, cfg, Options{})
	if err != nil || again != fixed {
		t.Errorf("the same configuration again: %s, %v; want %s", again, err, fixed)
	}

	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromString("another layer"))
	if _, err := Reconfigure(ctx, f.s, id, cfg, Options{}); err == nil {
		t.Errorf("a configuration listing other layers was accepted")
	}
}
