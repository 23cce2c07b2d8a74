package commit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	cstorage "go.podman.io/storage"

	"github.com/forge-build/forge/storage"
)

// image is a new image ready to be recorded in the store.
type image struct {
	config   []byte
	manifest []byte
	topLayer string
	created  time.Time
}

// assemble builds the config and manifest of the image: the container's config (changes
// applied) with the new layer and its history entry, in the chosen format.
func assemble(st cstorage.Store, c *storage.Container, cfg storage.ImageConfig, layer *cstorage.Layer, s settings) (*image, error) {
	var layers []imgspecv1.Descriptor
	if !s.Squash {
		var err error
		if layers, err = s.format.baseLayers(st, c); err != nil {
			return nil, err
		}
	}
	img := &image{topLayer: c.ParentLayer, created: s.created}
	if layer != nil {
		d, err := s.format.uncompressedDescriptor(layer)
		if err != nil {
			return nil, err
		}
		layers = append(layers, d)
		img.topLayer = layer.ID
	}
	record(&cfg, layer, s)
	trim(&cfg, s)
	var err error
	if img.config, err = json.Marshal(cfg); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	if img.manifest, err = s.format.serialize(s.format.configDescriptor(img.config), layers); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return img, nil
}

// record adds the new layer (nil: none) and its history entry to the config.
func record(cfg *storage.ImageConfig, layer *cstorage.Layer, s settings) {
	created := s.created
	cfg.Created = &created
	if s.Author != "" {
		cfg.Author = s.Author
	}
	h := imgspecv1.History{Created: &created, CreatedBy: s.CreatedBy, Comment: s.Comment,
		Author: s.Author, EmptyLayer: layer == nil}
	cfg.RootFS.Type = "layers"
	switch {
	case s.Squash:
		cfg.RootFS.DiffIDs = []digest.Digest{layer.UncompressedDigest}
		cfg.History = []imgspecv1.History{h}
	case layer != nil:
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, layer.UncompressedDigest)
		cfg.History = append(append(cfg.History, emptyEntries(s)...), h)
	default:
		cfg.History = append(append(cfg.History, emptyEntries(s)...), h)
	}
	if cfg.RootFS.DiffIDs == nil {
		cfg.RootFS.DiffIDs = []digest.Digest{} // "diff_ids": [] rather than null
	}
}

// emptyEntries are the history entries of the instructions that came before this commit
// and changed only the configuration.
func emptyEntries(s settings) []imgspecv1.History {
	out := make([]imgspecv1.History, 0, len(s.EmptyLayers))
	for _, by := range s.EmptyLayers {
		created := s.created
		out = append(out, imgspecv1.History{Created: &created, CreatedBy: by, EmptyLayer: true})
	}
	return out
}

// trim drops what the OCI format cannot carry, saying so once.
func trim(cfg *storage.ImageConfig, s settings) {
	if s.format.name != FormatOCI {
		return
	}
	c := &cfg.Config
	var dropped []string
	if c.Healthcheck != nil {
		dropped = append(dropped, "HEALTHCHECK")
	}
	if len(c.OnBuild) > 0 {
		dropped = append(dropped, "ONBUILD")
	}
	if len(c.Shell) > 0 {
		dropped = append(dropped, "SHELL")
	}
	if len(dropped) == 0 {
		return
	}
	s.log.Warn("the OCI image format drops "+strings.Join(dropped, ", ")+" (use --format docker to keep them)",
		"dropped", strings.Join(dropped, ","))
	c.Healthcheck, c.OnBuild, c.Shell = nil, nil, nil
}

// create records the image in the store, named as given and with metadata (see
// Options.Metadata); names held by other images move to it. reused is true when an
// identical image (same config digest) existed already.
func (img *image) create(st cstorage.Store, names []string, metadata string) (id string, reused bool, err error) {
	id, reused, err = storage.RecordImage(st, img.topLayer, img.created, img.config, img.manifest, nil, metadata)
	if err != nil {
		return "", false, err
	}
	if len(names) == 0 {
		return id, reused, nil
	}
	if err := st.AddNames(id, names); err != nil {
		err = fmt.Errorf("name image %s: %w", id, err)
		if !reused {
			if _, derr := st.DeleteImage(id, true); derr != nil {
				err = errors.Join(err, fmt.Errorf("remove image %s: %w", id, derr))
			}
		}
		return "", false, err
	}
	return id, reused, nil
}
