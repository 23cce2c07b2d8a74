package commit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	cstorage "go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"

	"github.com/forge-build/forge/storage"
)

// putFunc stores a layer tar, read from r, as a new layer on parent ("" for none).
type putFunc func(ctx context.Context, st cstorage.Store, parent string, r io.Reader) (*cstorage.Layer, error)

// putPlain stores the tar as it is.
func putPlain(ctx context.Context, st cstorage.Store, parent string, r io.Reader) (*cstorage.Layer, error) {
	layer, _, err := st.PutLayer("", parent, nil, "", false, nil, storage.ContextReader(ctx, r))
	if err != nil {
		return nil, fmt.Errorf("store layer: %w", err)
	}
	return layer, nil
}

// newLayer stores the container's changes as a new layer with put: its diff against its
// image, or (squash) its whole filesystem as a parentless layer. It returns nil when
// nothing changed in a container made from an image: the commit then changes the config
// only. With consume the container's changes are moved rather than copied and put is not
// used, where the driver allows.
func newLayer(ctx context.Context, s *storage.Store, c *storage.Container, squash, consume bool, put putFunc) (*cstorage.Layer, error) {
	if squash {
		return squashLayer(ctx, s, c, put)
	}
	if tracked, err := s.TrackedChanges(ctx, c); tracked != nil || err != nil {
		if err != nil {
			return nil, err
		}
		return trackedLayer(ctx, s, c, tracked, put)
	}
	st := s.Storage()
	if consume {
		if layer, moved, err := moveLayer(ctx, s, c); moved || err != nil {
			return layer, err
		}
	}
	if c.FromImageID != "" {
		changes, err := st.Changes(c.ParentLayer, c.LayerID)
		if err != nil {
			return nil, fmt.Errorf("list changes: %w", err)
		}
		if len(changes) == 0 {
			return nil, nil
		}
	}
	diff, err := spoolDiff(ctx, st, c.ParentLayer, c.LayerID)
	if err != nil {
		return nil, err
	}
	defer diff.Close()
	return put(ctx, st, c.ParentLayer, diff)
}

// spoolDiff copies the layer diff (uncompressed tar, OCI whiteouts) to an unlinked
// temporary file. The store holds its layer lock while a diff is open, so the diff must
// be read completely before the new layer can be written.
func spoolDiff(ctx context.Context, st cstorage.Store, from, to string) (*os.File, error) {
	f, err := os.CreateTemp("", "forge-layer-*.tar")
	if err != nil {
		return nil, fmt.Errorf("stage layer: %w", err)
	}
	err = os.Remove(f.Name())
	if err == nil {
		err = writeDiff(ctx, st, from, to, f)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stage layer: %w", err)
	}
	return f, nil
}

func writeDiff(ctx context.Context, st cstorage.Store, from, to string, w io.Writer) (retErr error) {
	rc, err := st.Diff(from, to, &cstorage.DiffOptions{Compression: new(archive.Uncompressed)})
	if err != nil {
		return fmt.Errorf("diff container layer: %w", err)
	}
	defer func() {
		if err := rc.Close(); err != nil && retErr == nil {
			retErr = fmt.Errorf("diff container layer: %w", err)
		}
	}()
	if _, err := io.Copy(w, storage.ContextReader(ctx, rc)); err != nil {
		return fmt.Errorf("diff container layer: %w", err)
	}
	return nil
}

// squashLayer stores the container's whole filesystem, read through its mount, as one
// layer without a parent.
func squashLayer(ctx context.Context, s *storage.Store, c *storage.Container, put putFunc) (layer *cstorage.Layer, retErr error) {
	dir, err := s.Mount(c)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := s.Unmount(c, false); err != nil && retErr == nil {
			retErr = err
			if layer != nil {
				retErr = errors.Join(err, deleteLayer(s.Storage(), layer.ID))
				layer = nil
			}
		}
	}()
	tr, err := archive.TarWithOptions(dir, &archive.TarOptions{Compression: archive.Uncompressed})
	if err != nil {
		return nil, fmt.Errorf("read container filesystem: %w", err)
	}
	defer tr.Close()
	return put(ctx, s.Storage(), "", tr)
}
