package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

// PullUnnamed copies an image from any transport reference into the store without giving
// it a name (a build cache entry), and returns its ID.
func (s *Store) PullUnnamed(ctx context.Context, ref string, r RegistryOptions) (string, error) {
	sys, err := s.systemContext(r)
	if err != nil {
		return "", err
	}
	src, err := alltransports.ParseImageName(ref)
	if err != nil {
		return "", fmt.Errorf("invalid reference %q: %w", ref, err)
	}
	img, err := s.copyIn(ctx, sys, src, nil, "", PullOptions{Registry: r})
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// RemoteImage is an image in a registry known by its manifest and configuration only,
// which is all a build needs to go on from a cache entry: the next step's cache key
// comes from the configuration. Its layers are pulled (Pull) only when something needs
// the files.
type RemoteImage struct {
	Name   string // the repository and digest that pull exactly this image
	ID     string // the ID the store gives it: its config digest
	Config ImageConfig
	Layers int // how many layers its manifest lists
	// Next are the cache entries that followed this one in the build that pushed it, as
	// its manifest lists them (CacheLinkAnnotation); nil when it lists none.
	Next []CacheLink
	reg  RegistryOptions
	// manifest and config are the blobs as the registry has them.
	manifest, config []byte
}

// CacheLinkAnnotation is the manifest annotation in which a cache entry lists the entries
// that followed it in its stage (a JSON array of CacheLink), so that a build going
// through them reads each by digest over one connection instead of looking every key up.
const CacheLinkAnnotation = "forge.cache.next"

// maxCacheLinks is how many following entries one entry lists: a longer stage's later
// entries are found by their own lists.
const maxCacheLinks = 64

// CacheLink names one cache entry of a repository: the key that is its tag, and its
// manifest's digest.
type CacheLink struct {
	Key    string        `json:"key"`
	Digest digest.Digest `json:"digest"`
}

// ErrNoRemoteImage says a registry has no image under a tag.
var ErrNoRemoteImage = errors.New("no such image")

// FetchRemote reads the manifest and configuration of a registry image (name is
// "host/repo:tag"). A missing tag gives ErrNoRemoteImage.
func (s *Store) FetchRemote(ctx context.Context, name string, r RegistryOptions) (*RemoteImage, error) {
	sys, err := s.systemContext(r)
	if err != nil {
		return nil, err
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, fmt.Errorf("invalid reference %q: %w", name, err)
	}
	ref, err := docker.NewReference(reference.TagNameOnly(named))
	if err != nil {
		return nil, err
	}
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, missingTag(name, err)
	}
	defer src.Close()
	blob, mimeType, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, missingTag(name, err)
	}
	dgst, err := manifest.Digest(blob)
	if err != nil {
		return nil, err
	}
	return readRemote(ctx, src, reference.TrimNamed(named), dgst, blob, mimeType, r)
}

// missingTag turns a registry's "manifest unknown" into ErrNoRemoteImage: the library
// gives no typed error for a missing tag.
func missingTag(name string, err error) error {
	if strings.Contains(err.Error(), "manifest unknown") {
		return fmt.Errorf("%s: %w", name, ErrNoRemoteImage)
	}
	return err
}

// readRemote reads the configuration of the image whose manifest blob (digest dgst) src
// gave, and describes it.
func readRemote(ctx context.Context, src types.ImageSource, repo reference.Named, dgst digest.Digest, blob []byte, mimeType string, r RegistryOptions) (*RemoteImage, error) {
	name := repo.Name() + "@" + dgst.String()
	if manifest.MIMETypeIsMultiImage(mimeType) {
		return nil, fmt.Errorf("%s: a manifest list, which no cache entry is", name)
	}
	m, err := manifest.FromBlob(blob, mimeType)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if m.ConfigInfo().Digest.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("%s: config digest %s is not sha256", name, m.ConfigInfo().Digest)
	}
	config, err := readBlob(ctx, src, m.ConfigInfo(), 4<<20) // checked against its digest
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", name, err)
	}
	ri := &RemoteImage{Name: name, ID: m.ConfigInfo().Digest.Encoded(), Layers: len(m.LayerInfos()),
		reg: r, manifest: blob, config: config}
	if err := json.Unmarshal(config, &ri.Config); err != nil {
		return nil, fmt.Errorf("%s: config: %w", name, err)
	}
	if len(ri.Config.RootFS.DiffIDs) != ri.Layers {
		return nil, fmt.Errorf("%s: the config lists %d layers, the manifest %d", name, len(ri.Config.RootFS.DiffIDs), ri.Layers)
	}
	if mimeType == imgspecv1.MediaTypeImageManifest {
		ri.Next = cacheLinks(blob)
	}
	return ri, nil
}

// cacheLinks reads the CacheLinkAnnotation of an OCI manifest: at most maxCacheLinks
// links, each a key of 64 hex digits and a valid digest. A list that does not parse, or
// has a link that is neither, is no list: the entries are then looked up by key.
func cacheLinks(blob []byte) []CacheLink {
	var oci imgspecv1.Manifest
	if json.Unmarshal(blob, &oci) != nil || oci.Annotations[CacheLinkAnnotation] == "" {
		return nil
	}
	var links []CacheLink
	if json.Unmarshal([]byte(oci.Annotations[CacheLinkAnnotation]), &links) != nil {
		return nil
	}
	for _, l := range links {
		if !cacheKeyRe.MatchString(l.Key) || l.Digest.Validate() != nil {
			return nil
		}
	}
	return links[:min(len(links), maxCacheLinks)]
}

// cacheKeyRe matches a cache key as a tag: a sha256 hex digest.
var cacheKeyRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// withoutCacheLinks returns an OCI manifest blob without CacheLinkAnnotation, which
// describes a cache repository, not the image: an image the build stores from a cache
// entry (and so pushes later from the store) does not carry it. Other blobs come back
// unchanged. Images pulled by name keep their manifests as the registry has them.
func withoutCacheLinks(blob []byte) []byte {
	out, err := editAnnotations(blob, func(a map[string]string) bool {
		_, found := a[CacheLinkAnnotation]
		delete(a, CacheLinkAnnotation)
		return found
	})
	if err != nil {
		return blob
	}
	return out
}

// editAnnotations returns the OCI manifest blob with edit applied to its annotations
// (an empty map when it has none); edit says whether it changed them. Other blobs, and
// manifests edit leaves alone, come back as they were.
func editAnnotations(blob []byte, edit func(map[string]string) bool) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(blob, &m); err != nil {
		return nil, err
	}
	var mediaType string
	if json.Unmarshal(m["mediaType"], &mediaType) != nil || mediaType != imgspecv1.MediaTypeImageManifest {
		return blob, nil
	}
	annotations := map[string]string{}
	if raw, ok := m["annotations"]; ok {
		if err := json.Unmarshal(raw, &annotations); err != nil {
			return nil, err
		}
	}
	if !edit(annotations) {
		return blob, nil
	}
	delete(m, "annotations")
	if len(annotations) > 0 {
		raw, err := json.Marshal(annotations)
		if err != nil {
			return nil, err
		}
		m["annotations"] = raw
	}
	return json.Marshal(m)
}

// RemoteRepo reads the cache entries of one registry repository by digest, through one
// registry client (one authentication): the entries a RemoteImage's Next names. Its
// methods may be called at once.
type RemoteRepo struct {
	repo reference.Named
	src  types.ImageSource
	reg  RegistryOptions
}

// OpenRemoteRepo opens the repository of ri, read by FetchRemote.
func (s *Store) OpenRemoteRepo(ctx context.Context, ri *RemoteImage) (*RemoteRepo, error) {
	sys, err := s.systemContext(ri.reg)
	if err != nil {
		return nil, err
	}
	named, err := reference.ParseNormalizedNamed(ri.Name)
	if err != nil {
		return nil, err
	}
	return openRepo(ctx, sys, named, ri.reg)
}

// openRepo opens the repository of named (a name with a digest or tag, whose manifest
// the library reads to choose among mirrors).
func openRepo(ctx context.Context, sys *types.SystemContext, named reference.Named, r RegistryOptions) (*RemoteRepo, error) {
	ref, err := docker.NewReference(named)
	if err != nil {
		return nil, err
	}
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	return &RemoteRepo{repo: reference.TrimNamed(named), src: src, reg: r}, nil
}

// Fetch reads the image whose manifest has digest d, as FetchRemote reads one by tag.
func (r *RemoteRepo) Fetch(ctx context.Context, d digest.Digest) (*RemoteImage, error) {
	blob, mimeType, err := r.manifest(ctx, d)
	if err != nil {
		return nil, err
	}
	return readRemote(ctx, r.src, r.repo, d, blob, mimeType, r.reg)
}

// manifest reads the manifest with digest d, checked against it.
func (r *RemoteRepo) manifest(ctx context.Context, d digest.Digest) ([]byte, string, error) {
	if err := d.Validate(); err != nil {
		return nil, "", err
	}
	blob, mimeType, err := r.src.GetManifest(ctx, &d)
	if err != nil {
		return nil, "", err
	}
	if match, err := manifest.MatchesDigest(blob, d); err != nil || !match {
		return nil, "", fmt.Errorf("%s@%s: the manifest does not match its digest", r.repo.Name(), d)
	}
	return blob, mimeType, nil
}

// Close ends the connection.
func (r *RemoteRepo) Close() error { return r.src.Close() }

// LinkCacheEntries writes into each OCI manifest of one stage's cache entries in repo
// (in build order, as pushed under their keys) the list of the entries after it
// (CacheLinkAnnotation), and tags the new manifests with the same keys. The layers and
// configurations stay as they are, and so do the images' IDs. A repository whose entries
// are not OCI manifests (--format docker) is left alone.
func (s *Store) LinkCacheEntries(ctx context.Context, repo string, entries []CacheLink, r RegistryOptions) error {
	if len(entries) < 2 {
		return nil
	}
	sys, err := s.systemContext(r)
	if err != nil {
		return err
	}
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return fmt.Errorf("invalid reference %q: %w", repo, err)
	}
	named = reference.TrimNamed(named)
	first, err := reference.WithDigest(named, entries[0].Digest)
	if err != nil {
		return err
	}
	rr, err := openRepo(ctx, sys, first, r)
	if err != nil {
		return err
	}
	defer rr.Close()
	blobs := make([][]byte, len(entries))
	for i, e := range entries {
		blob, mimeType, err := rr.manifest(ctx, e.Digest)
		if err != nil {
			return err
		}
		if mimeType != imgspecv1.MediaTypeImageManifest {
			return nil
		}
		blobs[i] = blob
	}
	// From the last entry back, so that each list names the manifests as rewritten, and
	// names only manifests the registry has by the time the entry is tagged.
	linked := slices.Clone(entries)
	for i := len(entries) - 2; i >= 0; i-- {
		next := linked[i+1 : min(len(linked), i+1+maxCacheLinks)]
		blob, err := withAnnotation(blobs[i], CacheLinkAnnotation, next)
		if err != nil {
			return err
		}
		tagged, err := reference.WithTag(named, entries[i].Key)
		if err != nil {
			return err
		}
		if err := putManifest(ctx, sys, tagged, blob); err != nil {
			return err
		}
		linked[i].Digest = digest.FromBytes(blob)
	}
	return nil
}

// withAnnotation returns the OCI manifest blob with annotation key set to value as JSON.
func withAnnotation(blob []byte, key string, value any) ([]byte, error) {
	v, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	return editAnnotations(blob, func(a map[string]string) bool {
		a[key] = string(v)
		return true
	})
}

// putManifest writes a manifest whose blobs the repository has under a tag.
func putManifest(ctx context.Context, sys *types.SystemContext, tagged reference.Named, blob []byte) error {
	ref, err := docker.NewReference(tagged)
	if err != nil {
		return err
	}
	dest, err := ref.NewImageDestination(ctx, sys)
	if err != nil {
		return err
	}
	err = dest.PutManifest(ctx, blob, nil)
	return errors.Join(err, dest.Close())
}

// PullRemote brings a registry image read by FetchRemote into the store, unnamed, and
// returns its ID. Only the layers the store does not hold yet are downloaded.
func (s *Store) PullRemote(ctx context.Context, ri *RemoteImage) (string, error) {
	if _, err := s.store.Image(ri.ID); err == nil {
		return ri.ID, nil
	}
	sys, err := s.systemContext(ri.reg)
	if err != nil {
		return "", err
	}
	named, err := reference.ParseNormalizedNamed(ri.Name)
	if err != nil {
		return "", err
	}
	src, err := docker.NewReference(named)
	if err != nil {
		return "", err
	}
	img, err := s.copyIn(ctx, sys, src, nil, ri.ID, PullOptions{Registry: ri.reg, cacheEntry: true})
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// RecordRemote records in the store, without a transfer, a registry image read by
// FetchRemote whose layers the store holds (those of a later entry of the same build
// were pulled), as the result of the build step with key, and returns its ID. It fails
// when a layer is missing.
func (s *Store) RecordRemote(ri *RemoteImage, key string) (string, error) {
	if _, err := s.store.Image(ri.ID); err == nil {
		return ri.ID, s.SetCacheKey(ri.ID, key)
	}
	parent := ""
	for _, diffID := range ri.Config.RootFS.DiffIDs {
		id := existingLayer(s.store, chainLayerID(parent, diffID), parent, diffID)
		if id == "" {
			return "", fmt.Errorf("%s: layer %s is not in the store", ri.Name, diffID)
		}
		parent = id
	}
	var created time.Time
	if ri.Config.Created != nil {
		created = *ri.Config.Created
	}
	id, _, err := RecordImage(s.store, parent, created, ri.config, withoutCacheLinks(ri.manifest), nil, CacheMetadata(key))
	return id, err
}
