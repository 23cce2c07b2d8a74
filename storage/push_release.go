package storage

import (
	"context"
	"encoding/json"
	"io"
	"runtime/debug"

	"go.podman.io/image/v5/types"
	cstorage "go.podman.io/storage"
)

// releasingRef is a store reference whose image source collects the memory it used to
// read a layer back, and gives it to the system, before the layer is compressed and
// sent. The store's image source copies each layer into a temporary file first, reading
// the layer's tar-split data with a parallel gzip reader that takes 4 MiB at once; the
// compression that follows takes as much again, and without a collection in between
// the process holds both at its peak.
//
// The wrapper hides image/v5's internal source interface, through which sigstore
// signatures are read: withReleasing uses it only for images that have no signatures.
type releasingRef struct{ types.ImageReference }

// withReleasing returns ref, wrapped in a releasingRef when img has no signatures.
func withReleasing(ref types.ImageReference, img *cstorage.Image) types.ImageReference {
	if signed(img) {
		return ref
	}
	return releasingRef{ref}
}

// signed reports whether the store holds signatures of img, or cannot tell.
func signed(img *cstorage.Image) bool {
	var sigs struct {
		One  []int            `json:"signature-sizes"`
		Many map[string][]int `json:"signatures-sizes"`
	}
	return img.Metadata != "" && (json.Unmarshal([]byte(img.Metadata), &sigs) != nil || len(sigs.One) > 0 || len(sigs.Many) > 0)
}

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
