package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	cstorage "go.podman.io/storage"
)

// cacheMetadata is what a build step's image carries in its store metadata: the step's
// cache key. Such images have no name of their own and are hidden from `forge images`
// unless --all is given, as Buildah hides its intermediate images.
type cacheMetadata struct {
	CacheKey string    `json:"forge.cachekey"`
	Created  time.Time `json:"forge.cachecreated"`
}

// CacheMetadata is the store metadata of an image that is the result of the build step
// with this key, recorded now: for RecordImage or commit.Options, which set it as they
// record the image, one write of the store's image list fewer than SetCacheKey after.
func CacheMetadata(key string) string {
	data, err := json.Marshal(cacheMetadata{CacheKey: key, Created: time.Now().UTC()})
	if err != nil {
		panic(err) // a struct of a string and a time always marshals
	}
	return string(data)
}

// SetCacheKey records that image is the result of the build step with this key.
func (s *Store) SetCacheKey(imageID, key string) error {
	if err := s.store.SetMetadata(imageID, CacheMetadata(key)); err != nil {
		return fmt.Errorf("record cache key of %s: %w", imageID, err)
	}
	return nil
}

// CachedImage returns the newest image recorded for a cache key no earlier than
// notBefore (the zero time for any), or "" when none is.
func (s *Store) CachedImage(key string, notBefore time.Time) (string, error) {
	images, err := s.store.Images()
	if err != nil {
		return "", fmt.Errorf("list images: %w", err)
	}
	var best string
	var newest time.Time
	for _, img := range images {
		m, ok := cacheOf(&img)
		if ok && m.CacheKey == key && !m.Created.Before(notBefore) && (best == "" || m.Created.After(newest)) {
			best, newest = img.ID, m.Created
		}
	}
	return best, nil
}

func cacheOf(img *cstorage.Image) (cacheMetadata, bool) {
	var m cacheMetadata
	if img.Metadata == "" || json.Unmarshal([]byte(img.Metadata), &m) != nil || m.CacheKey == "" {
		return m, false
	}
	return m, true
}

// isIntermediate reports whether an image is only a build cache entry.
func isIntermediate(img *cstorage.Image) bool {
	_, cached := cacheOf(img)
	return cached && len(img.Names) == 0
}

// MountImage mounts an image's root filesystem read-only (for COPY --from) and returns its
// path; UnmountImage undoes it.
func (s *Store) MountImage(imageID string) (string, error) {
	dir, err := s.store.MountImage(imageID, []string{"ro"}, "")
	if err != nil {
		return "", fmt.Errorf("mount image %s: %w", imageID, err)
	}
	return dir, nil
}

// UnmountImage undoes MountImage.
func (s *Store) UnmountImage(imageID string) error {
	if _, err := s.store.UnmountImage(imageID, false); err != nil && !errors.Is(err, cstorage.ErrLayerNotMounted) {
		return fmt.Errorf("unmount image %s: %w", imageID, err)
	}
	return nil
}
