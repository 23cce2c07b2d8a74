package commit

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
	cstorage "go.podman.io/storage"

	"github.com/forge-build/forge/storage"
)

// drivers are the storage drivers the commit tests run with.
func drivers() []string { return []string{"vfs", "overlay"} }

func TestCommitLayer(t *testing.T) {
	for _, driver := range drivers() {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, driver)
			f.change(t)
			before := layerCount(t, f.s)
			id, err := Commit(context.Background(), f.s, f.c, Options{
				Names: []string{"test/redis"}, Changes: []string{`CMD ["redis-server"]`},
				Comment: "added new.txt", Author: "tester",
			})
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
				t.Errorf("image ID %q is not 64 hex digits", id)
			}
			if got := imageNames(t, f.s)[id]; !slices.Equal(got, []string{"localhost/test/redis:latest"}) {
				t.Errorf("names of the new image = %v", got)
			}
			if got := layerCount(t, f.s); got != before+1 {
				t.Errorf("layers: %d, want %d", got, before+1)
			}
			cfg := imageConfig(t, f.s, id)
			if !slices.Equal(cfg.Config.Cmd, []string{"redis-server"}) {
				t.Errorf("Cmd = %q", cfg.Config.Cmd)
			}
			if len(cfg.RootFS.DiffIDs) != 2 || len(cfg.History) != 2 {
				t.Fatalf("diff_ids %v, history %+v: want 2 of each", cfg.RootFS.DiffIDs, cfg.History)
			}
			if h := cfg.History[1]; h.CreatedBy != "forge commit" || h.Comment != "added new.txt" || h.Author != "tester" || h.EmptyLayer {
				t.Errorf("history entry %+v", h)
			}
			if cfg.History[0].CreatedBy != "base layer" {
				t.Errorf("base history lost: %+v", cfg.History[0])
			}
			names := topLayerFiles(t, f.s, id)
			want := []string{"dir/c", "etc/.wh.remove-me", "new.txt"}
			if driver == "overlay" {
				want = append(want, "dir/.wh..wh..opq")
			} else {
				want = append(want, "dir/.wh.a", "dir/.wh.b")
			}
			for _, w := range want {
				if !slices.Contains(names, w) {
					t.Errorf("layer %v lacks %s", names, w)
				}
			}
			if slices.Contains(names, "etc/hello") {
				t.Errorf("layer %v holds an unchanged file of the base", names)
			}
			checkManifest(t, f.s, id, imgspecv1.MediaTypeImageManifest,
				[]string{imgspecv1.MediaTypeImageLayerGzip, imgspecv1.MediaTypeImageLayer}, cfg.RootFS.DiffIDs[1])
		})
	}
}

func TestCommitPush(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "vfs")
	f.change(t)
	id, err := Commit(ctx, f.s, f.c, Options{Names: []string{"pushed"}, Changes: []string{`CMD ['redis-server']`}})
	if err != nil {
		t.Fatal(err)
	}
	layout := t.TempDir()
	if _, err := f.s.Push(ctx, id, "oci:"+layout+":t", storage.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	man := readLayoutManifest(t, layout)
	if len(man.Layers) != 2 {
		t.Fatalf("pushed manifest has %d layers, want 2", len(man.Layers))
	}
	last := man.Layers[1]
	names := tarNames(t, layoutBlob(t, layout, last))
	for _, w := range []string{"new.txt", "etc/.wh.remove-me"} {
		if !slices.Contains(names, w) {
			t.Errorf("pushed layer (%s) %v lacks %s", last.MediaType, names, w)
		}
	}
	archivePath := filepath.Join(t.TempDir(), "img.tar")
	if _, err := f.s.Push(ctx, id, "docker-archive:"+archivePath+":localhost/pushed:latest", storage.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	skopeo, err := exec.LookPath("skopeo")
	skipUnless(t, err == nil, "skopeo (apt-get install skopeo) to check what was pushed")
	for _, ref := range []string{"oci:" + layout + ":t", "docker-archive:" + archivePath} {
		out, err := exec.CommandContext(ctx, skopeo, "inspect", ref).Output()
		if err != nil {
			t.Fatalf("skopeo inspect %s: %v", ref, err)
		}
		var inspected struct{ Layers []string }
		if err := json.Unmarshal(out, &inspected); err != nil {
			t.Fatal(err)
		}
		if len(inspected.Layers) != 2 {
			t.Errorf("skopeo inspect %s: layers %v, want 2", ref, inspected.Layers)
		}
	}
	out, err := exec.CommandContext(ctx, skopeo, "inspect", "--config", "oci:"+layout+":t").Output()
	if err != nil {
		t.Fatal(err)
	}
	var cfg imgspecv1.Image
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/bin/sh", "-c", "['redis-server']"}; !slices.Equal(cfg.Config.Cmd, want) {
		t.Errorf("pushed Cmd = %q, want %q", cfg.Config.Cmd, want)
	}
}

func TestCommitMetadataOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "vfs")
	before := layerCount(t, f.s)
	id, err := Commit(ctx, f.s, f.c, Options{Changes: []string{"ENV A=1", "LABEL k=v", "EXPOSE 80"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := layerCount(t, f.s); got != before {
		t.Errorf("layers: %d, want %d (no new layer)", got, before)
	}
	cfg := imageConfig(t, f.s, id)
	if len(cfg.RootFS.DiffIDs) != 1 || len(cfg.History) != 2 || !cfg.History[1].EmptyLayer {
		t.Errorf("diff_ids %v, history %+v: want 1 diff_id and an empty_layer entry", cfg.RootFS.DiffIDs, cfg.History)
	}
	if !slices.Contains(cfg.Config.Env, "A=1") || cfg.Config.Labels["k"] != "v" {
		t.Errorf("config %+v", cfg.Config)
	}
	if _, ok := cfg.Config.ExposedPorts["80/tcp"]; !ok {
		t.Errorf("ExposedPorts %v lacks 80/tcp", cfg.Config.ExposedPorts)
	}
	base := readStoredManifest(t, f.s, f.baseID)
	got := readStoredManifest(t, f.s, id)
	if len(got.Layers) != 1 || got.Layers[0].Digest != base.Layers[0].Digest || got.Layers[0].MediaType != base.Layers[0].MediaType {
		t.Errorf("layers %+v, want the base's %+v", got.Layers, base.Layers)
	}
	layout := t.TempDir()
	if _, err := f.s.Push(ctx, id, "oci:"+layout+":t", storage.PushOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestCommitFormats(t *testing.T) {
	t.Parallel()
	dockerOnly := []string{`HEALTHCHECK --interval=5s CMD true`, `ONBUILD RUN make`, `SHELL ["/bin/bash", "-c"]`}
	t.Run("docker keeps", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, "vfs")
		f.change(t)
		id, err := Commit(context.Background(), f.s, f.c, Options{Format: "docker", Changes: dockerOnly})
		if err != nil {
			t.Fatal(err)
		}
		cfg := imageConfig(t, f.s, id)
		c := cfg.Config
		if c.Healthcheck == nil || c.Healthcheck.Interval != 5*time.Second || len(c.OnBuild) != 1 || len(c.Shell) != 2 {
			t.Errorf("docker config lost Docker-only settings: %+v", c)
		}
		checkManifest(t, f.s, id, manifest.DockerV2Schema2MediaType,
			[]string{manifest.DockerV2Schema2LayerMediaType, manifest.DockerV2SchemaLayerMediaTypeUncompressed}, cfg.RootFS.DiffIDs[1])
		layout := t.TempDir()
		if _, err := f.s.Push(context.Background(), id, "oci:"+layout+":t", storage.PushOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("oci drops and warns once", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, "vfs")
		var logs bytes.Buffer
		id, err := Commit(context.Background(), f.s, f.c, Options{
			Changes: dockerOnly, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		c := imageConfig(t, f.s, id).Config
		if c.Healthcheck != nil || c.OnBuild != nil || c.Shell != nil {
			t.Errorf("OCI config kept Docker-only settings: %+v", c)
		}
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], "HEALTHCHECK, ONBUILD, SHELL") || !strings.Contains(lines[0], "WARN") {
			t.Errorf("log = %q, want one warning naming HEALTHCHECK, ONBUILD, SHELL", logs.String())
		}
	})
	t.Run("invalid", func(t *testing.T) {
		t.Parallel()
		_, err := Commit(context.Background(), nil, &storage.Container{}, Options{Format: "v1"})
		if err == nil || !strings.Contains(err.Error(), `invalid format "v1"`) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestCommitSquash(t *testing.T) {
	for _, driver := range drivers() {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, driver)
			f.change(t)
			id, err := Commit(context.Background(), f.s, f.c, Options{Squash: true, CreatedBy: "squashed"})
			if err != nil {
				t.Fatal(err)
			}
			cfg := imageConfig(t, f.s, id)
			if len(cfg.RootFS.DiffIDs) != 1 || len(cfg.History) != 1 || cfg.History[0].CreatedBy != "squashed" {
				t.Errorf("diff_ids %v, history %+v: want one of each", cfg.RootFS.DiffIDs, cfg.History)
			}
			names := topLayerFiles(t, f.s, id)
			for _, w := range []string{"etc/hello", "new.txt", "dir/c"} {
				if !slices.Contains(names, w) {
					t.Errorf("squashed layer %v lacks %s", names, w)
				}
			}
			for _, n := range names {
				if strings.Contains(n, ".wh.") || n == "etc/remove-me" || n == "dir/a" {
					t.Errorf("squashed layer holds %s", n)
				}
			}
			img, err := f.s.Storage().Image(id)
			if err != nil {
				t.Fatal(err)
			}
			if l, err := f.s.Storage().Layer(img.TopLayer); err != nil || l.Parent != "" {
				t.Errorf("squashed layer %+v (%v) has a parent", l, err)
			}
			if n, err := f.s.Storage().Mounted(f.c.ID); err != nil || n != 0 {
				t.Errorf("container left mounted %d times (%v)", n, err)
			}
		})
	}
}

func TestCommitScratch(t *testing.T) {
	t.Parallel()
	s := openStore(t, "vfs")
	c := newContainer(t, s, "scratch")
	root, err := s.Mount(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "only"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmount(c, false); err != nil {
		t.Fatal(err)
	}
	id, err := Commit(context.Background(), s, c, Options{Names: []string{"example.com/scratchy:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := imageNames(t, s)[id]; !slices.Equal(got, []string{"example.com/scratchy:1"}) {
		t.Errorf("names %v", got)
	}
	if cfg := imageConfig(t, s, id); len(cfg.RootFS.DiffIDs) != 1 {
		t.Errorf("diff_ids %v", cfg.RootFS.DiffIDs)
	}
	if names := topLayerFiles(t, s, id); !slices.Equal(names, []string{"only"}) {
		t.Errorf("layer %v", names)
	}
}

func TestCommitNamesMove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, "vfs")
	first, err := Commit(ctx, f.s, f.c, Options{Names: []string{"app", "app:v1"}, Changes: []string{"ENV V=1"}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Commit(ctx, f.s, f.c, Options{Names: []string{"app"}, Changes: []string{"ENV V=2"}})
	if err != nil {
		t.Fatal(err)
	}
	names := imageNames(t, f.s)
	if !slices.Equal(names[first], []string{"localhost/app:v1"}) || !slices.Equal(names[second], []string{"localhost/app:latest"}) {
		t.Errorf("names after moving app: first %v, second %v", names[first], names[second])
	}
}

// TestCommitSameImageTwice commits identical images: the second commit adds its names to
// the first image and leaves no layer behind. (Whiteouts carry the time of the diff, so
// a container with deletions does not commit to the same image twice.)
func TestCommitSameImageTwice(t *testing.T) {
	t.Parallel()
	for _, addFile := range []bool{false, true} {
		t.Run(map[bool]string{false: "metadata only", true: "new file"}[addFile], func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture(t, "vfs")
			if addFile {
				root, err := f.s.Mount(f.c)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, "new.txt"), []byte("new\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := f.s.Unmount(f.c, false); err != nil {
					t.Fatal(err)
				}
			}
			when := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
			first, err := Commit(ctx, f.s, f.c, Options{Names: []string{"one"}, Timestamp: &when})
			if err != nil {
				t.Fatal(err)
			}
			layers, images := layerCount(t, f.s), len(imageNames(t, f.s))
			second, err := Commit(ctx, f.s, f.c, Options{Names: []string{"two"}, Timestamp: &when})
			if err != nil {
				t.Fatal(err)
			}
			if first != second {
				t.Fatalf("same commit gave two IDs: %s, %s", first, second)
			}
			if got := imageNames(t, f.s)[first]; !slices.Equal(got, []string{"localhost/one:latest", "localhost/two:latest"}) {
				t.Errorf("names %v", got)
			}
			if layerCount(t, f.s) != layers || len(imageNames(t, f.s)) != images {
				t.Errorf("second identical commit left a layer or an image behind")
			}
			if c := imageConfig(t, f.s, first); !c.Created.Equal(when) || !c.History[1].Created.Equal(when) {
				t.Errorf("created %v, history %v, want %v", c.Created, c.History[1].Created, when)
			}
		})
	}
}

func TestCommitFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "vfs")
	f.change(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		opts  Options
		setup func(t *testing.T)
	}{
		{name: "invalid name", opts: Options{Names: []string{"ok", "Not A Name!"}}},
		{name: "bad change", opts: Options{Changes: []string{"RUN make"}}},
		{name: "cancelled", ctx: cancelled},
		{name: "unreadable base manifest", setup: func(t *testing.T) { // fails after the layer is stored
			err := f.s.Storage().SetImageBigData(f.baseID, cstorage.ImageDigestBigDataKey, []byte("{not a manifest"),
				func(b []byte) (digest.Digest, error) { return digest.FromBytes(b), nil })
			if err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests { // sequential: they share the store
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			layers, images := layerCount(t, f.s), imageNames(t, f.s)
			if _, err := Commit(ctx, f.s, f.c, tt.opts); err == nil {
				t.Fatal("commit succeeded")
			} else {
				t.Log(err)
			}
			if got := layerCount(t, f.s); got != layers {
				t.Errorf("layers: %d, want %d", got, layers)
			}
			if got := imageNames(t, f.s); len(got) != len(images) {
				t.Errorf("images: %v, want %v", got, images)
			}
		})
	}
}
