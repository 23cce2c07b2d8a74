package storage

import (
	"context"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/types"
	cstorage "go.podman.io/storage"
)

// PushedLayers remembers the layers that the pushes of one process put in one registry
// repository, by the digest of their content: a later push there that has them (a build's
// next cache entry holds every layer of the one before) reuses them without asking the
// registry. Left to the library, every push asks about each of its layers twice, so a
// stage of n steps costs about n² requests. Its methods may be called at once.
type PushedLayers struct {
	mu    sync.Mutex
	repo  string
	blobs map[digest.Digest]types.BlobInfo // by uncompressed digest: as the registry has it
	// pushesOnly is set once a push with the record failed: the layers of entries found
	// in the repository (NoteRemote) are not taken as there any more, only those pushed.
	pushesOnly bool
}

// NewPushedLayers returns an empty record for pushes to repo, a registry repository
// without a tag (a docker:// prefix and short names are accepted).
func NewPushedLayers(repo string) *PushedLayers {
	if named, err := reference.ParseNormalizedNamed(strings.TrimPrefix(repo, "docker://")); err == nil {
		repo = named.Name()
	}
	return &PushedLayers{repo: repo, blobs: map[digest.Digest]types.BlobInfo{}}
}

// applies reports whether a push of img to dest, with sys and the manifest type asked
// for, may reuse p's layers: a registry reference to p's repository, an image without
// signatures, no manifest type or compression forced. The reuse goes through image/v5's
// public destination interface, which passes on neither signatures nor a required
// compression or the manifest types wanted. p may be nil.
func (p *PushedLayers) applies(dest types.ImageReference, sys *types.SystemContext, manifestType string, img *cstorage.Image) bool {
	return p != nil && dest.Transport().Name() == "docker" && dest.DockerReference() != nil &&
		dest.DockerReference().Name() == p.repo && manifestType == "" && sys.CompressionFormat == nil && !signed(img)
}

// forget drops every recorded layer, after a push with them failed: the registry may
// not have one (lost, or an entry read through a mirror named layers only the mirror has).
func (p *PushedLayers) forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.blobs)
	p.pushesOnly = true
}

// lookup returns the pushed blob of the layer whose content has digest d.
func (p *PushedLayers) lookup(d digest.Digest) (types.BlobInfo, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.blobs[d]
	return b, ok
}

// note records the layers of a manifest the repository accepted, given the uncompressed
// digests of its layers in order (the image's diff IDs). Layers whose compression the
// media type does not say are left out: the library then asks about them as before.
func (p *PushedLayers) note(raw []byte, mimeType string, diffIDs []digest.Digest) {
	m, err := manifest.FromBlob(raw, manifest.NormalizedMIMEType(mimeType))
	if err != nil {
		return
	}
	layers := m.LayerInfos()
	if len(layers) != len(diffIDs) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, l := range layers {
		algo := layerCompression(l.MediaType)
		if algo == nil || l.EmptyLayer {
			continue
		}
		p.blobs[diffIDs[i]] = types.BlobInfo{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType,
			CompressionOperation: types.Compress, CompressionAlgorithm: algo}
	}
}

// NoteRemote records the layers of a registry image read by FetchRemote (a cache entry
// found with --cache-from) when it is in p's repository: the registry has them, and a
// build that goes on from the entry pushes its next steps' entries there. p may be nil.
func (p *PushedLayers) NoteRemote(ri *RemoteImage) {
	if p == nil {
		return
	}
	named, err := reference.ParseNormalizedNamed(ri.Name)
	if err != nil || named.Name() != p.repo {
		return
	}
	p.mu.Lock()
	pushesOnly := p.pushesOnly
	p.mu.Unlock()
	if !pushesOnly {
		p.note(ri.manifest, manifest.GuessMIMEType(ri.manifest), ri.Config.RootFS.DiffIDs)
	}
}

// layerCompression is the compression a layer media type names; nil for any other.
func layerCompression(mediaType string) *compression.Algorithm {
	switch mediaType {
	case imgspecv1.MediaTypeImageLayerGzip, manifest.DockerV2Schema2LayerMediaType:
		return &compression.Gzip
	case imgspecv1.MediaTypeImageLayerZstd:
		return &compression.Zstd
	}
	return nil
}

// reusingRef is a registry reference whose destination answers, from a PushedLayers,
// whether it has a layer pushed before.
type reusingRef struct {
	types.ImageReference
	pushed *PushedLayers
}

func (r reusingRef) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	dest, err := r.ImageReference.NewImageDestination(ctx, sys)
	if err != nil {
		return nil, err
	}
	return reusingDest{ImageDestination: dest, pushed: r.pushed}, nil
}

type reusingDest struct {
	types.ImageDestination
	pushed *PushedLayers
}

// TryReusingBlob answers for a layer pushed before without a request. The layer is
// offered by its uncompressed digest (the store's), so the compressed blob stands in for
// it only where the copy may substitute one.
func (d reusingDest) TryReusingBlob(ctx context.Context, info types.BlobInfo, cache types.BlobInfoCache, canSubstitute bool) (bool, types.BlobInfo, error) {
	if b, ok := d.pushed.lookup(info.Digest); ok && canSubstitute {
		return true, b, nil
	}
	return d.ImageDestination.TryReusingBlob(ctx, info, cache, canSubstitute)
}
