package commit

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	cstorage "go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"

	"github.com/forge-build/forge/storage"
)

func layerCount(t *testing.T, s *storage.Store) int {
	t.Helper()
	layers, err := s.Storage().Layers()
	if err != nil {
		t.Fatal(err)
	}
	return len(layers)
}

func imageNames(t *testing.T, s *storage.Store) map[string][]string {
	t.Helper()
	images, err := s.Images(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, img := range images {
		names := slices.Clone(img.Names)
		slices.Sort(names)
		out[img.ID] = names
	}
	return out
}

func imageConfig(t *testing.T, s *storage.Store, id string) storage.ImageConfig {
	t.Helper()
	cfg, err := s.ImageConfig(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// topLayerFiles lists the files of an image's top layer, read back from the store.
func topLayerFiles(t *testing.T, s *storage.Store, id string) []string {
	t.Helper()
	img, err := s.Storage().Image(id)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.Storage().Diff("", img.TopLayer, &cstorage.DiffOptions{Compression: new(archive.Uncompressed)})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return tarNames(t, rc)
}

func readStoredManifest(t *testing.T, s *storage.Store, id string) imgspecv1.Manifest {
	t.Helper()
	b, err := s.Storage().ImageBigData(id, cstorage.ImageDigestBigDataKey)
	if err != nil {
		t.Fatal(err)
	}
	var m imgspecv1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkManifest reads an image back through image/v5 and checks its manifest.
func checkManifest(t *testing.T, s *storage.Store, id, wantType string, wantLayers []string, newLayer digest.Digest) {
	t.Helper()
	d, err := s.Inspect(context.Background(), id)
	if err != nil {
		t.Fatalf("inspect through image/v5: %v", err)
	}
	if d.ManifestType != wantType {
		t.Errorf("manifest type %s, want %s", d.ManifestType, wantType)
	}
	var m imgspecv1.Manifest
	if err := json.Unmarshal(d.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, l := range m.Layers {
		types = append(types, l.MediaType)
	}
	if !slices.Equal(types, wantLayers) {
		t.Errorf("layer types %v, want %v", types, wantLayers)
	}
	if last := m.Layers[len(m.Layers)-1]; last.Digest != newLayer {
		t.Errorf("new layer digest %s, want its diff_id %s", last.Digest, newLayer)
	}
	if m.Config.Digest.Encoded() != id {
		t.Errorf("config digest %s, want the image ID %s", m.Config.Digest, id)
	}
}

func readLayoutManifest(t *testing.T, layout string) imgspecv1.Manifest {
	t.Helper()
	var index imgspecv1.Index
	readJSON(t, filepath.Join(layout, "index.json"), &index)
	var m imgspecv1.Manifest
	readJSON(t, blobPath(layout, index.Manifests[0].Digest), &m)
	return m
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func blobPath(layout string, d digest.Digest) string {
	return filepath.Join(layout, "blobs", d.Algorithm().String(), d.Encoded())
}

// layoutBlob opens a layer blob of an OCI layout, decompressed.
func layoutBlob(t *testing.T, layout string, d imgspecv1.Descriptor) io.Reader {
	t.Helper()
	b, err := os.ReadFile(blobPath(layout, d.Digest))
	if err != nil {
		t.Fatal(err)
	}
	if d.MediaType != imgspecv1.MediaTypeImageLayerGzip {
		return bytes.NewReader(b)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}
