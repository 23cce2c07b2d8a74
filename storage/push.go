package storage

import (
	"context"
	"fmt"
	"io"
	"strings"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

// PushOptions are the flags of `forge push`.
type PushOptions struct {
	Registry RegistryOptions
	Format   string // "", "oci" or "docker" (v2s2)
	Progress io.Writer
	// Pushed, when set, records the layers pushed to its repository and answers for
	// them in later pushes there (see PushedLayers).
	Pushed *PushedLayers
}

// Push copies a local image to dest: any containers-transports reference, or a registry
// name without a transport. An empty dest pushes to the registry the image's name names.
func (s *Store) Push(ctx context.Context, image, dest string, o PushOptions) (digest.Digest, error) {
	manifestType, err := manifestTypeFor(o.Format)
	if err != nil {
		return "", err
	}
	sys, err := s.systemContext(o.Registry)
	if err != nil {
		return "", err
	}
	img, err := s.lookup(sys, image)
	if err != nil {
		return "", err
	}
	var named reference.Named
	if n := matchedName(sys, img, image); n != "" {
		named, _ = reference.ParseNormalizedNamed(n)
	}
	if dest == "" {
		if named == nil {
			return "", fmt.Errorf("push %s: no destination given and the image has no name to push to", image)
		}
		dest = named.String()
	}
	destRef, err := destinationReference(dest)
	if err != nil {
		return "", err
	}
	src, err := istorage.Transport.NewStoreReference(s.store, named, img.ID)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", image, err)
	}
	copyTo := func(to types.ImageReference) ([]byte, error) {
		var written []byte
		err := transfer(ctx, sys, o.Registry, destRef, o.Progress, func(ctx context.Context, sys *types.SystemContext, seen *activity) error {
			var err error
			written, err = s.copyImage(ctx, sys, to, withReleasing(src, img), copyOptions{progress: o.Progress, manifestType: manifestType, seen: seen})
			return err
		})
		return written, err
	}
	reusing := o.Pushed.applies(destRef, sys, manifestType, img)
	var written []byte
	if reusing {
		written, err = copyTo(reusingRef{ImageReference: destRef, pushed: o.Pushed})
		if err != nil && ctx.Err() == nil {
			// The registry may have lost a layer it had: push asking about each one.
			o.Pushed.forget()
			written, err = copyTo(destRef)
		}
	} else {
		written, err = copyTo(destRef)
	}
	if err != nil {
		return "", fmt.Errorf("push %s to %s: %w", image, transports.ImageName(destRef), err)
	}
	if reusing {
		// The push is done: a config that cannot be read back only costs the next
		// pushes their requests. A registry keeps the manifest as written: no need to
		// read it back for its digest.
		if cfg, err := s.ImageConfig(ctx, img.ID); err == nil {
			o.Pushed.note(written, manifest.GuessMIMEType(written), cfg.RootFS.DiffIDs)
		}
		return manifest.Digest(written)
	}
	return pushedDigest(ctx, sys, destRef)
}

func manifestTypeFor(format string) (string, error) {
	switch strings.ToLower(format) {
	case "":
		return "", nil
	case "oci":
		return imgspecv1.MediaTypeImageManifest, nil
	case "docker", "v2s2":
		return manifest.DockerV2Schema2MediaType, nil
	}
	return "", fmt.Errorf("invalid format %q (want oci or docker)", format)
}

// destinationReference parses a push destination; a name without a transport is a
// registry reference.
func destinationReference(dest string) (types.ImageReference, error) {
	prefix, _, found := strings.Cut(dest, ":")
	if !found || transports.Get(prefix) == nil {
		dest = "docker://" + dest
	}
	ref, err := alltransports.ParseImageName(dest)
	if err != nil {
		return nil, fmt.Errorf("invalid destination %q: %w", dest, err)
	}
	return ref, nil
}

// pushedDigest reads back the digest of the manifest written to dest, when the transport
// can tell it cheaply.
func pushedDigest(ctx context.Context, sys *types.SystemContext, dest types.ImageReference) (digest.Digest, error) {
	src, err := dest.NewImageSource(ctx, sys)
	if err != nil {
		return "", nil // archives cannot always be re-read while open; the push itself worked
	}
	defer src.Close()
	raw, _, err := src.GetManifest(ctx, nil)
	if err != nil {
		return "", nil
	}
	return manifest.Digest(raw)
}
