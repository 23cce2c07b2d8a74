package storage

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
	"strconv"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

// tarOf is a tar of regular files, name to size (zeros).
func tarOf(t *testing.T, files map[string]int64) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	zeros := make([]byte, 1<<20)
	for name, size := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
			t.Fatal(err)
		}
		for left := size; left > 0; left -= int64(len(zeros)) {
			if _, err := tw.Write(zeros[:min(left, int64(len(zeros)))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// sparsePAX is a tar of one PAX 1.0 sparse file of apparent size realSize holding only
// "data" (archive/tar cannot write one, so the PAX header is built by hand).
func sparsePAX(t *testing.T, realSize int64) []byte {
	t.Helper()
	record := func(k, v string) string {
		body := " " + k + "=" + v + "\n"
		n := len(body) + 1
		for n != len(strconv.Itoa(n))+len(body) {
			n = len(strconv.Itoa(n)) + len(body)
		}
		return strconv.Itoa(n) + body
	}
	records := record("GNU.sparse.major", "1") + record("GNU.sparse.minor", "0") +
		record("GNU.sparse.name", "sparse") + record("GNU.sparse.realsize", strconv.FormatInt(realSize, 10))
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	// A PAX header entry is written as a regular file named like one, then retyped.
	if err := tw.WriteHeader(&tar.Header{Name: "PaxHeaders/sparse", Typeflag: tar.TypeReg, Size: int64(len(records)), Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(records)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	raw[156] = tar.TypeXHeader
	copy(raw[148:156], "        ")
	sum := 0
	for _, c := range raw[:512] {
		sum += int(c)
	}
	copy(raw[148:156], fmt.Sprintf("%06o\x00 ", sum))
	data := "1\n0\n4\n" + strings.Repeat("\x00", 512-6) + "data"
	if err := tw.WriteHeader(&tar.Header{Name: "GNUSparseFile.0/sparse", Typeflag: tar.TypeReg, Size: int64(len(data)), Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestLayerExpansion(t *testing.T) {
	t.Parallel()
	small := tarOf(t, map[string]int64{"a": 10, "b": 1000})
	bomb := gzipped(t, tarOf(t, map[string]int64{"zeros": 256 << 20}))
	cases := []struct {
		name    string
		blob    []byte
		limit   int64
		want    int64 // the size reported, when there is no error
		tooBig  bool
		maxTime time.Duration
	}{
		{name: "small tar", blob: small, want: 2*512 + 10 + 1000},
		{name: "small tar, gzip", blob: gzipped(t, small), limit: 1 << 20, want: 2*512 + 10 + 1000},
		{name: "gzip bomb under no limit", blob: bomb, want: 512 + 256<<20},
		{name: "gzip bomb past the limit", blob: bomb, limit: 64 << 20, tooBig: true},
		{name: "sparse file past the limit", blob: sparsePAX(t, 1<<40), limit: 1 << 30, tooBig: true, maxTime: time.Second},
		{name: "sparse file under the limit", blob: sparsePAX(t, 1<<20), limit: 1 << 30, want: 512 + 1<<20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			got, err := LayerExpansion(context.Background(), bytes.NewReader(c.blob), c.limit)
			if c.tooBig {
				if !errors.Is(err, ErrLayerTooLarge) {
					t.Fatalf("want ErrLayerTooLarge, got %d, %v", got, err)
				}
				if c.maxTime > 0 && time.Since(start) > c.maxTime {
					t.Errorf("took %v to refuse", time.Since(start))
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %d, %v; want %d", got, err, c.want)
			}
		})
	}
}

func TestLayerExpansionCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LayerExpansion(ctx, bytes.NewReader(tarOf(t, map[string]int64{"a": 1})), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

func TestHumanSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{10: "10 B", 2048: "2.0 KiB", 3 << 30: "3.0 GiB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// ociLayout writes an OCI layout holding one image whose only layer is layer.
func ociLayout(t *testing.T, layer []byte) string {
	t.Helper()
	dir := t.TempDir()
	write := func(b []byte) imgspecv1.Descriptor {
		d := digest.FromBytes(b)
		p := filepath.Join(dir, "blobs", "sha256", d.Encoded())
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return imgspecv1.Descriptor{Digest: d, Size: int64(len(b))}
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ldesc := write(layer)
	ldesc.MediaType = imgspecv1.MediaTypeImageLayerGzip
	cdesc := write(mustJSON(imgspecv1.Image{Platform: imgspecv1.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		RootFS: imgspecv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{ldesc.Digest}}}))
	cdesc.MediaType = imgspecv1.MediaTypeImageConfig
	mdesc := write(mustJSON(imgspecv1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: cdesc, Layers: []imgspecv1.Descriptor{ldesc}}))
	mdesc.MediaType = imgspecv1.MediaTypeImageManifest
	mdesc.Annotations = map[string]string{imgspecv1.AnnotationRefName: "latest"}
	index := mustJSON(imgspecv1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []imgspecv1.Descriptor{mdesc}})
	for name, b := range map[string][]byte{"index.json": index, "oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLimitedSource: through limitedReference, reading a layer that unpacks past the
// limit fails with ErrLayerTooLarge naming it, while the config and a layer under the
// limit read back unchanged.
func TestLimitedSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	layer := gzipped(t, tarOf(t, map[string]int64{"zeros": 64 << 20}))
	ref, err := alltransports.ParseImageName("oci:" + ociLayout(t, layer) + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		limit  int64
		tooBig bool
	}{{16 << 20, true}, {128 << 20, false}} {
		src, err := limitedReference{ImageReference: ref, limit: c.limit}.NewImageSource(ctx, &types.SystemContext{})
		if err != nil {
			t.Fatal(err)
		}
		img, err := image.FromUnparsedImage(ctx, &types.SystemContext{}, image.UnparsedInstance(src, nil))
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range append(img.LayerInfos(), img.ConfigInfo()) {
			rc, _, err := src.GetBlob(ctx, info, none.NoCache)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			isLayer := info.Digest != img.ConfigInfo().Digest
			switch {
			case isLayer && c.tooBig:
				if !errors.Is(err, ErrLayerTooLarge) || !strings.Contains(err.Error(), info.Digest.String()) {
					t.Errorf("limit %d: want ErrLayerTooLarge naming %s, got %v", c.limit, info.Digest, err)
				}
			case err != nil:
				t.Errorf("limit %d, blob %s: %v", c.limit, info.Digest, err)
			case digest.FromBytes(b) != info.Digest:
				t.Errorf("limit %d, blob %s: read back changed", c.limit, info.Digest)
			}
		}
		src.Close()
	}
}
