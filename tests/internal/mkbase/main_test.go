package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"testing"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

var testOpts = options{Busybox: []byte("not really busybox\n"), Applets: []string{"sh", "ls"}, Hello: HelloText, Tag: "latest", Arch: "amd64"}

// readTar returns the regular files and headers of a tar stream by name.
func readTar(t *testing.T, r io.Reader) (map[string][]byte, map[string]*tar.Header) {
	t.Helper()
	files, hdrs := map[string][]byte{}, map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, hdrs
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name], hdrs[hdr.Name] = body, hdr
	}
}

func blob(t *testing.T, files map[string][]byte, d digest.Digest) []byte {
	t.Helper()
	b, ok := files["blobs/sha256/"+d.Encoded()]
	if !ok {
		t.Fatalf("blob %s missing", d)
	}
	if digest.FromBytes(b) != d {
		t.Fatalf("blob %s has digest %s", d, digest.FromBytes(b))
	}
	return b
}

func unmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestBuildIsReproducible(t *testing.T) {
	a, err := build(testOpts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := build(testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same input differ")
	}
}

func TestBuildLayout(t *testing.T) {
	archive, err := build(testOpts)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := readTar(t, bytes.NewReader(archive))
	var index v1.Index
	unmarshal(t, files["index.json"], &index)
	if len(index.Manifests) != 1 || index.Manifests[0].Annotations[v1.AnnotationRefName] != "latest" {
		t.Fatalf("index.json: %s", files["index.json"])
	}
	var manifest v1.Manifest
	unmarshal(t, blob(t, files, index.Manifests[0].Digest), &manifest)
	var config v1.Image
	unmarshal(t, blob(t, files, manifest.Config.Digest), &config)
	if len(manifest.Layers) != 1 || len(config.RootFS.DiffIDs) != 1 {
		t.Fatalf("want one layer: manifest %+v config %+v", manifest, config)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(t, files, manifest.Layers[0].Digest)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.FromBytes(raw); got != config.RootFS.DiffIDs[0] {
		t.Fatalf("diff ID %s, config says %s", got, config.RootFS.DiffIDs[0])
	}
	checkLayer(t, raw)
}

func checkLayer(t *testing.T, raw []byte) {
	t.Helper()
	files, hdrs := readTar(t, bytes.NewReader(raw))
	hello := hdrs["home/user/hello.txt"]
	if hello == nil || hello.Uid != 1000 || hello.Gid != 1000 || hello.Mode != 0o640 {
		t.Fatalf("hello.txt header: %+v", hello)
	}
	if string(files["home/user/hello.txt"]) != HelloText {
		t.Fatalf("hello.txt: %q", files["home/user/hello.txt"])
	}
	if sh := hdrs["bin/sh"]; sh == nil || sh.Typeflag != tar.TypeSymlink || sh.Linkname != "busybox" {
		t.Fatalf("bin/sh: %+v", sh)
	}
	if !bytes.Equal(files["bin/busybox"], testOpts.Busybox) {
		t.Fatal("bin/busybox differs from the input")
	}
}
