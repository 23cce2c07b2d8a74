package build

import (
	"errors"
	"fmt"
	"strings"
)

// NamedContext is a --build-context NAME=VALUE: another build context, a directory or an
// image, that `COPY --from=NAME` reads and `FROM NAME` starts from (an image only). It
// wins over a stage or an image of the same name, as in BuildKit.
type NamedContext struct {
	Name  string // lower case
	Dir   string // a directory, as given
	Image string // an image reference
	// context is Dir opened, with its own ignore file.
	context *Context
}

// imagePrefixes introduce an image in a --build-context value (BuildKit's spelling, and
// Buildah's second one).
var imagePrefixes = []string{"docker-image://", "container-image://"}

// ParseNamedContext reads the value of --build-context: NAME=DIR, NAME=docker-image://REF
// or NAME=container-image://REF. Other sources (URLs, git, OCI layouts) are not supported
// yet.
func ParseNamedContext(s string) (NamedContext, error) {
	name, value, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" || value == "" {
		return NamedContext{}, fmt.Errorf("--build-context %q: want NAME=DIRECTORY or NAME=docker-image://IMAGE", s)
	}
	if strings.ContainsAny(name, " \t,") {
		return NamedContext{}, fmt.Errorf("--build-context %q: %q is not a valid name", s, name)
	}
	nc := NamedContext{Name: strings.ToLower(name)}
	for _, p := range imagePrefixes {
		if ref, ok := strings.CutPrefix(value, p); ok {
			if ref == "" {
				return NamedContext{}, fmt.Errorf("--build-context %q: no image after %s", s, p)
			}
			nc.Image = ref
			return nc, nil
		}
	}
	if i := strings.Index(value, "://"); i > 0 || isGitSource(value) {
		return NamedContext{}, fmt.Errorf("--build-context %q: this kind of source is %w (use a directory or docker-image://)", s, ErrNotSupported)
	}
	nc.Dir = value
	return nc, nil
}

// openNamedContexts opens the directories of the named contexts and keys them by name.
func openNamedContexts(list []NamedContext) (map[string]*NamedContext, error) {
	out := map[string]*NamedContext{}
	for _, nc := range list {
		if nc.Name == "" {
			return nil, errors.New("--build-context: a context without a name")
		}
		if _, dup := out[nc.Name]; dup {
			return nil, fmt.Errorf("--build-context %s given twice", nc.Name)
		}
		if nc.Dir != "" {
			c, err := OpenContext(nc.Dir, "")
			if err != nil {
				return nil, fmt.Errorf("--build-context %s: %w", nc.Name, err)
			}
			nc.context = c
		}
		out[nc.Name] = &nc
	}
	return out, nil
}

// namedContext finds the --build-context a FROM or COPY --from names.
func (b *builder) namedContext(ref string) (*NamedContext, bool) {
	nc, ok := b.named[strings.ToLower(ref)]
	return nc, ok
}

// baseImage is the image a FROM line names: the image of a --build-context of that name,
// or the name itself.
func (b *builder) baseImage(ref string) string {
	if nc, ok := b.namedContext(ref); ok && nc.Image != "" {
		return nc.Image
	}
	return ref
}
