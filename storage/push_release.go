package storage

import (
	"context"
	"io"
	"runtime/debug"

	"go.podman.io/image/v5/types"
)

// releasingRef is a store reference whose image source gives the memory it used to read
// a layer back to the system before the layer is compressed and sent. The store's image
// source copies each layer into a temporary file first (reading its tar-split data with
// a parallel gzip reader that takes 4 MiB at once); the compression that follows takes
// as much again, and a process's peak memory is what both phases leave resident.
type releasingRef struct{ types.ImageReference }

func (r releasingRef) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	src, err := r.ImageReference.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	return releasingSource{src}, nil
}

type releasingSource struct{ types.ImageSource }

func (s releasingSource) Reference() types.ImageReference {
	return releasingRef{s.ImageSource.Reference()}
}

func (s releasingSource) GetBlob(ctx context.Context, info types.BlobInfo, cache types.BlobInfoCache) (io.ReadCloser, int64, error) {
	rc, n, err := s.ImageSource.GetBlob(ctx, info, cache)
	if err == nil && n > 1<<20 {
		debug.FreeOSMemory()
	}
	return rc, n, err
}
