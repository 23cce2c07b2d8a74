package commit

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	digest "github.com/opencontainers/go-digest"

	"github.com/forge-build/forge/storage"
)

// Reconfigure makes an image of the layers of image id with the configuration cfg, in
// the format o names, and returns its ID; the layers are shared, not copied. cfg must
// list exactly those layers. A build uses it to give an image from its cache the history
// of the instructions that reuse it. Of o only Names and Format are used: cfg carries
// its own times.
func Reconfigure(ctx context.Context, s *storage.Store, id string, cfg storage.ImageConfig, o Options) (string, error) {
	st, err := o.settings()
	if err != nil {
		return "", err
	}
	stored, err := s.Storage().Image(id)
	if err != nil {
		return "", fmt.Errorf("reconfigure image %s: %w", id, err)
	}
	chain, err := layerChain(s.Storage(), stored.TopLayer)
	if err != nil {
		return "", err
	}
	var diffIDs []digest.Digest
	for _, l := range chain {
		diffIDs = append(diffIDs, l.UncompressedDigest)
	}
	if !slices.Equal(diffIDs, cfg.RootFS.DiffIDs) {
		return "", fmt.Errorf("reconfigure image %s: the configuration lists other layers", id)
	}
	layers, err := st.format.baseLayers(s.Storage(), &storage.Container{FromImageID: id, ParentLayer: stored.TopLayer})
	if err != nil {
		return "", err
	}
	img := &image{topLayer: stored.TopLayer, created: st.created}
	if cfg.Created != nil {
		img.created = *cfg.Created
	}
	if img.config, err = json.Marshal(cfg); err != nil {
		return "", fmt.Errorf("encode config: %w", err)
	}
	if img.manifest, err = st.format.serialize(st.format.configDescriptor(img.config), layers); err != nil {
		return "", fmt.Errorf("encode manifest: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	newID, _, err := img.create(s.Storage(), st.names, st.Metadata)
	return newID, err
}
