package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	cstorage "go.podman.io/storage"
)

// Image is one local image as `forge images` shows it.
type Image struct {
	ID      string    `json:"id"`
	Names   []string  `json:"names"`
	Digest  string    `json:"digest"`
	Created time.Time `json:"created"`
	Size    int64     `json:"size"` // -1 when unknown, as in the image Pull returns
}

// Images lists the local images, newest first; build cache entries only with all.
func (s *Store) Images(ctx context.Context, all bool) ([]Image, error) {
	stored, err := s.store.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]Image, 0, len(stored))
	for i := range stored {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !all && isIntermediate(&stored[i]) {
			continue
		}
		out = append(out, s.describe(&stored[i]))
	}
	slices.SortStableFunc(out, func(a, b Image) int { return b.Created.Compare(a.Created) })
	return out, nil
}

func (s *Store) describe(img *cstorage.Image) Image {
	d := summary(img)
	var err error
	if d.Size, err = s.store.ImageSize(img.ID); err != nil {
		d.Size = -1
	}
	return d
}

// summary is describe without the size, which sums the sizes of every layer.
func summary(img *cstorage.Image) Image {
	names := img.Names
	if names == nil {
		names = []string{}
	}
	return Image{ID: img.ID, Names: names, Digest: img.Digest.String(), Created: img.Created, Size: -1}
}

// Tag adds names to a local image; short names get the localhost/ prefix.
func (s *Store) Tag(ctx context.Context, image string, names ...string) error {
	sys, err := s.systemContext(RegistryOptions{})
	if err != nil {
		return err
	}
	img, err := s.lookup(sys, image)
	if err != nil {
		return err
	}
	full := make([]string, 0, len(names))
	for _, n := range names {
		named, err := LocalName(n)
		if err != nil {
			return err
		}
		full = append(full, named.String())
	}
	// A name belongs to one image of the store at most, and AddNames puts the names given
	// first: when the image's names start with these already, AddNames would change
	// nothing, and a rebuild that ends with the same image need not rewrite the store's
	// image list. (An image of a read-only store is copied up by AddNames.)
	if !img.ReadOnly && len(img.Names) >= len(full) && slices.Equal(img.Names[:len(full)], full) {
		return nil
	}
	if err := s.store.AddNames(img.ID, full); err != nil {
		return fmt.Errorf("tag %s: %w", image, err)
	}
	return nil
}

// ErrImageInUse is returned when removing an image a container still uses.
var ErrImageInUse = errors.New("image is in use by a container")

// RemoveOptions are the flags of `forge rmi`.
type RemoveOptions struct {
	Force bool // also remove the containers using the image, and all of its names
}

// Removal says what `rmi` did to one argument.
type Removal struct {
	Untagged string // the name removed when the image keeps other names
	Deleted  string // the ID of the deleted image
}

// Remove deletes images, or only the given name when the image has others.
func (s *Store) Remove(ctx context.Context, images []string, opts RemoveOptions) ([]Removal, error) {
	sys, err := s.systemContext(RegistryOptions{})
	if err != nil {
		return nil, err
	}
	var done []Removal
	for _, name := range images {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		img, err := s.lookup(sys, name)
		if err != nil {
			return done, err
		}
		r, err := s.removeOne(sys, img, name, opts)
		if err != nil {
			return done, err
		}
		done = append(done, r)
	}
	return done, nil
}

func (s *Store) removeOne(sys *types.SystemContext, img *cstorage.Image, name string, opts RemoveOptions) (Removal, error) {
	if n := matchedName(sys, img, name); n != "" && len(img.Names) > 1 && !opts.Force {
		if err := s.store.RemoveNames(img.ID, []string{n}); err != nil {
			return Removal{}, fmt.Errorf("untag %s: %w", n, err)
		}
		return Removal{Untagged: n}, nil
	}
	if n := matchedName(sys, img, name); n == "" && len(img.Names) > 1 && !opts.Force {
		return Removal{}, fmt.Errorf("remove %s: the image has %d names (%s); remove them one by one or use --force",
			name, len(img.Names), strings.Join(img.Names, ", "))
	}
	users, err := s.containersOf(img.ID)
	if err != nil {
		return Removal{}, err
	}
	if len(users) > 0 && !opts.Force {
		return Removal{}, fmt.Errorf("remove %s: %w (%s); remove it first or use --force", name, ErrImageInUse, users[0])
	}
	for _, c := range users {
		if err := s.store.DeleteContainer(c); err != nil {
			return Removal{}, fmt.Errorf("remove container %s using %s: %w", c, name, err)
		}
	}
	if _, err := s.store.DeleteImage(img.ID, true); err != nil {
		return Removal{}, fmt.Errorf("remove %s: %w", name, err)
	}
	return Removal{Deleted: img.ID}, nil
}

// containersOf lists the IDs of the containers made from an image.
func (s *Store) containersOf(imageID string) ([]string, error) {
	all, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var ids []string
	for _, c := range all {
		if c.ImageID == imageID {
			ids = append(ids, c.ID)
		}
	}
	return ids, nil
}

// ImageDetails is what `forge inspect` prints for an image.
type ImageDetails struct {
	ID           string
	Names        []string
	Digest       string
	Created      time.Time
	Size         int64
	Config       *imgspecv1.Image
	Manifest     json.RawMessage
	ManifestType string
}

// Inspect reads an image's configuration and manifest.
func (s *Store) Inspect(ctx context.Context, name string) (*ImageDetails, error) {
	sys, err := s.systemContext(RegistryOptions{})
	if err != nil {
		return nil, err
	}
	img, err := s.lookup(sys, name)
	if err != nil {
		return nil, err
	}
	ref, err := istorage.Transport.NewStoreReference(s.store, nil, img.ID)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", name, err)
	}
	src, err := ref.NewImage(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", name, err)
	}
	defer src.Close()
	config, err := src.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: config: %w", name, err)
	}
	raw, mediaType, err := src.Manifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: manifest: %w", name, err)
	}
	d := s.describe(img)
	return &ImageDetails{ID: d.ID, Names: d.Names, Digest: d.Digest, Created: d.Created, Size: d.Size,
		Config: config, Manifest: raw, ManifestType: mediaType}, nil
}

// RecordImage records an image of the layers up to top (with config and manifest) in the
// store, under its config digest, with the big-data keys image/v5 reads; list is the
// manifest list the image was pulled through, or nil. metadata, when not empty, is the
// image's store metadata (CacheMetadata), set on an image that existed already too. reused is true when an image with
// that config digest existed already.
func RecordImage(st cstorage.Store, top string, created time.Time, config, manifestBlob, list []byte, metadata string) (id string, reused bool, err error) {
	configDigest := digest.FromBytes(config)
	manifestDigest, err := manifest.Digest(manifestBlob)
	if err != nil {
		return "", false, err
	}
	id = configDigest.Encoded()
	o := &cstorage.ImageOptions{
		CreationDate: created,
		Digest:       manifestDigest,
		Metadata:     metadata,
		BigData: []cstorage.ImageBigDataOption{
			{Key: configDigest.String(), Data: config, Digest: configDigest},
			{Key: cstorage.ImageDigestManifestBigDataNamePrefix + "-" + manifestDigest.String(), Data: manifestBlob, Digest: manifestDigest},
			{Key: cstorage.ImageDigestBigDataKey, Data: manifestBlob, Digest: manifestDigest},
		},
	}
	if list != nil {
		listDigest, err := manifest.Digest(list)
		if err != nil {
			return "", false, err
		}
		o.BigData = append(o.BigData, cstorage.ImageBigDataOption{
			Key: cstorage.ImageDigestManifestBigDataNamePrefix + "-" + listDigest.String(), Data: list, Digest: listDigest})
	}
	_, err = st.CreateImage(id, nil, top, "", o)
	if errors.Is(err, cstorage.ErrDuplicateID) {
		// The same image by another manifest (pushed again, or through a list): keep the
		// new manifests too, so their digests find it.
		img, err := st.Image(id)
		if err != nil {
			return "", false, err
		}
		if metadata != "" {
			if err := st.SetMetadata(id, metadata); err != nil {
				return "", false, fmt.Errorf("record metadata of image %s: %w", id, err)
			}
		}
		for _, b := range o.BigData {
			if !slices.Contains(img.BigDataNames, b.Key) {
				if err := st.SetImageBigData(id, b.Key, b.Data, manifest.Digest); err != nil {
					return "", false, fmt.Errorf("record %s of image %s: %w", b.Key, id, err)
				}
			}
		}
		return id, true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("create image: %w", err)
	}
	return id, false, nil
}
