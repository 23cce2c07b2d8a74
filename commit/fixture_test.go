package commit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	graphdriver "go.podman.io/storage/drivers"
	"go.podman.io/storage/pkg/reexec"

	"github.com/forge-build/forge/rootless"
	"github.com/forge-build/forge/storage"
)

func TestMain(m *testing.M) {
	if reexec.Init() { // storage re-executes the test binary for some helpers
		return
	}
	// As an ordinary user the tests run where forge runs: inside its user namespace.
	reexeced, err := rootless.Enter(context.Background(), rootless.Options{})
	var exit *rootless.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.Code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "enter user namespace:", err)
		os.Exit(1)
	case reexeced:
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// skipUnless skips a test for a missing prerequisite, naming it: the one place tests skip.
func skipUnless(t *testing.T, ok bool, missing string) {
	t.Helper()
	if !ok {
		t.Skipf("skipped: %s", missing)
	}
}

// baseFiles are the files of the base image's one layer.
func baseFiles() []tarEntry {
	return []tarEntry{
		{name: "etc/", dir: true},
		{name: "etc/hello", body: "hello from the base\n"},
		{name: "etc/remove-me", body: "deleted in the container\n"},
		{name: "dir/", dir: true},
		{name: "dir/a", body: "a\n"},
		{name: "dir/b", body: "b\n"},
	}
}

type tarEntry struct {
	name string
	body string
	dir  bool
}

// layerTar writes entries as an uncompressed tar.
func layerTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	raw := make([]rawEntry, 0, len(entries))
	for _, e := range entries {
		// Owned by the caller, so that an unprivileged test can unpack it without a
		// user namespace.
		h := tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, ModTime: mtime, Uid: os.Getuid(), Gid: os.Getgid()}
		if e.dir {
			h.Mode, h.Typeflag = 0o755, tar.TypeDir
		}
		raw = append(raw, rawEntry{hdr: h, body: e.body})
	}
	return writeRaw(t, raw)
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeBlob stores b in an OCI layout and returns its descriptor.
func writeBlob(t *testing.T, layout, mediaType string, b []byte) imgspecv1.Descriptor {
	t.Helper()
	d := digest.FromBytes(b)
	dir := filepath.Join(layout, "blobs", d.Algorithm().String())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, d.Encoded()), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

func writeJSON(t *testing.T, path string, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if path != "" {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// baseLayout writes an OCI image layout holding one image ("base") with one gzip layer
// of baseFiles, and returns the reference to pull it with.
func baseLayout(t *testing.T) string {
	t.Helper()
	layout := t.TempDir()
	raw := layerTar(t, baseFiles())
	layer := writeBlob(t, layout, imgspecv1.MediaTypeImageLayerGzip, gzipBytes(t, raw))
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := imgspecv1.Image{
		Created:  &created,
		Platform: imgspecv1.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   imgspecv1.ImageConfig{Env: []string{"PATH=/usr/bin:/bin"}, Cmd: []string{"sh"}},
		RootFS:   imgspecv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(raw)}},
		History:  []imgspecv1.History{{Created: &created, CreatedBy: "base layer"}},
	}
	config := writeBlob(t, layout, imgspecv1.MediaTypeImageConfig, writeJSON(t, "", cfg))
	man := imgspecv1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: config, Layers: []imgspecv1.Descriptor{layer}}
	desc := writeBlob(t, layout, imgspecv1.MediaTypeImageManifest, writeJSON(t, "", man))
	desc.Annotations = map[string]string{imgspecv1.AnnotationRefName: "base"}
	writeJSON(t, filepath.Join(layout, "index.json"), imgspecv1.Index{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{desc}})
	writeJSON(t, filepath.Join(layout, imgspecv1.ImageLayoutFile), imgspecv1.ImageLayout{Version: imgspecv1.ImageLayoutVersion})
	return "oci:" + layout + ":base"
}

// openStore opens a store with driver in a temporary directory, or skips when the driver
// cannot work here.
func openStore(t *testing.T, driver string) *storage.Store {
	t.Helper()
	id, err := rootless.Current()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	s, err := storage.Open(context.Background(), storage.Options{
		GraphRoot: filepath.Join(root, "graph"), RunRoot: filepath.Join(root, "run"), Driver: driver,
		IgnoreChownErrors: id.Mode == rootless.ModeSingle,
	})
	if err != nil && driver != "vfs" {
		skipUnless(t, !errors.Is(err, graphdriver.ErrNotSupported) && !errors.Is(err, graphdriver.ErrPrerequisites) &&
			!errors.Is(err, graphdriver.ErrIncompatibleFS), "storage driver "+driver+": "+err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// fixture is a store with the base image pulled and a working container made from it.
type fixture struct {
	s      *storage.Store
	baseID string
	c      *storage.Container
}

func newFixture(t *testing.T, driver string) *fixture {
	t.Helper()
	ctx := context.Background()
	s := openStore(t, driver)
	img, err := s.Pull(ctx, baseLayout(t), storage.PullOptions{})
	if err != nil {
		t.Fatalf("pull base: %v", err)
	}
	return &fixture{s: s, baseID: img.ID, c: newContainer(t, s, img.ID)}
}

func newContainer(t *testing.T, s *storage.Store, image string) *storage.Container {
	t.Helper()
	c, err := s.From(context.Background(), image, storage.FromOptions{})
	if err != nil {
		t.Fatalf("from %s: %v", image, err)
	}
	return c
}

// change edits the container's files the way `forge run` would: adds new.txt, deletes
// etc/remove-me, and replaces dir/ with a directory holding only c.
func (f *fixture) change(t *testing.T) {
	t.Helper()
	root, err := f.s.Mount(f.c)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := f.s.Unmount(f.c, false); err != nil {
			t.Error(err)
		}
	}()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(root, "new.txt"), []byte("new\n"), 0o644))
	must(os.Remove(filepath.Join(root, "etc/remove-me")))
	must(os.RemoveAll(filepath.Join(root, "dir")))
	must(os.Mkdir(filepath.Join(root, "dir"), 0o755))
	must(os.WriteFile(filepath.Join(root, "dir/c"), []byte("c\n"), 0o644))
}

// tarNames lists the entry names of a tar stream, without "./" and trailing "/".
func tarNames(t *testing.T, r io.Reader) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/"))
	}
	slices.Sort(names)
	return names
}
