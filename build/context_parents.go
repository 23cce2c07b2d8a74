package build

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// resolveParents resolves a source of COPY --parents, with BuildKit's semantics: the
// source's path is kept below the destination, from the context root or from a `/./`
// pivot (`COPY --parents ./x/./y/*.txt /d/` makes /d/y/a.txt). The result is one directory
// source (the root or the pivot) whose include rule is the path below it, which may hold
// wildcards and `**`; the directories leading to what it matches are copied with it.
func (r sourceRoot) resolveParents(ctx context.Context, src string) ([]source, error) {
	s := filepath.ToSlash(src)
	base, pattern, pivot := strings.Cut(s, "/./")
	if !pivot {
		base, pattern = "/", s
	}
	pattern = strings.TrimPrefix(path.Clean("/"+pattern), "/")
	baseRel, err := r.relative(base)
	if err != nil {
		return nil, err
	}
	root, err := r.lookup(ctx, baseRel)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", src, err)
	}
	if !root.isDir {
		return nil, fmt.Errorf("source %s: %s is not a directory", src, base)
	}
	if pattern == "" {
		return []source{root}, nil
	}
	if strings.HasPrefix(pattern, "!") {
		pattern = `\` + pattern // a name, not an exception
	}
	if root.include, err = newIgnoreRules([]string{pattern}); err != nil {
		return nil, fmt.Errorf("source %s: %w", src, err)
	}
	if !hasWildcard(pattern) {
		if _, err := r.lookup(ctx, path.Join(baseRel, pattern)); err != nil {
			return nil, fmt.Errorf("source %s: %w", src, err)
		}
		return []source{root}, nil
	}
	err = sourceRoot{dir: r.dir, ignore: r.ignore}.walk(ctx, root, func(entry) error { return errFound })
	switch {
	case errors.Is(err, errFound):
		return []source{root}, nil
	case err != nil:
		return nil, fmt.Errorf("source %s: %w", src, err)
	}
	return nil, fmt.Errorf("source %s: %w", src, ErrNoMatch)
}
