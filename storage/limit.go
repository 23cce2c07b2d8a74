package storage

import (
	"context"
	"errors"
	"fmt"
	"io"

	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/types"
)

// limitedReference is an image source whose every blob is checked, as it streams, for how
// far it unpacks (see LayerExpansion): past limit, reading it fails with
// ErrLayerTooLarge, before storage has unpacked anything of it.
type limitedReference struct {
	types.ImageReference
	limit int64
}

func (r limitedReference) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	src, err := r.ImageReference.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	return limitedSource{ImageSource: src, limit: r.limit}, nil
}

func (r limitedReference) NewImage(ctx context.Context, sys *types.SystemContext) (types.ImageCloser, error) {
	src, err := r.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	img, err := image.FromSource(ctx, sys, src)
	if err != nil {
		return nil, errors.Join(err, src.Close())
	}
	return img, nil
}

type limitedSource struct {
	types.ImageSource
	limit int64
}

func (s limitedSource) GetBlob(ctx context.Context, info types.BlobInfo, cache types.BlobInfoCache) (io.ReadCloser, int64, error) {
	rc, size, err := s.ImageSource.GetBlob(ctx, info, cache)
	if err != nil {
		return nil, 0, err
	}
	return newExpansionGuard(ctx, rc, s.limit, info), size, nil
}

// expansionGuard passes a blob through unchanged while a second goroutine unpacks a copy
// of it in step (counting, never writing) with LayerExpansion. A blob that is not a tar
// (the config) ends the count quietly; one that unpacks past the limit fails the read.
type expansionGuard struct {
	rc    io.ReadCloser
	pw    *io.PipeWriter
	off   bool          // the counter stopped: pass the rest through unchecked
	done  chan struct{} // closed when the counter has ended; err is then set
	err   error         // ErrLayerTooLarge (wrapped) or nil
	layer types.BlobInfo
}

func newExpansionGuard(ctx context.Context, rc io.ReadCloser, limit int64, layer types.BlobInfo) *expansionGuard {
	pr, pw := io.Pipe()
	g := &expansionGuard{rc: rc, pw: pw, done: make(chan struct{}), layer: layer}
	go func() {
		defer close(g.done)
		_, err := LayerExpansion(ctx, pr, limit)
		if errors.Is(err, ErrLayerTooLarge) {
			g.err = fmt.Errorf("layer %s: %w", layer.Digest, err)
		}
		pr.CloseWithError(errCounterDone) // the writer's next Write fails: stop feeding it
	}()
	return g
}

var errCounterDone = errors.New("expansion counter done")

func (g *expansionGuard) Read(p []byte) (int, error) {
	n, err := g.rc.Read(p)
	if n > 0 && !g.off {
		if _, werr := g.pw.Write(p[:n]); werr != nil {
			g.off = true
			<-g.done
			if g.err != nil {
				return 0, g.err
			}
		}
	}
	if errors.Is(err, io.EOF) && !g.off {
		g.off = true
		g.pw.Close()
		<-g.done
		if g.err != nil {
			return 0, g.err
		}
	}
	return n, err
}

func (g *expansionGuard) Close() error {
	g.pw.CloseWithError(io.ErrClosedPipe)
	<-g.done
	return g.rc.Close()
}
