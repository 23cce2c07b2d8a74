package commit

import (
	"context"
	"errors"
	"fmt"

	cstorage "go.podman.io/storage"

	"github.com/forge-build/forge/storage"
)

// trackedLayer stores the changes found by comparing a container's root filesystem
// before and after (chroot isolation, where the store is vfs and a layer diff against the
// parent's copy would read every file's metadata twice and never see a replaced
// directory). Like newLayer it returns nil when nothing changed in a container made from
// an image.
func trackedLayer(ctx context.Context, s *storage.Store, c *storage.Container, t *storage.TrackedChanges, put putFunc) (_ *cstorage.Layer, retErr error) {
	defer func() {
		if err := t.Close(); err != nil && retErr == nil {
			retErr = err
		}
	}()
	if len(t.Changes) == 0 && c.FromImageID != "" {
		return nil, nil
	}
	tr, err := t.Tar()
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	layer, err := put(ctx, s.Storage(), c.ParentLayer, tr)
	// Closing the stream ends the producer if PutLayer stopped reading early.
	if cerr := tr.Close(); err == nil && cerr != nil && !errors.Is(cerr, context.Canceled) {
		err = cerr
	}
	if err != nil {
		if layer != nil {
			err = errors.Join(err, deleteLayer(s.Storage(), layer.ID))
		}
		return nil, err
	}
	return layer, nil
}
