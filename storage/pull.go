package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

// PullPolicy says when a pull contacts the source.
type PullPolicy string

// The pull policies of Buildah's --pull flag.
const (
	PullIfMissing PullPolicy = "" // use a local image when there is one (the zero value)
	PullAlways    PullPolicy = "always"
	PullNever     PullPolicy = "never"
)

// ParsePullPolicy reads a --pull value.
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch strings.ToLower(s) {
	case "", "missing", "ifmissing", "false":
		return PullIfMissing, nil
	case "always", "true":
		return PullAlways, nil
	case "never":
		return PullNever, nil
	}
	return "", fmt.Errorf("invalid pull policy %q (want always, missing or never)", s)
}

// PullOptions are the flags of `forge pull`.
type PullOptions struct {
	Registry RegistryOptions
	Policy   PullPolicy
	Progress io.Writer // nil: silent
	// cacheEntry says the image is a build cache entry: its manifest is stored without
	// the entry's list of the entries after it (see withoutCacheLinks).
	cacheEntry bool
}

// Pull copies an image into the store. name is a short name (resolved through
// registries.conf), a full reference, or any containers-transports reference. The image
// it returns has no Size (-1): a build that finds its base in the store need not sum it.
func (s *Store) Pull(ctx context.Context, name string, o PullOptions) (*Image, error) {
	sys, err := s.systemContext(o.Registry)
	if err != nil {
		return nil, err
	}
	if src, ok, err := transportReference(name); err != nil {
		return nil, err
	} else if ok {
		img, err := s.pullReference(ctx, sys, src, o)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", name, err)
		}
		return img, nil
	}
	if o.Policy != PullAlways {
		if img, err := s.lookup(sys, name); err == nil {
			d := summary(img)
			return &d, nil
		} else if !errors.Is(err, ErrImageUnknown) {
			return nil, err
		}
		if o.Policy == PullNever {
			return nil, fmt.Errorf("%s: %w (and the pull policy is never)", name, ErrImageUnknown)
		}
	}
	return s.pullRegistry(ctx, sys, name, o)
}

// transportReference parses name when it starts with a transport ("oci-archive:",
// "docker://", ...). ok is false for plain registry names.
func transportReference(name string) (types.ImageReference, bool, error) {
	prefix, _, found := strings.Cut(name, ":")
	if !found || transports.Get(prefix) == nil || prefix == "docker" && !strings.HasPrefix(name, "docker://") {
		return nil, false, nil
	}
	if prefix == "docker" {
		return nil, false, nil // docker:// names go through registry resolution below
	}
	ref, err := alltransports.ParseImageName(name)
	if err != nil {
		return nil, false, fmt.Errorf("invalid image reference %q: %w", name, err)
	}
	return ref, true, nil
}

// pullRegistry resolves a registry name (short names through registries.conf) and pulls
// the first candidate that works.
func (s *Store) pullRegistry(ctx context.Context, sys *types.SystemContext, name string, o PullOptions) (*Image, error) {
	name = strings.TrimPrefix(name, "docker://")
	resolved, err := shortnames.Resolve(sys, name)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %w", name, err)
	}
	if d := resolved.Description(); d != "" && o.Progress != nil {
		fmt.Fprintln(o.Progress, d)
	}
	var errs []error
	for _, c := range resolved.PullCandidates {
		src, err := docker.NewReference(c.Value)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		img, err := s.copyIn(ctx, sys, src, c.Value, "", o)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("pull %s: %w", c.Value, context.Cause(ctx))
			}
			errs = append(errs, err)
			continue
		}
		if err := c.Record(); err != nil && o.Progress != nil {
			fmt.Fprintf(o.Progress, "warning: recording short-name alias: %v\n", err)
		}
		return img, nil
	}
	if len(errs) == 1 {
		return nil, fmt.Errorf("pull %s: %w", name, errs[0])
	}
	return nil, resolved.FormatPullErrors(errs)
}

// pullReference pulls from a non-registry transport; the image keeps the name the source
// carries, if any.
func (s *Store) pullReference(ctx context.Context, sys *types.SystemContext, src types.ImageReference, o PullOptions) (*Image, error) {
	named := src.DockerReference()
	if named != nil {
		named = reference.TagNameOnly(named)
	}
	return s.copyIn(ctx, sys, src, named, "", o)
}

// copyIn copies src into the store under named (nil: no name, found by its ID), trying
// again as o.Registry says when src is a registry. An unnamed image gets id, or when id
// is "" its config digest, which costs one more resolution of src.
func (s *Store) copyIn(ctx context.Context, sys *types.SystemContext, src types.ImageReference, named reference.Named, id string, o PullOptions) (*Image, error) {
	plain := src
	if s.maxLayerSize > 0 {
		src = limitedReference{ImageReference: src, limit: s.maxLayerSize}
	}
	staged := src.Transport().Name() == docker.Transport.Name() && canStage(s.store)
	var dest types.ImageReference
	err := transfer(ctx, sys, o.Registry, src, o.Progress, func(ctx context.Context, sys *types.SystemContext, seen *activity) error {
		if staged {
			got, err := s.pullStaged(ctx, sys, stagedPull{src: plain, named: named, id: id, progress: o.Progress, seen: seen, cacheEntry: o.cacheEntry})
			if err == nil {
				dest, err = istorage.Transport.NewStoreReference(s.store, named, got)
				return err
			}
			if !errors.Is(err, errNotStaged) {
				return err
			}
			staged = false // the general copy below, from now on
		}
		if named == nil && id == "" {
			var err error
			if id, err = configID(ctx, sys, src); err != nil {
				return err
			}
		}
		var err error
		if dest, err = istorage.Transport.NewStoreReference(s.store, named, id); err != nil {
			return err
		}
		_, err = s.copyImage(ctx, sys, dest, src, copyOptions{progress: o.Progress, seen: seen})
		return err
	})
	if err != nil {
		return nil, explainIDRange(err)
	}
	_, img, err := istorage.ResolveReference(dest)
	if err != nil {
		return nil, fmt.Errorf("find pulled image: %w", err)
	}
	d := summary(img)
	return &d, nil
}

// ErrIDRange is returned when an image has files owned by IDs the user namespace does not map.
var ErrIDRange = errors.New("the image has files owned by user or group IDs outside the range your user namespace maps")

var requestedIDs = regexp.MustCompile(`\(requested [^)]*\)`)

// explainIDRange replaces the storage library's advice (which names another tool) with
// forge's. The library gives no typed error for this case, so its text is matched.
func explainIDRange(err error) error {
	if !strings.Contains(err.Error(), "insufficient UIDs or GIDs available in user namespace") {
		return err
	}
	detail := requestedIDs.FindString(err.Error())
	return fmt.Errorf("%w %s; fix: give your user a range of 65536 IDs in /etc/subuid and /etc/subgid "+
		"(sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER) and install uidmap, "+
		"or store such files as yours with --storage-opt ignore_chown_errors=true", ErrIDRange, detail)
}

// configID returns the ID the store will give src: its config digest.
func configID(ctx context.Context, sys *types.SystemContext, src types.ImageReference) (string, error) {
	img, err := src.NewImage(ctx, sys)
	if err != nil {
		return "", err
	}
	defer img.Close()
	return img.ConfigInfo().Digest.Encoded(), nil
}

type copyOptions struct {
	progress     io.Writer
	manifestType string
	seen         *activity // told of every progress event; nil: nobody watches
}

// copyImage runs one image/v5 copy with forge's policy, progress and settings, and
// returns the manifest it wrote.
func (s *Store) copyImage(ctx context.Context, sys *types.SystemContext, dest, src types.ImageReference, o copyOptions) ([]byte, error) {
	var written []byte
	err := withPolicy(func(policy *signature.PolicyContext) error {
		counter := newTransferCounter(o.progress, o.seen)
		var err error
		written, err = copy.Image(ctx, policy, dest, src, &copy.Options{
			ReportWriter:          o.progress,
			SourceCtx:             sys,
			DestinationCtx:        sys,
			ForceManifestMIMEType: o.manifestType,
			Progress:              counter.events,
			ProgressInterval:      progressInterval,
		})
		counter.finish(err == nil)
		return err
	})
	return written, err
}

// withPolicy runs fn with forge's signature policy.
func withPolicy(fn func(*signature.PolicyContext) error) (retErr error) {
	policy, err := policyContext()
	if err != nil {
		return err
	}
	defer func() {
		if err := policy.Destroy(); err != nil && retErr == nil {
			retErr = err
		}
	}()
	return fn(policy)
}
