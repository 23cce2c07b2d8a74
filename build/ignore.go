package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// findIgnoreFile returns the path of the ignore file a build with this Dockerfile reads,
// or "" when there is none. The first that exists wins and the others are not read
// (neither Docker nor Buildah merges them):
//
//  1. <Dockerfile>.dockerignore next to the Dockerfile (Docker/BuildKit; Buildah also reads
//     it and prefers it to the one below when both exist),
//  2. <Dockerfile>.containerignore next to the Dockerfile (Buildah),
//  3. .containerignore in the context root (Buildah and Podman read it before .dockerignore),
//  4. .dockerignore in the context root (Docker, Buildah).
//
// A Dockerfile read from stdin ("-" or "") has no file of its own. The context-root files
// are resolved inside the context, so a symlinked .dockerignore cannot point elsewhere.
func findIgnoreFile(dir, dockerfile string) (string, error) {
	var candidates []string
	if dockerfile != "" && dockerfile != "-" {
		candidates = append(candidates, dockerfile+".dockerignore", dockerfile+".containerignore")
	}
	for _, name := range []string{".containerignore", ".dockerignore"} {
		p, err := securejoin.SecureJoin(dir, name)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		fi, err := os.Stat(p)
		switch {
		case err == nil && !fi.IsDir():
			return p, nil
		case err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return "", err
		}
	}
	return "", nil
}

// readIgnoreFile reads patterns with Docker's rules (BuildKit's ignorefile reader): `#`
// comments and blank lines are skipped, each pattern is cleaned, and a leading `/` is
// dropped (so `/abs`, `./rel` and `rel` are all relative to the context root).
func readIgnoreFile(file string) (*ignoreRules, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	rules, err := newIgnoreRules(patterns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return rules, nil
}

// ignoreRules matches context paths against the patterns of an ignore file, with Docker's
// semantics: the last matching pattern wins, `!` re-includes, a pattern that matches a
// directory matches everything below it, `**` matches any number of directories.
type ignoreRules struct {
	mu         sync.Mutex // the matcher compiles its patterns lazily, so it is not safe for concurrent use
	pm         *patternmatcher.PatternMatcher
	patterns   []string // the patterns that exclude (or, for COPY --parents, include)
	exceptions []string // the `!` patterns, without the `!`
}

// newIgnoreRules compiles patterns; none gives nil (nothing is excluded).
func newIgnoreRules(patterns []string) (*ignoreRules, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, err
	}
	r := &ignoreRules{pm: pm}
	for _, p := range pm.Patterns() {
		if p.Exclusion() {
			r.exceptions = append(r.exceptions, p.String())
		} else {
			r.patterns = append(r.patterns, p.String())
		}
	}
	return r, nil
}

// match says whether rel (a clean slash path relative to the context root) is excluded,
// given its parent directory's match state (zero for a path whose parents were not
// matched: they are then checked too).
func (r *ignoreRules) match(rel string, parent patternmatcher.MatchInfo) (bool, patternmatcher.MatchInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pm.MatchesUsingParentResults(rel, parent)
}

// matchPath matches rel from the context root down, returning the state its children
// continue from.
func (r *ignoreRules) matchPath(rel string) (bool, patternmatcher.MatchInfo, error) {
	var info patternmatcher.MatchInfo
	if rel == "." || rel == "" {
		return false, info, nil
	}
	excluded, parts := false, strings.Split(rel, "/")
	for i := range parts {
		var err error
		if excluded, info, err = r.match(strings.Join(parts[:i+1], "/"), info); err != nil {
			return false, info, err
		}
	}
	return excluded, info, nil
}

// mayReinclude reports whether an excluded directory can hold paths that an exception
// pattern includes again, so it must still be walked. Docker's walk checks only exceptions
// that literally start with the directory (`!dir/keep`); this also honours wildcard
// exceptions (`!dir/*.md`, `!**/keep`), as BuildKit's fsutil does, by matching the
// exception's leading segments against the directory's.
func (r *ignoreRules) mayReinclude(dir string) bool {
	return mayMatchBelow(r.exceptions, dir)
}

// mayMatchBelow reports whether one of the patterns can match a path below dir (a clean
// slash path): it has more segments than dir and its leading ones match dir's, or it
// holds `**`, or characters the matcher passes on into its regular expression with a
// meaning of their own there (`|`, `(`, `+`, a backslash before a letter, ...), which
// the segment-wise test below cannot follow: such a directory is walked. So is one when
// the pattern has a character class (the expression keeps `[...]` as it is, so a class
// can match "/", by a range across it or as `[/b]`, and `[[:alpha:]]` is a POSIX class
// there and a set in path.Match), or when the pattern or the directory is not UTF-8 (the
// expression reads every invalid byte as U+FFFD, so `\xff` matches `\xb0` there).
func mayMatchBelow(patterns []string, dir string) bool {
	dirParts := strings.Split(dir, "/")
	for _, pat := range patterns {
		if strings.Contains(pat, "**") || strings.ContainsAny(pat, `|()+{}^\[`) ||
			!utf8.ValidString(pat) || !utf8.ValidString(dir) {
			return true
		}
		parts := strings.Split(pat, "/")
		if len(parts) <= len(dirParts) {
			continue // matches the directory or above it: decided by the directory's own match
		}
		below := true
		for i, d := range dirParts {
			if ok, _ := path.Match(parts[i], d); !ok {
				below = false
				break
			}
		}
		if below {
			return true
		}
	}
	return false
}
