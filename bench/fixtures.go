package main

import (
	"archive/tar"
	"compress/gzip"
	_ "crypto/sha256" // registers sha256 for go-digest
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// epoch is the modification time of every generated file.
var epoch = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// filesPerDir spreads generated files over directories, as source trees do.
const filesPerDir = 500

// makeContext writes a build context of n files of pseudo-random (incompressible) data,
// about total bytes in all, in sub-directories of filesPerDir files. The tree is the same
// on every run.
func makeContext(dir string, n int, total int64) error {
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([]byte, 8<<20)
	chacha := rand.NewChaCha8([32]byte{1})
	if _, err := chacha.Read(pool); err != nil {
		return err
	}
	avg := total / int64(n)
	for i := range n {
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", i/filesPerDir))
		if i%filesPerDir == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return err
			}
		}
		size := 1 + rng.Int64N(2*avg-1) // uniform in [1, 2*avg-1]: the mean is avg
		off := rng.Int64N(int64(len(pool)) - size)
		name := filepath.Join(sub, fmt.Sprintf("f%05d.dat", i))
		if err := os.WriteFile(name, pool[off:off+size], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ociImage is the manifest and config of an image in an OCI layout.
type ociImage struct {
	Manifest v1.Manifest
	Config   v1.Image
}

// makeBase writes to the OCI layout dir the busybox image from the OCI archive busybox
// with one more gzip layer of n small files under /data, tagged "latest".
func makeBase(busybox, dir string, n int) error {
	blobs, img, err := readArchive(busybox)
	if err != nil {
		return fmt.Errorf("read %s: %w", busybox, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	for _, l := range img.Manifest.Layers {
		if err := writeBlob(dir, blobs[l.Digest]); err != nil {
			return err
		}
	}
	layer, diffID, err := writeManyFilesLayer(dir, n)
	if err != nil {
		return fmt.Errorf("layer of %d files: %w", n, err)
	}
	created := epoch
	img.Config.RootFS.DiffIDs = append(img.Config.RootFS.DiffIDs, diffID)
	img.Config.History = append(img.Config.History, v1.History{Created: &created,
		CreatedBy: fmt.Sprintf("forge bench: %d files under /data", n)})
	img.Manifest.Layers = append(img.Manifest.Layers, layer)
	return writeLayout(dir, img)
}

// readArchive returns the blobs of an OCI archive by digest, and its only image.
func readArchive(path string) (map[digest.Digest][]byte, ociImage, error) {
	var img ociImage
	f, err := os.Open(path)
	if err != nil {
		return nil, img, err
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, img, err
		}
		if hdr.Typeflag == tar.TypeReg {
			if files[filepath.Clean(hdr.Name)], err = io.ReadAll(tr); err != nil {
				return nil, img, err
			}
		}
	}
	blobs := map[digest.Digest][]byte{}
	for name, b := range files {
		if d, ok := filepath.Rel("blobs/sha256", name); ok == nil && !filepath.IsAbs(d) {
			blobs[digest.NewDigestFromEncoded(digest.SHA256, d)] = b
		}
	}
	var index v1.Index
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		return nil, img, fmt.Errorf("index.json: want one manifest (%v)", err)
	}
	if err := json.Unmarshal(blobs[index.Manifests[0].Digest], &img.Manifest); err != nil {
		return nil, img, fmt.Errorf("manifest: %w", err)
	}
	if err := json.Unmarshal(blobs[img.Manifest.Config.Digest], &img.Config); err != nil {
		return nil, img, fmt.Errorf("config: %w", err)
	}
	return blobs, img, nil
}

// writeManyFilesLayer writes a gzip layer of n files (data/dNNN/fNNNNN) into the layout
// dir and returns its descriptor and diff ID.
func writeManyFilesLayer(dir string, n int) (desc v1.Descriptor, diffID digest.Digest, retErr error) {
	f, err := os.CreateTemp(filepath.Join(dir, "blobs"), "layer-*")
	if err != nil {
		return desc, "", err
	}
	defer func() {
		if err := f.Close(); err != nil && retErr == nil {
			retErr = err
		}
		if retErr != nil {
			os.Remove(f.Name())
		}
	}()
	blobHash, diffHash := digest.Canonical.Digester(), digest.Canonical.Digester()
	counter := &countingWriter{w: io.MultiWriter(f, blobHash.Hash())}
	zw, err := gzip.NewWriterLevel(counter, gzip.BestSpeed)
	if err != nil {
		return desc, "", err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, diffHash.Hash()))
	if err := writeManyFiles(tw, n); err != nil {
		return desc, "", err
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		return desc, "", err
	}
	desc = v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: blobHash.Digest(), Size: counter.n}
	if err := f.Chmod(0o644); err != nil { // CreateTemp makes 0600; the user pushes it
		return desc, "", err
	}
	if err := os.Rename(f.Name(), blobPath(dir, desc.Digest)); err != nil {
		return desc, "", err
	}
	return desc, diffHash.Digest(), nil
}

func writeManyFiles(tw *tar.Writer, n int) error {
	add := func(hdr *tar.Header, body []byte) error {
		hdr.ModTime, hdr.Format, hdr.Size = epoch, tar.FormatPAX, int64(len(body))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: "data/", Mode: 0o755}, nil); err != nil {
		return err
	}
	for i := range n {
		if i%filesPerDir == 0 {
			name := fmt.Sprintf("data/d%03d/", i/filesPerDir)
			if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}, nil); err != nil {
				return err
			}
		}
		name := fmt.Sprintf("data/d%03d/f%06d", i/filesPerDir, i)
		if err := add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, []byte(name+"\n")); err != nil {
			return err
		}
	}
	return nil
}

// writeLayout writes the config, the manifest, oci-layout and index.json of img into dir,
// whose blobs/sha256 already holds the layers.
func writeLayout(dir string, img ociImage) error {
	config, err := json.Marshal(img.Config)
	if err != nil {
		return err
	}
	img.Manifest.Config = v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	manifest, err := json.Marshal(img.Manifest)
	if err != nil {
		return err
	}
	mdesc := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest)),
		Annotations: map[string]string{v1.AnnotationRefName: "latest"}}
	index, err := json.Marshal(v1.Index{Versioned: img.Manifest.Versioned, MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{mdesc}})
	if err != nil {
		return err
	}
	layout, err := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return err
	}
	return errors.Join(writeBlob(dir, config), writeBlob(dir, manifest),
		os.WriteFile(filepath.Join(dir, v1.ImageLayoutFile), layout, 0o644),
		os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644))
}

func writeBlob(dir string, b []byte) error {
	if b == nil {
		return errors.New("blob missing from the archive")
	}
	return os.WriteFile(blobPath(dir, digest.FromBytes(b)), b, 0o644)
}

func blobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
