package evil

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // registers sha256 for go-digest
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layer is one layer of an Image: the blob stored in the archive and what the manifest
// and config say about it. The zero values of the fields after Blob describe it honestly.
type Layer struct {
	Blob      []byte        // the bytes stored (a tar, or a gzip of one)
	MediaType string        // default: gzip or plain tar, by Blob's first bytes
	Digest    digest.Digest // the manifest's digest; default: Blob's sha256
	DiffID    digest.Digest // the config's diff ID; default: the uncompressed Blob's sha256
	Size      int64         // the manifest's size; default: len(Blob)
	URLs      []string      // the manifest's urls (foreign layers)
	// StoreAs names the blob file, blobs/ALG/HEX, as a digest string; default: Digest when it
	// has the form ALG:HEX with a plain hex part, else Blob's sha256. Omit stores no file.
	StoreAs digest.Digest
	Omit    bool
}

// TarLayer is an uncompressed layer of the entries.
func TarLayer(entries ...Entry) Layer { return Layer{Blob: MustTar(entries...)} }

// Image is an OCI image to be written as an OCI archive (the oci-archive transport's
// format: a tar of an OCI image layout).
type Image struct {
	Layers []Layer
	Cmd    []string // default: sh
	Tag    string   // org.opencontainers.image.ref.name; default: latest
	// ConfigDigest and ManifestDigest replace the honest digests in the manifest and in
	// index.json; the blobs are stored under both names when the hostile one has the
	// form ALG:HEX.
	ConfigDigest, ManifestDigest digest.Digest
	// Extra are more entries of the archive's own tar, written after the layout.
	Extra []Entry
}

// WriteOCIArchive writes img to path.
func WriteOCIArchive(path string, img Image) error {
	b, err := img.OCIArchive()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// OCIArchive returns the archive's bytes.
func (img Image) OCIArchive() ([]byte, error) {
	manifest, _, blobs, err := img.layout()
	if err != nil {
		return nil, err
	}
	mdesc := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
	blobs[blobName("", mdesc.Digest, manifest)] = manifest
	if img.ManifestDigest != "" {
		mdesc.Digest = img.ManifestDigest
		blobs[blobName("", mdesc.Digest, manifest)] = manifest
	}
	tag := img.Tag
	if tag == "" {
		tag = "latest"
	}
	mdesc.Annotations = map[string]string{v1.AnnotationRefName: tag}
	index, err := json.Marshal(v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{mdesc}})
	if err != nil {
		return nil, err
	}
	layout, err := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return nil, err
	}
	return writeLayout(layout, index, blobs, img.Extra)
}

// Manifest returns the image's manifest and config, for a registry.
func (img Image) Manifest() (manifest, config []byte, err error) {
	manifest, config, _, err = img.layout()
	return manifest, config, err
}

// layout returns the manifest, the config and the blobs by their file names.
func (img Image) layout() (manifest, config []byte, blobs map[string][]byte, err error) {
	blobs = map[string][]byte{}
	var descs []v1.Descriptor
	var diffIDs []digest.Digest
	for i, l := range img.Layers {
		desc, diffID, err := l.describe()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("layer %d: %w", i, err)
		}
		if !l.Omit {
			blobs[blobName(l.StoreAs, desc.Digest, l.Blob)] = l.Blob
		}
		descs, diffIDs = append(descs, desc), append(diffIDs, diffID)
	}
	if config, err = json.Marshal(img.config(diffIDs)); err != nil {
		return nil, nil, nil, err
	}
	cdesc := v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	blobs[blobName("", cdesc.Digest, config)] = config
	if img.ConfigDigest != "" {
		cdesc.Digest = img.ConfigDigest
		blobs[blobName("", cdesc.Digest, config)] = config
	}
	manifest, err = json.Marshal(v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest,
		Config: cdesc, Layers: descs,
	})
	return manifest, config, blobs, err
}

func (img Image) config(diffIDs []digest.Digest) v1.Image {
	cmd := img.Cmd
	if cmd == nil {
		cmd = []string{"sh"}
	}
	created := epoch
	return v1.Image{
		Created:  &created,
		Platform: v1.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config: v1.ImageConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: cmd,
		},
		RootFS:  v1.RootFS{Type: "layers", DiffIDs: diffIDs},
		History: []v1.History{{Created: &created, CreatedBy: "evil: a hostile image for forge's tests"}},
	}
}

// describe returns the layer's manifest descriptor and diff ID.
func (l Layer) describe() (v1.Descriptor, digest.Digest, error) {
	gz := bytes.HasPrefix(l.Blob, []byte{0x1f, 0x8b})
	d := v1.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: int64(len(l.Blob)), URLs: l.URLs}
	if l.Size != 0 {
		d.Size = l.Size
	}
	if d.MediaType == "" {
		d.MediaType = v1.MediaTypeImageLayer
		if gz {
			d.MediaType = v1.MediaTypeImageLayerGzip
		}
	}
	if d.Digest == "" {
		d.Digest = digest.FromBytes(l.Blob)
	}
	diffID := l.DiffID
	if diffID != "" {
		return d, diffID, nil
	}
	if !gz {
		return d, digest.FromBytes(l.Blob), nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(l.Blob))
	if err != nil {
		return d, "", err
	}
	diffID, err = digest.Canonical.FromReader(zr)
	return d, diffID, err
}

// blobName is where a blob is stored in the layout: storeAs, else d when it is a
// well-formed digest whose hex part makes a plain file name, else the content's sha256.
func blobName(storeAs, d digest.Digest, content []byte) string {
	if storeAs == "" {
		storeAs = d
		if alg, hex, ok := strings.Cut(string(d), ":"); !ok || alg == "" || hex == "" || strings.ContainsAny(alg+hex, "/.") {
			storeAs = digest.FromBytes(content)
		}
	}
	alg, hex, _ := strings.Cut(string(storeAs), ":")
	return "blobs/" + alg + "/" + hex
}

// writeLayout writes the layout as a tar, directories first, then extra.
func writeLayout(layout, index []byte, blobs map[string][]byte, extra []Entry) ([]byte, error) {
	entries := []Entry{File("oci-layout", string(layout)), File("index.json", string(index)), Dir("blobs/")}
	dirs := map[string]bool{}
	for name := range blobs {
		if dir := name[:strings.LastIndex(name, "/")+1]; !dirs[dir] {
			dirs[dir] = true
			entries = append(entries, Dir(dir))
		}
	}
	for name, content := range blobs {
		entries = append(entries, File(name, string(content)))
	}
	return Tar(append(entries, extra...)...)
}

// LayersOf returns the layers of the only image in the OCI archive at path (a fixture to
// build on, such as busybox).
func LayersOf(path string) ([]Layer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
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
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if files[strings.TrimPrefix(hdr.Name, "./")], err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		}
	}
	blob := func(d digest.Digest) []byte { return files["blobs/"+d.Algorithm().String()+"/"+d.Encoded()] }
	var index v1.Index
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		return nil, fmt.Errorf("%s: index.json: want one manifest (err %v)", path, err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(blob(index.Manifests[0].Digest), &m); err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", path, err)
	}
	var layers []Layer
	for _, d := range m.Layers {
		b := blob(d.Digest)
		if b == nil {
			return nil, fmt.Errorf("%s: no blob %s", path, d.Digest)
		}
		layers = append(layers, Layer{Blob: b, MediaType: d.MediaType})
	}
	return layers, nil
}
