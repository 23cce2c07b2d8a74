package storage

import (
	"context"
	"fmt"

	"go.podman.io/image/v5/transports/alltransports"
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
	img, err := s.copyIn(ctx, sys, src, nil, PullOptions{Registry: r})
	if err != nil {
		return "", err
	}
	return img.ID, nil
}
