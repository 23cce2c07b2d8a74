package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/pkg/compression"
	compressiontypes "go.podman.io/image/v5/pkg/compression/types"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	cstorage "go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/stringid"
	"golang.org/x/sync/errgroup"
)

// A staged pull brings a registry image into an overlay store without a process per
// layer. The storage library unpacks every layer it is given in a re-executed copy of the
// binary, chrooted into the layer's directory: for a 30 MB static forge that start costs
// 20-30 ms, more than a small layer's whole unpacking. Here each missing layer is
// downloaded, checked and unpacked by forge itself into a staging directory, on a thread
// of its own that is chrooted there (the same confinement, without the exec), several
// layers at once; the store then takes the directories in order.

// stagedParallel is how many layers download and unpack at once.
const stagedParallel = 2

// errNotStaged says an image or store needs the general copy instead.
var errNotStaged = errors.New("not a case for the staged pull")

// stagedPull is one image for pullStaged.
type stagedPull struct {
	src      types.ImageReference // a registry image, by tag or digest
	named    reference.Named      // the name the image gets; nil for none
	id       string               // the ID it must have ("" for any): its config digest
	progress io.Writer            // nil: silent
	seen     *activity            // told of every read; nil: nobody watches
	// cacheEntry: store the manifest without the cache entry's list (withoutCacheLinks).
	cacheEntry bool
}

// pullStaged brings a registry image into the store and returns its ID. It returns
// errNotStaged, having changed nothing, when the store or the image needs the general
// copy (a driver other than overlay, composefs, foreign or empty layers).
func (s *Store) pullStaged(ctx context.Context, sys *types.SystemContext, p stagedPull) (_ string, retErr error) {
	st := s.store
	if !canStage(st) {
		return "", errNotStaged
	}
	is, err := p.src.NewImageSource(ctx, sys)
	if err != nil {
		return "", err
	}
	defer is.Close()
	blob, mimeType, err := is.GetManifest(ctx, nil)
	if err != nil {
		return "", err
	}
	if d, ok := p.src.DockerReference().(reference.Digested); ok {
		if match, err := manifest.MatchesDigest(blob, d.Digest()); err != nil || !match {
			return "", fmt.Errorf("the manifest does not match its digest %s", d.Digest())
		}
	}
	var list []byte             // the manifest list the image was chosen from, if any
	var instance *digest.Digest // and the image's digest in it
	if manifest.MIMETypeIsMultiImage(mimeType) {
		l, err := manifest.ListFromBlob(blob, mimeType)
		if err != nil {
			return "", err
		}
		chosen, err := l.ChooseInstance(sys)
		if err != nil {
			return "", err
		}
		list, instance = blob, &chosen
		if blob, mimeType, err = is.GetManifest(ctx, instance); err != nil {
			return "", err
		}
		if match, err := manifest.MatchesDigest(blob, chosen); err != nil || !match {
			return "", fmt.Errorf("the manifest does not match its digest %s", chosen)
		}
	}
	if manifest.MIMETypeIsMultiImage(mimeType) || mimeType == manifest.DockerV2Schema1MediaType || mimeType == manifest.DockerV2Schema1SignedMediaType {
		return "", errNotStaged
	}
	m, err := manifest.FromBlob(blob, mimeType)
	if err != nil {
		return "", err
	}
	if err := allowed(ctx, is, instance); err != nil {
		return "", err
	}
	layers := m.LayerInfos()
	for _, l := range layers {
		if len(l.URLs) > 0 || l.EmptyLayer {
			return "", errNotStaged
		}
	}
	if m.ConfigInfo().Digest.Algorithm() != digest.SHA256 {
		return "", errNotStaged // the store's image IDs are sha256 digests of the config
	}
	id := m.ConfigInfo().Digest.Encoded()
	if p.id != "" && p.id != id {
		return "", fmt.Errorf("config %s is not image %s", m.ConfigInfo().Digest, p.id)
	}
	config, err := readBlob(ctx, is, m.ConfigInfo(), 4<<20)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	var cfg ImageConfig
	if err := json.Unmarshal(config, &cfg); err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return "", fmt.Errorf("the manifest lists %d layers and the config %d", len(layers), len(cfg.RootFS.DiffIDs))
	}

	// The layers the store has already, bottom up, under the IDs image/v5 gives them too.
	ids := make([]string, len(layers))
	have := 0
	for i, diffID := range cfg.RootFS.DiffIDs {
		parent := ""
		if i > 0 {
			parent = ids[i-1]
		}
		ids[i] = chainLayerID(parent, diffID)
		if have == i {
			if found := existingLayer(st, ids[i], parent, diffID); found != "" {
				ids[i] = found
				have++
			}
		}
	}
	counter := newTransferCounter(p.progress, p.seen)
	defer func() { counter.finish(retErr == nil) }()
	for i := range have {
		s.say(p.progress, "Copying blob %s skipped: already exists\n", layers[i].Digest)
		counter.events <- types.ProgressProperties{Event: types.ProgressEventSkipped}
	}

	staged := make([]*graphdriver.DriverWithDifferOutput, len(layers))
	defer func() {
		for _, out := range staged {
			if out != nil {
				retErr = errors.Join(retErr, cleanupStaged(st, out))
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(stagedParallel)
	for i := have; i < len(layers); i++ {
		s.say(p.progress, "Copying blob %s\n", layers[i].Digest)
		g.Go(func() error {
			out, err := s.stageLayer(gctx, is, layers[i].BlobInfo, cfg.RootFS.DiffIDs[i], p.seen)
			staged[i] = out
			if err != nil {
				return fmt.Errorf("layer %s: %w", layers[i].Digest, err)
			}
			counter.events <- types.ProgressProperties{Event: types.ProgressEventDone, Offset: uint64(max(layers[i].Size, 0))}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	if err := applyStaged(st, ids, have, staged, layers, cfg.RootFS.DiffIDs); err != nil {
		return "", err
	}
	s.say(p.progress, "Copying config %s\n", m.ConfigInfo().Digest)
	counter.events <- types.ProgressProperties{Event: types.ProgressEventDone, Offset: uint64(len(config))}
	s.say(p.progress, "Writing manifest to image destination\n")
	top := ""
	if len(ids) > 0 {
		top = ids[len(ids)-1]
	}
	created := time.Time{}
	if cfg.Created != nil {
		created = *cfg.Created
	}
	if p.cacheEntry {
		blob = withoutCacheLinks(blob)
	}
	if _, _, err := RecordImage(st, top, created, config, blob, list, ""); err != nil {
		return "", err
	}
	if p.named != nil {
		if err := st.AddNames(id, []string{p.named.String()}); err != nil {
			return "", fmt.Errorf("name image %s: %w", id, err)
		}
	}
	return id, nil
}

// applyMu makes the staged pulls of one process take their layers one at a time, so one
// that finds a layer another has just stored uses it, rather than giving storage the same
// layer ID again (which would replace the files of a layer that may be in use).
var applyMu sync.Mutex

// applyStaged gives the store the staged layers from have on, bottom up, and sets their
// IDs in ids. A layer the store got meanwhile (another pull) is used instead of the
// staged copy.
func applyStaged(st cstorage.Store, ids []string, have int, staged []*graphdriver.DriverWithDifferOutput, layers []manifest.LayerInfo, diffIDs []digest.Digest) error {
	applyMu.Lock()
	defer applyMu.Unlock()
	for i := have; i < len(layers); i++ {
		parent := ""
		if i > 0 {
			parent = ids[i-1]
		}
		id := chainLayerID(parent, diffIDs[i])
		if found := existingLayer(st, id, parent, diffIDs[i]); found != "" {
			ids[i] = found
			err := cleanupStaged(st, staged[i])
			staged[i] = nil
			if err != nil {
				return err
			}
			continue
		}
		if _, err := st.Layer(id); err == nil {
			id = stringid.GenerateRandomID() // the ID is taken by other content
		}
		if _, err := ApplyStagedLayer(st, cstorage.ApplyStagedLayerOptions{
			ID: id, ParentLayer: parent, DiffOutput: staged[i],
			LayerOptions: &cstorage.LayerOptions{
				OriginalDigest: layers[i].Digest, OriginalSize: &layers[i].Size,
				UncompressedDigest: diffIDs[i],
			},
		}); err != nil {
			return fmt.Errorf("store layer %s: %w", layers[i].Digest, err)
		}
		ids[i] = id
		staged[i] = nil // the store has it now
	}
	return nil
}

func (s *Store) say(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format, args...)
	}
}

// cleanupStaged removes a staging directory the store did not take.
func cleanupStaged(st cstorage.Store, out *graphdriver.DriverWithDifferOutput) error {
	if out.TarSplit != nil {
		out.TarSplit.Close()
	}
	if out.Target == "" {
		return nil
	}
	return st.CleanupStagedLayer(out)
}

// allowed applies the signature policy to the image is reads (instance, when it was
// chosen from a manifest list), as a copy does.
func allowed(ctx context.Context, is types.ImageSource, instance *digest.Digest) error {
	return withPolicy(func(policy *signature.PolicyContext) error {
		_, err := policy.IsRunningImageAllowed(ctx, image.UnparsedInstance(is, instance))
		return err
	})
}

// canStage reports whether the store takes layers through staging directories: overlay
// without composefs (which wants another layout).
func canStage(st cstorage.Store) bool {
	if st.GraphDriverName() != "overlay" {
		return false
	}
	for _, o := range st.GraphOptions() {
		if k, v, _ := strings.Cut(strings.ToLower(o), "="); strings.HasSuffix(k, "use_composefs") && v != "false" {
			return false
		}
	}
	return true
}

// chainLayerID is the ID image/v5 gives a pulled layer: its diff ID when it is the
// bottom one, else a digest of its parent's ID and its diff ID. Using the same IDs lets
// either kind of pull find the layers of the other.
func chainLayerID(parent string, diffID digest.Digest) string {
	if parent == "" {
		return diffID.Encoded()
	}
	return digest.Canonical.FromString(parent + "+" + diffID.Encoded()).Encoded()
}

// existingLayer returns the ID of a stored layer with diffID on parent ("" for none):
// the one with the chained ID, or any other (a build's commit names its layers at random).
func existingLayer(st cstorage.Store, id, parent string, diffID digest.Digest) string {
	if l, err := st.Layer(id); err == nil && l.Parent == parent && l.UncompressedDigest == diffID {
		return id
	}
	found, err := st.LayersByUncompressedDigest(diffID)
	if err != nil {
		return ""
	}
	for _, l := range found {
		if l.Parent == parent {
			return l.ID
		}
	}
	return ""
}

// readBlob reads a small blob (a config) whole and checks its digest.
func readBlob(ctx context.Context, is types.ImageSource, info types.BlobInfo, limit int64) ([]byte, error) {
	rc, _, err := is.GetBlob(ctx, info, none.NoCache)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("blob %s is over %d bytes", info.Digest, limit)
	}
	if err := info.Digest.Validate(); err != nil {
		return nil, err
	}
	if got := info.Digest.Algorithm().FromBytes(data); got != info.Digest {
		return nil, fmt.Errorf("blob %s has digest %s", info.Digest, got)
	}
	return data, nil
}

// stageLayer downloads a layer and unpacks it into a new staging directory, checking its
// digest, its diff ID and (with a limit set) its unpacked size as it streams.
func (s *Store) stageLayer(ctx context.Context, is types.ImageSource, info types.BlobInfo, diffID digest.Digest, seen *activity) (*graphdriver.DriverWithDifferOutput, error) {
	if err := info.Digest.Validate(); err != nil {
		return nil, err
	}
	rc, _, err := is.GetBlob(ctx, info, none.NoCache)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	verifier := info.Digest.Verifier()
	compressed := io.TeeReader(readerFunc(func(p []byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := rc.Read(p)
		seen.touch()
		return n, err
	}), verifier)
	raw, err := decompress(compressed)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	d := &unpackDiffer{ctx: ctx, r: raw, limit: s.maxLayerSize}
	out, err := s.store.PrepareStagedLayer(nil, d)
	if err != nil {
		if out != nil {
			err = errors.Join(err, cleanupStaged(s.store, out))
		}
		return nil, err
	}
	// The rest of the blob (padding after the tar, the compressor's trailer) counts too.
	if _, err := io.Copy(io.Discard, compressed); err != nil {
		return out, err
	}
	if !verifier.Verified() {
		return out, fmt.Errorf("the blob does not match its digest")
	}
	if out.UncompressedDigest != diffID {
		return out, fmt.Errorf("unpacked, it has digest %s, and the config says %s", out.UncompressedDigest, diffID)
	}
	out.CompressedDigest = info.Digest
	return out, nil
}

// decompress undoes a layer's compression, which it detects. gzip, by far the most
// common, is read by one goroutine with a small window: the unpacking runs on another
// thread already, and a parallel reader's read-ahead blocks would be most of the pull's
// memory.
func decompress(r io.Reader) (io.ReadCloser, error) {
	algo, _, r, err := compression.DetectCompressionFormat(r)
	if err != nil {
		return nil, err
	}
	if algo.Name() == compressiontypes.GzipAlgorithmName {
		return gzip.NewReader(r)
	}
	raw, _, err := compression.AutoDecompress(r)
	return raw, err
}

// unpackDiffer is the storage "differ" that fills a staging directory from a tar stream
// (see DescribeTar).
type unpackDiffer struct {
	ctx   context.Context
	r     io.Reader // the uncompressed tar
	limit int64     // the --max-layer-size, or 0
}

func (u *unpackDiffer) ApplyDiff(dest string, opts *archive.TarOptions, _ *graphdriver.DifferOptions) (graphdriver.DriverWithDifferOutput, error) {
	return DescribeTar(u.ctx, u.r, u.limit, func(body io.Reader) error {
		return UnpackInRoot(body, dest, dest, opts)
	})
}

func (u *unpackDiffer) Close() error { return nil }
