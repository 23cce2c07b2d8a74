package storage

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/types"
	cstorage "go.podman.io/storage"
)

// ErrImageUnknown is returned when no local image matches a name or ID.
var ErrImageUnknown = cstorage.ErrImageUnknown

// LocalName turns a name given for a locally made image into its stored form: a short name
// gets the "localhost/" prefix (as in Buildah and Podman) and every name gets a tag.
func LocalName(name string) (reference.Named, error) {
	if name == "" {
		return nil, errors.New("image name is empty")
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %w", name, err)
	}
	if !hasDomain(name) {
		named, err = reference.ParseNamed("localhost/" + name)
		if err != nil {
			return nil, fmt.Errorf("invalid image name %q: %w", name, err)
		}
	}
	return reference.TagNameOnly(named), nil
}

// hasDomain reports whether the first component of a name is a registry host, following
// the rule of Docker's reference grammar.
func hasDomain(name string) bool {
	first, _, found := strings.Cut(name, "/")
	if !found {
		return false
	}
	return strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first
}

var idPrefix = regexp.MustCompile(`^(sha256:)?[0-9a-f]{3,64}$`)

// lookup finds a local image by ID, ID prefix, full name, or short name (tried with
// localhost/ and each unqualified-search registry, as Podman does).
func (s *Store) lookup(sys *types.SystemContext, name string) (*cstorage.Image, error) {
	if name == "" {
		return nil, errors.New("image name is empty")
	}
	if img, err := s.store.Image(strings.TrimPrefix(name, "sha256:")); err == nil {
		return img, nil
	} else if !errors.Is(err, cstorage.ErrImageUnknown) && !idPrefix.MatchString(name) {
		return nil, fmt.Errorf("look up image %s: %w", name, err)
	}
	candidates, err := localCandidates(sys, name)
	if err != nil {
		if idPrefix.MatchString(name) {
			return nil, fmt.Errorf("%s: %w", name, ErrImageUnknown)
		}
		return nil, err
	}
	for _, c := range candidates {
		if img, err := s.store.Image(c); err == nil {
			return img, nil
		}
	}
	if img := s.byDigest(name); img != nil {
		return img, nil
	}
	return nil, fmt.Errorf("%s: %w", name, ErrImageUnknown)
}

// byDigest finds the image a "repository@digest" name means: one of that repository
// whose manifest, or the manifest list it was pulled through, has the digest.
func (s *Store) byDigest(name string) *cstorage.Image {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil
	}
	d, ok := named.(reference.Digested)
	if !ok {
		return nil
	}
	images, err := s.store.ImagesByDigest(d.Digest())
	if err != nil {
		return nil
	}
	for i := range images {
		for _, n := range images[i].Names {
			if other, err := reference.ParseNormalizedNamed(n); err == nil && other.Name() == named.Name() {
				return images[i]
			}
		}
	}
	return nil
}

// localCandidates lists the stored names a user's name can mean: the name with
// localhost/ (what forge names local builds), then what registries.conf's aliases and
// unqualified-search registries make of it. Without any registries.conf the localhost/
// form still works.
func localCandidates(sys *types.SystemContext, name string) ([]string, error) {
	var out []string
	if !hasDomain(name) {
		if named, err := LocalName(name); err == nil {
			out = append(out, named.String())
		}
	}
	resolved, err := shortnames.ResolveLocally(sys, name)
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("invalid image name %q: %w", name, err)
	}
	for _, c := range resolved {
		out = append(out, c.String())
	}
	return out, nil
}

// matchedName returns the stored name of img that the user meant by name, or "" when
// the user named it by ID.
func matchedName(sys *types.SystemContext, img *cstorage.Image, name string) string {
	want := map[string]bool{name: true}
	if candidates, err := localCandidates(sys, name); err == nil {
		for _, c := range candidates {
			want[c] = true
		}
	}
	for _, n := range img.Names {
		if want[n] {
			return n
		}
	}
	return ""
}
