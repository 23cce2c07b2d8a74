package commit

import (
	"context"
	"errors"
	"fmt"

	cstorage "go.podman.io/storage"

	"github.com/forge-build/forge/storage"
)

// CommitLink makes an image of the container's image with one more layer: the single
// layer of the image layerImage, stored again on top of it byte for byte, so its digest
// does not depend on what is below. The container's own changes are not looked at; its
// configuration is the new image's. COPY --link uses it: its files are copied into an
// empty container, apart from the image they end up on.
func CommitLink(ctx context.Context, s *storage.Store, c *storage.Container, layerImage string, o Options) (imageID string, retErr error) {
	st, err := o.settings()
	if err != nil {
		return "", err
	}
	if st.Squash {
		return "", errors.New("commit: a linked layer cannot be squashed")
	}
	cfg := c.Config.Clone()
	if err := Apply(&cfg, st.changes); err != nil {
		return "", err
	}
	layer, err := restack(ctx, s.Storage(), layerImage, c.ParentLayer)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, deleteLayer(s.Storage(), layer.ID))
		}
	}()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	img, err := assemble(s.Storage(), c, cfg, layer, st)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	id, reused, err := img.create(s.Storage(), st.names, st.Metadata)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	if reused {
		return id, deleteLayer(s.Storage(), layer.ID)
	}
	return id, nil
}

// restack stores the only layer of image imageID again, with parent as its parent. The
// store rebuilds the layer's tar exactly as it was put (from its tar-split data), so the
// new layer has the same digest.
func restack(ctx context.Context, st cstorage.Store, imageID, parent string) (*cstorage.Layer, error) {
	img, err := st.Image(imageID)
	if err != nil {
		return nil, fmt.Errorf("linked layer image %s: %w", imageID, err)
	}
	top, err := st.Layer(img.TopLayer)
	if err != nil {
		return nil, fmt.Errorf("linked layer of %s: %w", imageID, err)
	}
	if top.Parent != "" {
		return nil, fmt.Errorf("linked layer image %s has more than one layer", imageID)
	}
	diff, err := spoolDiff(ctx, st, "", top.ID)
	if err != nil {
		return nil, err
	}
	defer diff.Close()
	layer, _, err := st.PutLayer("", parent, nil, "", false, nil, storage.ContextReader(ctx, diff))
	if err != nil {
		return nil, fmt.Errorf("store linked layer: %w", err)
	}
	if layer.UncompressedDigest != top.UncompressedDigest {
		err := fmt.Errorf("linked layer changed when stored again: %s, was %s", layer.UncompressedDigest, top.UncompressedDigest)
		return nil, errors.Join(err, deleteLayer(st, layer.ID))
	}
	return layer, nil
}
