package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// rootfsTar is a small tar shaped like mmdebstrap's output.
func rootfsTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []tar.Header{
		{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "./dev/", Mode: 0o755},
		{Typeflag: tar.TypeChar, Name: "./dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Typeflag: tar.TypeSymlink, Name: "./dev/fd", Linkname: "/proc/self/fd", Mode: 0o777},
		{Typeflag: tar.TypeSymlink, Name: "./bin", Linkname: "usr/bin", Mode: 0o777},
		{Typeflag: tar.TypeDir, Name: "./usr/", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "./usr/bin/", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "./usr/bin/bash", Mode: 0o755, Size: 5},
		{Typeflag: tar.TypeLink, Name: "./usr/bin/sh", Linkname: "./usr/bin/bash"},
	} {
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte("bash\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFromRootfs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(path, rootfsTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	archive, err := fromRootfs(path, []string{"bash"}, options{Tag: "bookworm-slim", Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := readTar(t, bytes.NewReader(archive))
	var index v1.Index
	unmarshal(t, files["index.json"], &index)
	var manifest v1.Manifest
	unmarshal(t, blob(t, files, index.Manifests[0].Digest), &manifest)
	var config v1.Image
	unmarshal(t, blob(t, files, manifest.Config.Digest), &config)
	if !slices.Equal(config.Config.Cmd, []string{"bash"}) || index.Manifests[0].Annotations[v1.AnnotationRefName] != "bookworm-slim" {
		t.Errorf("Cmd %q, ref name %q", config.Config.Cmd, index.Manifests[0].Annotations[v1.AnnotationRefName])
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(t, files, manifest.Layers[0].Digest)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.FromBytes(raw); len(config.RootFS.DiffIDs) != 1 || got != config.RootFS.DiffIDs[0] {
		t.Fatalf("diff ID %s, config says %v", got, config.RootFS.DiffIDs)
	}
	_, hdrs := readTar(t, bytes.NewReader(raw))
	var names []string
	for n := range hdrs {
		names = append(names, n)
	}
	sort.Strings(names)
	if want := []string{"bin", "dev/", "usr/", "usr/bin/", "usr/bin/bash", "usr/bin/sh"}; !slices.Equal(names, want) {
		t.Errorf("layer holds %q, want %q (no ./ prefix, no device nodes)", names, want)
	}
	if sh := hdrs["usr/bin/sh"]; sh == nil || sh.Typeflag != tar.TypeLink || sh.Linkname != "usr/bin/bash" {
		t.Errorf("usr/bin/sh: %+v, want a hard link to usr/bin/bash", sh)
	}
}
