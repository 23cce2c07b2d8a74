package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
)

// ErrNoSource is returned for a COPY/ADD source that is not in the build context: missing,
// excluded by the ignore file, or a symlink whose target (resolved inside the context) is.
var ErrNoSource = errors.New("no such file in the build context")

// ErrNoMatch is returned for a wildcard source that matches nothing in the build context;
// errors.Is(ErrNoMatch, ErrNoSource) holds.
var ErrNoMatch error = noMatchError{}

type noMatchError struct{}

func (noMatchError) Error() string        { return "no file matches" }
func (noMatchError) Is(target error) bool { return target == ErrNoSource }

// Context is the build context of a Dockerfile build: a host directory and the files its
// ignore file excludes. Excluded files are invisible to COPY and ADD and to the cache key.
type Context struct {
	Dir        string // absolute
	IgnoreFile string // the ignore file that was read; "" when there is none
	ignore     *ignoreRules
}

// OpenContext opens the context directory dir for a build of the Dockerfile at
// dockerfilePath (a host path, relative to the current directory; "" or "-" for stdin),
// reading the first ignore file that exists (see findIgnoreFile for the order).
func OpenContext(dir, dockerfilePath string) (*Context, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s: not a directory", dir)
	}
	c := &Context{Dir: abs}
	if c.IgnoreFile, err = findIgnoreFile(abs, dockerfilePath); err != nil || c.IgnoreFile == "" {
		return c, err
	}
	if c.ignore, err = readIgnoreFile(c.IgnoreFile); err != nil {
		return nil, err
	}
	return c, nil
}

// Excluded reports whether the ignore file excludes rel, a slash path relative to the
// context root. An excluded directory that an exception (`!dir/keep`, `!**/keep`) may
// re-include something below is not excluded: it must be walked, and appears in a copy only
// when something below it does. The context root itself is never excluded.
func (c *Context) Excluded(rel string, isDir bool) (bool, error) {
	rel = strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(rel)), "/")
	if c.ignore == nil || rel == "" {
		return false, nil
	}
	excluded, _, err := c.ignore.matchPath(rel)
	if err != nil || !excluded {
		return false, err
	}
	return !isDir || !c.ignore.mayReinclude(rel), nil
}

func (c *Context) sources() sourceRoot {
	return sourceRoot{dir: c.Dir, ignore: c.ignore, inContext: true}
}

// with returns r with COPY's --exclude patterns and --parents set.
func (r sourceRoot) with(exclude []string, parents bool) (sourceRoot, error) {
	r.parents = parents
	if len(exclude) == 0 {
		return r, nil
	}
	rules, err := newIgnoreRules(exclude)
	if err != nil {
		return r, fmt.Errorf("--exclude: %w", err)
	}
	r.exclude = rules
	return r, nil
}

// sourceRoot resolves COPY/ADD sources on the host with Docker's rules and walks them.
// Copy and Digest both go through it, so a cache key sees exactly the files a copy reads.
type sourceRoot struct {
	dir       string       // absolute context directory
	ignore    *ignoreRules // nil: nothing is excluded
	inContext bool         // absolute sources are relative to dir (Dockerfile COPY), not host paths
	// exclude holds COPY --exclude patterns, matched against paths relative to each
	// source (and a wildcard's matches, relative to the directory the wildcard lists).
	exclude *ignoreRules
	parents bool // COPY --parents: keep each source's path below the context root (or a /./ pivot)
}

// source is one resolved source.
type source struct {
	host    string // host path, symlinks resolved
	rel     string // slash path of host relative to the context root; "" outside the context
	name    string // base name in the destination
	isDir   bool
	regular bool
	archive bool
	// include, for COPY --parents, is the source path below the directory source: only
	// what it matches is copied, with the directories leading to it.
	include *ignoreRules
}

// resolve finds the host files of one source: a relative source (and, for Dockerfile
// COPY, an absolute one) inside the context, expanding wildcards over what the context
// does not exclude; with inContext unset an absolute source is a host path as it is.
func (r sourceRoot) resolve(ctx context.Context, src string) ([]source, error) {
	if filepath.IsAbs(src) && !r.inContext {
		fi, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", src, unwrapPathError(err))
		}
		return []source{{host: src, name: filepath.Base(src), isDir: fi.IsDir(), regular: fi.Mode().IsRegular()}}, nil
	}
	if r.parents {
		return r.resolveParents(ctx, src)
	}
	rel, err := r.relative(src)
	if err != nil {
		return nil, err
	}
	if !hasWildcard(rel) {
		s, err := r.lookup(ctx, rel)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", src, err)
		}
		return []source{s}, nil
	}
	matches, err := r.glob(rel)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", src, err)
	}
	var out []source
	found := false
	for _, m := range matches {
		s, err := r.lookup(ctx, m)
		if errors.Is(err, ErrNoSource) {
			continue // excluded, or a dangling link
		}
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", src, err)
		}
		found = true
		if excluded, err := r.excludedMatch(wildcardBase(rel), m); err != nil || excluded {
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", src, err)
			}
			continue
		}
		out = append(out, s)
	}
	if !found {
		return nil, fmt.Errorf("source %s: %w", src, ErrNoMatch)
	}
	return out, nil
}

// wildcardBase is the leading part of a wildcard path without wildcards: the directory
// whose listing the wildcard matches.
func wildcardBase(rel string) string {
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		if hasWildcard(p) {
			return path.Join(append([]string{"."}, parts[:i]...)...)
		}
	}
	return rel
}

// excludedMatch reports whether COPY --exclude drops a wildcard's match m (a context path
// below base), as BuildKit's documentation says: `COPY --exclude=*.txt hom* /d/` copies no
// home.txt. What is below a match that stays is matched relative to the match.
func (r sourceRoot) excludedMatch(base, m string) (bool, error) {
	if r.exclude == nil {
		return false, nil
	}
	rel := m
	if base != "." {
		rel = strings.TrimPrefix(m, base+"/")
	}
	excluded, _, err := r.exclude.matchPath(rel)
	return excluded, err
}

// relative turns a source into a clean slash path relative to the context root. A
// relative one may not climb out; an absolute one (Dockerfile COPY) is taken from the
// context root, where `..` stops, as in Docker.
func (r sourceRoot) relative(src string) (string, error) {
	s := filepath.ToSlash(src)
	if path.IsAbs(s) {
		if rel := strings.TrimPrefix(path.Clean(s), "/"); rel != "" {
			return rel, nil
		}
		return ".", nil
	}
	clean := path.Clean(s)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("source %s: %w %s", src, ErrOutsideContext, r.dir)
	}
	return clean, nil
}

func hasWildcard(p string) bool { return strings.ContainsAny(p, "*?[") }

// glob expands a wildcard path one segment at a time, listing each directory resolved
// inside the context, so a symlink met on the way cannot lead out of it. Matches are in
// lexical order; whether they exist and are visible is for lookup to say.
func (r sourceRoot) glob(pattern string) ([]string, error) {
	matches := []string{"."}
	for _, part := range strings.Split(pattern, "/") {
		var next []string
		for _, m := range matches {
			if !hasWildcard(part) {
				next = append(next, path.Join(m, part))
				continue
			}
			for _, name := range r.list(m) {
				ok, err := path.Match(part, name)
				if err != nil {
					return nil, err
				}
				if ok {
					next = append(next, path.Join(m, name))
				}
			}
		}
		matches = next
	}
	return matches, nil
}

// list returns the sorted names in a context directory; nothing if it is not one.
func (r sourceRoot) list(rel string) []string {
	host, err := securejoin.SecureJoin(r.dir, rel)
	if err != nil {
		return nil
	}
	f, err := os.Open(host)
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	sort.Strings(names)
	return names
}

// lookup resolves a context path, symlinks included, inside the context (a link to
// /etc/passwd means <context>/etc/passwd, as in Docker), and checks that both the path as
// written and the file it resolves to are in the context the ignore file leaves.
func (r sourceRoot) lookup(ctx context.Context, rel string) (source, error) {
	host, err := securejoin.SecureJoin(r.dir, rel)
	if err != nil {
		return source{}, err
	}
	fi, err := os.Lstat(host)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return source{}, ErrNoSource
	}
	if err != nil {
		return source{}, unwrapPathError(err)
	}
	real, err := filepath.Rel(r.dir, host)
	if err != nil {
		return source{}, err
	}
	real = filepath.ToSlash(real)
	s := source{host: host, rel: real, name: path.Base(rel), isDir: fi.IsDir(), regular: fi.Mode().IsRegular()}
	if real != rel {
		// The path as written goes through a symlink: the link itself must not be excluded.
		if excluded, _, err := r.excluded(rel); err != nil || excluded {
			return source{}, errOr(err, ErrNoSource)
		}
	}
	if ok, err := r.visible(ctx, s); err != nil || !ok {
		return source{}, errOr(err, ErrNoSource)
	}
	return s, nil
}

func errOr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

func (r sourceRoot) excluded(rel string) (bool, patternmatcher.MatchInfo, error) {
	if r.ignore == nil {
		return false, patternmatcher.MatchInfo{}, nil
	}
	return r.ignore.matchPath(rel)
}

var errFound = errors.New("found")

// visible reports whether a source is in the context the ignore file leaves: not
// excluded, or an excluded directory with something re-included below it.
func (r sourceRoot) visible(ctx context.Context, s source) (bool, error) {
	excluded, _, err := r.excluded(s.rel)
	if err != nil || !excluded {
		return !excluded, err
	}
	if !s.isDir || !r.ignore.mayReinclude(s.rel) {
		return false, nil
	}
	err = r.walk(ctx, s, func(entry) error { return errFound })
	if errors.Is(err, errFound) {
		return true, nil
	}
	return false, err
}

// entry is one file of a source as COPY writes it.
type entry struct {
	host string      // host path
	name string      // slash path below the source directory; "" for a file source
	fi   fs.FileInfo // Lstat below a directory; Stat (a symlink followed) for a file source
}

// walk calls fn for a file source, or for everything below a directory source that the
// ignore file leaves, in lexical order, parents before children. Symlinks below the top are
// not followed. An excluded directory that holds re-included files is walked and reported
// just before the first of them, so it appears only when something in it does.
func (r sourceRoot) walk(ctx context.Context, s source, fn func(entry) error) error {
	if !s.isDir {
		fi, err := os.Stat(s.host)
		if err != nil {
			return err
		}
		return fn(entry{host: s.host, fi: fi})
	}
	w := &walker{ctx: ctx, fn: fn, exclude: r.exclude, include: s.include}
	var at matchState
	if s.rel != "" && r.ignore != nil {
		w.ignore = r.ignore
		var err error
		if _, at.ignore, err = r.ignore.matchPath(s.rel); err != nil {
			return err
		}
	}
	return w.dir(s.host, s.rel, "", at)
}

// walker walks a directory source. Up to three pattern sets decide what it reports: the
// context's ignore file (on paths relative to the context root), COPY --exclude and the
// COPY --parents path (both on paths relative to the source).
type walker struct {
	ctx     context.Context
	ignore  *ignoreRules // nil: no exclusion
	exclude *ignoreRules // nil: no exclusion
	include *ignoreRules // nil: everything is included
	fn      func(entry) error
	pending []entry // directories entered but hidden, not yet reported
}

// matchState is where the pattern sets stand at a directory, for its children.
type matchState struct{ ignore, exclude, include patternmatcher.MatchInfo }

// dir walks the directory host (rel below the context root, name below the source).
func (w *walker) dir(host, rel, name string, at matchState) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	des, err := os.ReadDir(host) // sorted by name
	if err != nil {
		return err
	}
	for _, de := range des {
		e := entry{host: filepath.Join(host, de.Name()), name: path.Join(name, de.Name())}
		if e.fi, err = de.Info(); err != nil {
			return err
		}
		childRel := path.Join(rel, de.Name())
		hidden, walkable, childAt, err := w.judge(e, childRel, at)
		if err != nil {
			return err
		}
		if err := w.visit(e, childRel, hidden, walkable, childAt); err != nil {
			return err
		}
	}
	return nil
}

// judge matches one entry: hidden means it is not reported for itself; walkable means it
// is a hidden directory below which something may still be reported.
func (w *walker) judge(e entry, rel string, at matchState) (hidden, walkable bool, next matchState, err error) {
	ignored, excluded, included := false, false, true
	if w.ignore != nil {
		if ignored, next.ignore, err = w.ignore.match(rel, at.ignore); err != nil {
			return false, false, next, err
		}
	}
	if w.exclude != nil {
		if excluded, next.exclude, err = w.exclude.match(e.name, at.exclude); err != nil {
			return false, false, next, err
		}
	}
	if w.include != nil {
		if included, next.include, err = w.include.match(e.name, at.include); err != nil {
			return false, false, next, err
		}
	}
	hidden = ignored || excluded || !included
	walkable = e.fi.IsDir() &&
		(!ignored || w.ignore.mayReinclude(rel)) &&
		(!excluded || w.exclude.mayReinclude(e.name)) &&
		(included || mayMatchBelow(w.include.patterns, e.name))
	return hidden, walkable, next, nil
}

func (w *walker) visit(e entry, rel string, hidden, walkable bool, at matchState) error {
	if hidden {
		if !walkable {
			return nil
		}
		w.pending = append(w.pending, e)
		err := w.dir(e.host, rel, e.name, at)
		if n := len(w.pending); n > 0 && w.pending[n-1].host == e.host {
			w.pending = w.pending[:n-1] // nothing below it was reported
		}
		return err
	}
	for _, p := range w.pending {
		if err := w.fn(p); err != nil {
			return err
		}
	}
	w.pending = w.pending[:0]
	if err := w.fn(e); err != nil {
		return err
	}
	if e.fi.IsDir() {
		return w.dir(e.host, rel, e.name, at)
	}
	return nil
}

// entryKind is how a copy stores an entry: 'f' a regular file, 'd' a directory, 'l' a
// symlink (copied as a link). Devices, FIFOs and sockets cannot be copied.
func entryKind(e entry) (byte, error) {
	switch m := e.fi.Mode(); {
	case m.IsRegular():
		return 'f', nil
	case m.IsDir():
		return 'd', nil
	case m&fs.ModeSymlink != 0:
		return 'l', nil
	default:
		return 0, fmt.Errorf("%s: cannot copy a %s", e.host, m.Type())
	}
}
