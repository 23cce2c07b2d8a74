package commit

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
	cstorage "go.podman.io/storage"

	"github.com/forge-build/forge/storage"
)

// format is an output format: its manifest, config and layer media types.
type format struct {
	name         string
	manifestType string
	configType   string
}

func formatNamed(name string) (format, error) {
	switch strings.ToLower(name) {
	case "", FormatOCI:
		return format{FormatOCI, imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageConfig}, nil
	case FormatDocker:
		return format{FormatDocker, manifest.DockerV2Schema2MediaType, manifest.DockerV2Schema2ConfigMediaType}, nil
	}
	return format{}, fmt.Errorf("invalid format %q (want oci or docker)", name)
}

// compression is how a layer blob is compressed.
type compression int

const (
	uncompressed compression = iota
	gzipped
	zstdCompressed
)

// compressionOf reads a layer media type of either format; ok is false for types this
// package does not convert (foreign, non-distributable, encrypted, unknown).
func compressionOf(mediaType string) (c compression, ok bool) {
	switch mediaType {
	case imgspecv1.MediaTypeImageLayer, manifest.DockerV2SchemaLayerMediaTypeUncompressed:
		return uncompressed, true
	case imgspecv1.MediaTypeImageLayerGzip, manifest.DockerV2Schema2LayerMediaType:
		return gzipped, true
	case imgspecv1.MediaTypeImageLayerZstd:
		return zstdCompressed, true
	}
	return 0, false
}

// layerType is the media type of a layer compressed with c; ok is false when the format
// cannot express it (zstd in Docker's format).
func (f format) layerType(c compression) (mediaType string, ok bool) {
	if f.name == FormatDocker {
		switch c {
		case uncompressed:
			return manifest.DockerV2SchemaLayerMediaTypeUncompressed, true
		case gzipped:
			return manifest.DockerV2Schema2LayerMediaType, true
		}
		return "", false
	}
	switch c {
	case uncompressed:
		return imgspecv1.MediaTypeImageLayer, true
	case gzipped:
		return imgspecv1.MediaTypeImageLayerGzip, true
	case zstdCompressed:
		return imgspecv1.MediaTypeImageLayerZstd, true
	}
	return "", false
}

// uncompressedDescriptor describes a stored layer as an uncompressed tar: the blob the
// store can always produce. Copies to a registry compress it.
func (f format) uncompressedDescriptor(l *cstorage.Layer) (imgspecv1.Descriptor, error) {
	if l.UncompressedDigest == "" || l.UncompressedSize < 0 {
		return imgspecv1.Descriptor{}, fmt.Errorf("layer %s: uncompressed digest unknown", l.ID)
	}
	mediaType, _ := f.layerType(uncompressed)
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: l.UncompressedDigest, Size: l.UncompressedSize}, nil
}

// baseLayers returns the descriptors of the container's image layers in format f. They
// are the image's own manifest descriptors (so a push can find blobs the registry already
// has), converted to f; a layer whose compression f cannot express, or an image whose
// manifest does not match its layers, is described uncompressed.
func (f format) baseLayers(st cstorage.Store, c *storage.Container) ([]imgspecv1.Descriptor, error) {
	chain, err := layerChain(st, c.ParentLayer)
	if err != nil {
		return nil, err
	}
	listed, err := manifestLayers(st, c.FromImageID)
	if err != nil {
		return nil, err
	}
	if len(listed) != len(chain) {
		listed = nil
	}
	out := make([]imgspecv1.Descriptor, 0, len(chain))
	for i, l := range chain {
		var d imgspecv1.Descriptor
		if listed != nil {
			d, err = f.convert(listed[i], l)
		} else {
			d, err = f.uncompressedDescriptor(l)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// convert describes one listed base layer in format f.
func (f format) convert(info manifest.LayerInfo, l *cstorage.Layer) (imgspecv1.Descriptor, error) {
	c, known := compressionOf(info.MediaType)
	mediaType, ok := f.layerType(c)
	if !known || !ok {
		return f.uncompressedDescriptor(l)
	}
	d := imgspecv1.Descriptor{MediaType: mediaType, Digest: info.Digest, Size: info.Size, URLs: slices.Clone(info.URLs)}
	if f.name == FormatOCI && len(info.Annotations) > 0 {
		d.Annotations = info.Annotations
	}
	return d, nil
}

// layerChain lists a layer and its parents, bottom first.
func layerChain(st cstorage.Store, top string) ([]*cstorage.Layer, error) {
	var chain []*cstorage.Layer
	for id := top; id != ""; {
		l, err := st.Layer(id)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", id, err)
		}
		chain = append(chain, l)
		id = l.Parent
	}
	slices.Reverse(chain)
	return chain, nil
}

// manifestLayers returns the non-empty layers an image's stored manifest lists, or nil
// when there is no image or no manifest.
func manifestLayers(st cstorage.Store, imageID string) ([]manifest.LayerInfo, error) {
	if imageID == "" {
		return nil, nil
	}
	blob, err := st.ImageBigData(imageID, cstorage.ImageDigestBigDataKey)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, cstorage.ErrImageUnknown) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest of image %s: %w", imageID, err)
	}
	mimeType := manifest.GuessMIMEType(blob)
	if manifest.MIMETypeIsMultiImage(mimeType) {
		return nil, nil
	}
	m, err := manifest.FromBlob(blob, mimeType)
	if err != nil {
		return nil, fmt.Errorf("parse manifest of image %s: %w", imageID, err)
	}
	var out []manifest.LayerInfo
	for _, l := range m.LayerInfos() {
		if !l.EmptyLayer {
			out = append(out, l)
		}
	}
	return out, nil
}

// serialize writes the manifest of an image with this config and these layers.
func (f format) serialize(config imgspecv1.Descriptor, layers []imgspecv1.Descriptor) ([]byte, error) {
	if f.name == FormatOCI {
		return manifest.OCI1FromComponents(config, layers).Serialize()
	}
	docker := func(d imgspecv1.Descriptor) manifest.Schema2Descriptor {
		return manifest.Schema2Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, URLs: d.URLs}
	}
	ls := make([]manifest.Schema2Descriptor, 0, len(layers))
	for _, l := range layers {
		ls = append(ls, docker(l))
	}
	return manifest.Schema2FromComponents(docker(config), ls).Serialize()
}

// configDescriptor describes a config blob in format f.
func (f format) configDescriptor(blob []byte) imgspecv1.Descriptor {
	return imgspecv1.Descriptor{MediaType: f.configType, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
}
