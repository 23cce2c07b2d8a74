package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"go.podman.io/storage/pkg/archive"

	"github.com/forge-build/forge/storage"
)

// ErrOutsideContext is returned for a source path that leaves the context directory.
var ErrOutsideContext = errors.New("path is outside the context directory")

// ErrOutsideRoot is returned for a destination that climbs above the container's root.
var ErrOutsideRoot = errors.New("path is outside the container's root")

// CopyOptions are the flags of `forge copy` and `forge add` (and COPY/ADD steps).
type CopyOptions struct {
	// ContextDir is where relative sources are found; they may not leave it. Absolute
	// sources are host paths unless SourcesInContext is set. Default: the current
	// directory. Ignored when Context is set.
	ContextDir string
	// Context, for a Dockerfile build, is the build context: its Dir is the context
	// directory and the files its ignore file excludes are invisible (not matched by
	// wildcards, skipped in directories, "no such file" when named). Nil excludes nothing.
	Context *Context
	// SourcesInContext makes absolute sources relative to the context directory, as
	// Dockerfile COPY does, so no source is a host path outside it.
	SourcesInContext bool
	Chown            string // USER[:GROUP], by name (the container's /etc/passwd) or number; default 0:0
	Chmod            string // octal mode for the copied files and directories
	// Add turns on ADD's extras: local tar archives are unpacked, URLs are fetched.
	Add bool
	// IgnoreChownErrors stores files as the caller's own when only one ID is mapped.
	IgnoreChownErrors bool
	// Exclude holds COPY --exclude patterns (.dockerignore syntax), matched against paths
	// relative to each source, and against a wildcard's matches.
	Exclude []string
	// Parents is COPY --parents: each source keeps its path below the context root, or
	// below a `/./` pivot in it; the destination is a directory.
	Parents bool
	// Inline files (the heredocs of COPY <<EOF) are copied after the sources.
	Inline []InlineFile
	// Checksum, for ADD of a URL, is the digest (sha256:...) the download must have.
	Checksum string
}

// InlineFile is a file whose content is given: a heredoc of COPY or ADD. It is copied
// with mode 0644 (or --chmod) and a zero modification time, as BuildKit makes it.
type InlineFile struct {
	Name string
	Data string
}

// sourceRoot is where the options say sources are read.
func (o CopyOptions) sourceRoot() (sourceRoot, error) {
	if o.Context != nil {
		r := o.Context.sources()
		r.inContext = o.SourcesInContext
		return r.with(o.Exclude, o.Parents)
	}
	dir := o.ContextDir
	if dir == "" {
		dir = "."
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return sourceRoot{}, err
	}
	return sourceRoot{dir: dir, inContext: o.SourcesInContext}.with(o.Exclude, o.Parents)
}

// Copy copies sources into the container at dest, with Docker's COPY rules: a trailing
// slash or several sources make dest a directory; a directory's contents are copied; every
// path in the container is resolved inside its root.
func Copy(ctx context.Context, s *storage.Store, c *storage.Container, sources []string, dest string, o CopyOptions) (retErr error) {
	if len(sources) == 0 && len(o.Inline) == 0 {
		return errors.New("copy: no source given")
	}
	mode, err := parseChmod(o.Chmod)
	if err != nil {
		return err
	}
	src, err := o.sourceRoot()
	if err != nil {
		return err
	}
	rootfs, err := s.Mount(c)
	if err != nil {
		return err
	}
	defer func() {
		if err := s.Unmount(c, false); err != nil && retErr == nil {
			retErr = err
		}
	}()
	owner, err := resolveOwner(rootfs, o.Chown)
	if err != nil {
		return err
	}
	plan := copyPlan{rootfs: rootfs, owner: owner, mode: mode, src: src, opts: o, maxUnpacked: s.MaxLayerSize()}
	return plan.run(ctx, sources, dest, c.Config.Config.WorkingDir)
}

type copyPlan struct {
	rootfs string
	owner  idPair
	mode   *os.FileMode
	src    sourceRoot
	opts   CopyOptions
	// maxUnpacked (> 0) is how far a local archive that ADD unpacks may expand.
	maxUnpacked int64
}

func (p copyPlan) run(ctx context.Context, sources []string, dest, workdir string) error {
	destPath, err := containerPath(dest, workdir)
	if err != nil {
		return err
	}
	items, cleanup, err := p.collect(ctx, sources)
	defer cleanup()
	if err != nil {
		return err
	}
	destIsDir := strings.HasSuffix(dest, "/") || len(items) > 1 || p.opts.Parents || p.isDirInRoot(destPath)
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.copyItem(ctx, it, destPath, destIsDir); err != nil {
			return err
		}
	}
	return nil
}

// containerPath makes dest absolute (relative to the working directory) and refuses one
// that climbs above the root.
func containerPath(dest, workdir string) (string, error) {
	if dest == "" {
		return "", errors.New("copy: no destination given")
	}
	p := dest
	if !path.IsAbs(p) {
		p = "/" + workdir + "/" + dest
	}
	if depth(p) < 0 {
		return "", fmt.Errorf("destination %s: %w", dest, ErrOutsideRoot)
	}
	return path.Clean(p), nil
}

// depth is how deep a slash path ends up, counting each .. as one level up.
func depth(p string) int {
	d := 0
	for _, part := range strings.Split(p, "/") {
		switch part {
		case "", ".":
		case "..":
			d--
			if d < 0 {
				return d
			}
		default:
			d++
		}
	}
	return d
}

func (p copyPlan) isDirInRoot(dest string) bool {
	host, err := securejoin.SecureJoin(p.rootfs, dest)
	if err != nil {
		return false
	}
	fi, err := os.Stat(host)
	return err == nil && fi.IsDir()
}

// collect resolves sources (globs, URLs for ADD) to host paths.
func (p copyPlan) collect(ctx context.Context, sources []string) ([]source, func(), error) {
	var cleanups []func()
	cleanup := func() {
		for _, f := range cleanups {
			f()
		}
	}
	var out []source
	for _, src := range sources {
		if p.opts.Add && isURL(src) {
			s, done, err := fetchURL(ctx, src, p.opts.Checksum)
			if done != nil {
				cleanups = append(cleanups, done)
			}
			if err != nil {
				return nil, cleanup, err
			}
			out = append(out, s)
			continue
		}
		found, err := p.src.resolve(ctx, src)
		if err != nil {
			return nil, cleanup, err
		}
		for _, s := range found {
			s.archive = p.opts.Add && s.regular && isArchive(s.host)
			out = append(out, s)
		}
	}
	if len(p.opts.Inline) > 0 {
		inline, done, err := writeInline(p.opts.Inline)
		if done != nil {
			cleanups = append(cleanups, done)
		}
		if err != nil {
			return nil, cleanup, err
		}
		out = append(out, inline...)
	}
	return out, cleanup, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// copyItem writes one source into the container by streaming it as a tar archive that is
// unpacked chrooted into the root filesystem (storage.UnpackInRoot), so no symlink in the
// image can lead out.
func (p copyPlan) copyItem(ctx context.Context, s source, dest string, destIsDir bool) error {
	targetDir, name := dest, s.name
	switch {
	case s.archive || s.isDir:
		name = ""
	case !destIsDir:
		targetDir, name = path.Dir(dest), path.Base(dest)
	}
	hostDir, err := p.mkdirInRoot(targetDir)
	if err != nil {
		return err
	}
	var stream io.ReadCloser
	if s.archive {
		f, err := os.Open(s.host)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := p.checkExpansion(ctx, f); err != nil {
			return fmt.Errorf("add %s: %w", s.host, err)
		}
		if stream, err = archive.DecompressStream(f); err != nil {
			return fmt.Errorf("add %s: %w", s.host, err)
		}
	} else {
		stream = p.tarSource(ctx, s, name)
	}
	defer stream.Close()
	opts := &archive.TarOptions{NoLchown: false, IgnoreChownErrors: p.opts.IgnoreChownErrors, InUserNS: true}
	if err := storage.UnpackInRoot(stream, p.rootfs, hostDir, opts); err != nil {
		return fmt.Errorf("copy %s to %s: %w", s.host, dest, err)
	}
	return nil
}

// checkExpansion reads a local archive through once, counting what unpacking it writes,
// and fails with storage.ErrLayerTooLarge past the limit; it leaves f at its start.
func (p copyPlan) checkExpansion(ctx context.Context, f *os.File) error {
	if p.maxUnpacked <= 0 {
		return nil
	}
	if _, err := storage.LayerExpansion(ctx, f, p.maxUnpacked); err != nil {
		return err
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// mkdirInRoot creates a directory of the container (owned by root) and returns its host path.
func (p copyPlan) mkdirInRoot(dir string) (string, error) {
	host, err := securejoin.SecureJoin(p.rootfs, dir)
	if err != nil {
		return "", fmt.Errorf("destination %s: %w", dir, err)
	}
	if fi, err := os.Stat(host); err == nil {
		if !fi.IsDir() {
			return "", fmt.Errorf("destination %s: not a directory", dir)
		}
		return host, nil
	}
	if err := mkdirAllInRoot(p.rootfs, dir); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	return securejoin.SecureJoin(p.rootfs, dir)
}

func parseChmod(s string) (*os.FileMode, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return nil, fmt.Errorf("--chmod %q: want an octal mode such as 0755", s)
	}
	m := os.FileMode(n)
	return &m, nil
}
