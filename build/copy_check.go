package build

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/dfgitutil"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// checkAdd refuses what ADD cannot do, or cannot do yet, before anything runs: a git
// repository as a source (and its --keep-git-dir), --unpack, and a --checksum that is not
// for exactly one URL or is not a digest (checked again once variables are expanded).
func checkAdd(c *instructions.AddCommand) error {
	unsupported := func(what string) error { return fmt.Errorf("%s is %w", what, ErrNotSupported) }
	for _, src := range c.SourcePaths {
		if isGitSource(src) {
			return unsupported("ADD of a git repository (" + src + ")")
		}
	}
	switch {
	case c.KeepGitDir != nil:
		return unsupported("ADD --keep-git-dir")
	case c.Unpack != nil:
		return unsupported("ADD --unpack")
	case strings.Contains(c.Checksum+strings.Join(c.SourcePaths, ""), "$"):
		return nil
	}
	return checkChecksum(c.Checksum, c.SourcePaths, len(c.SourceContents))
}

// checkChecksum checks ADD --checksum against the sources: exactly one, a URL.
func checkChecksum(checksum string, sources []string, heredocs int) error {
	switch {
	case checksum == "":
		return nil
	case len(sources) != 1 || heredocs != 0:
		return errors.New("--checksum needs exactly one source")
	case !isURL(sources[0]):
		return fmt.Errorf("--checksum is for an http:// or https:// source, not %s", sources[0])
	}
	_, err := parseChecksum(checksum)
	return err
}

// isGitSource reports whether an ADD source is a git repository, as BuildKit decides:
// git@host:repo, git://, ssh://, or an http(s) URL ending in .git (with a #ref).
func isGitSource(s string) bool {
	ref, isGit, err := dfgitutil.ParseGitRef(s)
	if err != nil {
		return isGit
	}
	return !ref.IndistinguishableFromLocal
}

// check checks a COPY or ADD once its variables are expanded.
func (spec copySpec) check(sources []string, inline []InlineFile) error {
	for _, src := range sources {
		if spec.add && isGitSource(src) {
			return fmt.Errorf("ADD of a git repository (%s) is %w", src, ErrNotSupported)
		}
	}
	if spec.link && chownByName(spec.chown) {
		return fmt.Errorf("--chown=%s: user and group names can't be resolved with --link (the layer is made apart from the image's /etc/passwd); use a numeric uid[:gid]", spec.chown)
	}
	return checkChecksum(spec.checksum, sources, len(inline))
}
