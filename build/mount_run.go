package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"go.podman.io/storage/pkg/archive"
	"golang.org/x/sys/unix"

	"github.com/forge-build/forge/rootless/sandbox"
)

// plannedMount is a RUN mount with what its from names resolved: a context directory
// (the build context by default for a bind) or an image.
type plannedMount struct {
	runMount
	in copyInput
}

// fromKey names what from resolved to, for the cache key and the cache's identity.
func (p plannedMount) fromKey() string {
	switch {
	case p.in.imageID != "":
		return "image:" + p.in.imageID
	case p.in.context != nil:
		return "context:" + p.in.name
	}
	return ""
}

// mountSet is what a RUN step's mounts give the sandbox, and what undoes them afterwards.
type mountSet struct {
	volumes []sandbox.Volume
	tmpfs   []sandbox.Tmpfs
	env     []string
	undo    []func() error
}

// release undoes the mounts' preparation, the last first.
func (s *mountSet) release() error {
	var errs []error
	for i := len(s.undo) - 1; i >= 0; i-- {
		errs = append(errs, s.undo[i]())
	}
	s.undo = nil
	return errors.Join(errs...)
}

// planMounts resolves what the mounts name before the cache lookup (a stage is built, an
// image pulled) and returns their part of the step's cache key.
func (r *stageRun) planMounts(ctx context.Context, mounts []runMount) ([]plannedMount, string, error) {
	var key strings.Builder
	out := make([]plannedMount, 0, len(mounts))
	for _, m := range mounts {
		p := plannedMount{runMount: m}
		switch {
		case m.typ != instructions.MountTypeBind && m.typ != instructions.MountTypeCache:
		case m.from != "":
			in, err := r.copySource(ctx, m.from)
			if err != nil {
				return nil, "", fmt.Errorf("--mount: %w", err)
			}
			p.in = in
		case m.typ == instructions.MountTypeBind:
			p.in = copyInput{context: r.b.bctx}
		}
		key.WriteString(p.keyText(p.fromKey()))
		if p.in.context != nil {
			// What a bind shows, or what seeds a new cache.
			d, err := p.in.context.Digest(ctx, []string{"/" + m.source}, DigestOptions{Cache: r.b.digests})
			if err != nil {
				return nil, "", fmt.Errorf("--mount source=%s: %w", m.source, err)
			}
			fmt.Fprintf(&key, "context\x00%s\x00", d)
		}
		out = append(out, p)
	}
	return out, key.String(), nil
}

// prepareMounts makes what each mount needs and adds it to set.
func (r *stageRun) prepareMounts(ctx context.Context, planned []plannedMount, set *mountSet) error {
	for _, m := range planned {
		var err error
		switch m.typ {
		case instructions.MountTypeBind:
			err = r.bindMount(ctx, m, set)
		case instructions.MountTypeCache:
			err = r.cacheMount(ctx, m, set)
		case instructions.MountTypeTmpfs:
			set.tmpfs = append(set.tmpfs, sandbox.Tmpfs{Dest: m.target, Size: m.size})
		case instructions.MountTypeSecret:
			err = r.secretMount(m, set)
		default:
			err = fmt.Errorf("--mount: unknown type %q", m.typ)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// bindMount shows source from the context or an image. Read-only mounts bind it directly,
// resolved inside its root by the sandbox; a read-write one (or one of a context that an
// ignore file filters) is a copy in a temporary directory, thrown away after the step.
func (r *stageRun) bindMount(ctx context.Context, m plannedMount, set *mountSet) error {
	if c := m.in.context; c != nil {
		if c.ignore == nil && m.readOnly {
			set.volumes = append(set.volumes, sandbox.Volume{Root: c.Dir, Source: m.source, Dest: m.target, ReadOnly: true})
			return nil
		}
		tmp, err := r.tempDir(set, "forge-bind-")
		if err != nil {
			return err
		}
		dst, err := contextCopy(ctx, c, m.source, tmp, r.b.opts.IgnoreChownErrors)
		if err != nil {
			return fmt.Errorf("--mount source=%s: %w", m.source, err)
		}
		set.volumes = append(set.volumes, sandbox.Volume{Source: dst, Dest: m.target, ReadOnly: m.readOnly})
		return nil
	}
	root, err := r.b.mountImage(m.in.imageID)
	if err != nil {
		return err
	}
	if m.readOnly {
		set.volumes = append(set.volumes, sandbox.Volume{Root: root, Source: m.source, Dest: m.target, ReadOnly: true})
		return nil
	}
	src, err := securejoin.SecureJoin(root, m.source)
	if err != nil {
		return fmt.Errorf("--mount source=%s: %w", m.source, err)
	}
	tmp, err := r.tempDir(set, "forge-bind-")
	if err != nil {
		return err
	}
	dst, err := copyTree(src, tmp, r.b.opts.IgnoreChownErrors)
	if err != nil {
		return fmt.Errorf("--mount source=%s: %w", m.source, err)
	}
	set.volumes = append(set.volumes, sandbox.Volume{Source: dst, Dest: m.target})
	return nil
}

// contextCopy copies what the context c shows at source (its ignore file applied) into
// the directory dst, owned by root, and returns the copy's path.
func contextCopy(ctx context.Context, c *Context, source, dst string, ignoreChownErrors bool) (string, error) {
	root := c.sources()
	rel := source
	if rel == "" {
		rel = "."
	}
	s, err := root.lookup(ctx, rel)
	if err != nil {
		return "", err
	}
	stream := copyPlan{src: root}.tarSource(ctx, s, s.name)
	defer stream.Close()
	opts := &archive.TarOptions{InUserNS: true, IgnoreChownErrors: ignoreChownErrors}
	if err := archive.Untar(stream, dst, opts); err != nil {
		return "", err
	}
	if !s.isDir {
		return filepath.Join(dst, s.name), nil
	}
	return dst, nil
}

// cacheMount locks a cache directory of the store for the step, as its sharing says. A
// new cache is an empty directory (mode, uid, gid), or a copy of source in the image from
// names; without from, source is a directory inside the cache.
func (r *stageRun) cacheMount(ctx context.Context, m plannedMount, set *mountSet) error {
	key := "id\x00" + m.id
	if from := m.fromKey(); from != "" {
		key += "\x00from\x00" + from + "\x00" + m.source
	}
	dirs := cacheDirs{dir: r.b.cacheMountDir(), log: r.b.log}
	cache, release, err := dirs.acquire(ctx, cacheRequest{key: key, sharing: m.sharing, create: func(tmp string) error {
		return r.newCache(ctx, tmp, m)
	}})
	if err != nil {
		return err
	}
	set.undo = append(set.undo, release)
	sub := ""
	if m.fromKey() == "" && m.source != "" {
		if err := pathrs.MkdirAll(cache, m.source, 0o755); err != nil {
			return fmt.Errorf("--mount source=%s: %w", m.source, err)
		}
		sub = m.source
	}
	set.volumes = append(set.volumes, sandbox.Volume{Root: cache, Source: sub, Dest: m.target, ReadOnly: m.readOnly})
	return nil
}

// newCache fills a new cache directory: a copy of source in what from names, or nothing;
// then the mode and owner asked for (default 0755 and 0:0 for an empty cache).
func (r *stageRun) newCache(ctx context.Context, dir string, m plannedMount) error {
	seeded, err := r.seedCache(ctx, dir, m)
	if err != nil {
		return fmt.Errorf("--mount from=%s,source=%s: %w", m.from, m.source, err)
	}
	mode, uid, gid := uint32(0o755), 0, 0
	if m.mode != nil {
		mode = uint32(*m.mode) & 0o7777
	}
	if m.uid != nil {
		uid = int(*m.uid)
	}
	if m.gid != nil {
		gid = int(*m.gid)
	}
	if !seeded || m.uid != nil || m.gid != nil {
		if err := os.Lchown(dir, uid, gid); err != nil && !r.b.opts.IgnoreChownErrors {
			return fmt.Errorf("cache owner %d:%d: %w", uid, gid, err)
		}
	}
	if !seeded || m.mode != nil {
		return unix.Chmod(dir, mode)
	}
	return nil
}

// seedCache copies the directory a cache mount's from and source name into dir.
func (r *stageRun) seedCache(ctx context.Context, dir string, m plannedMount) (bool, error) {
	var seed string
	switch {
	case m.in.context != nil:
		if _, err := contextCopy(ctx, m.in.context, m.source, dir, r.b.opts.IgnoreChownErrors); err != nil {
			return false, err
		}
		return true, nil
	case m.in.imageID != "":
		root, err := r.b.mountImage(m.in.imageID)
		if err != nil {
			return false, err
		}
		if seed, err = securejoin.SecureJoin(root, m.source); err != nil {
			return false, err
		}
	default:
		return false, nil
	}
	fi, err := os.Stat(seed)
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, errors.New("not a directory")
	}
	_, err = copyTree(seed, dir, r.b.opts.IgnoreChownErrors)
	return err == nil, err
}

// secretMount gives the step a secret: a read-only file at the target, a variable, or
// both. A secret no --secret provides is skipped, or an error when required.
func (r *stageRun) secretMount(m plannedMount, set *mountSet) error {
	value, ok, err := secretValue(r.b.opts.Secrets, m.id)
	if err != nil {
		return err
	}
	if !ok {
		if m.required {
			return fmt.Errorf("secret %s: %w", m.id, ErrMissingSecret)
		}
		return nil
	}
	if m.env != "" {
		set.env = append(set.env, m.env+"="+string(value))
	}
	if m.target == "" {
		return nil
	}
	file, dir, err := writeSecretFile(value, m.runMount)
	if err != nil {
		return err
	}
	set.undo = append(set.undo, func() error { return os.RemoveAll(dir) })
	set.volumes = append(set.volumes, sandbox.Volume{Source: file, Dest: m.target, ReadOnly: true})
	return nil
}

// tempDir makes a temporary directory that the step's release removes.
func (r *stageRun) tempDir(set *mountSet, prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("--mount: %w", err)
	}
	set.undo = append(set.undo, func() error { return os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("--mount: %w", err)
	}
	return dir, nil
}

// copyTree copies src (a directory's contents, or one file) into the directory dst with
// owners, modes and symlinks as they are, and returns the copy's path.
func copyTree(src, dst string, ignoreChownErrors bool) (string, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	dir, opts := src, &archive.TarOptions{}
	out := dst
	if !fi.IsDir() {
		dir, opts.IncludeFiles = filepath.Dir(src), []string{filepath.Base(src)}
		out = filepath.Join(dst, filepath.Base(src))
	}
	rc, err := archive.TarWithOptions(dir, opts)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	err = archive.Untar(rc, dst, &archive.TarOptions{InUserNS: true, IgnoreChownErrors: ignoreChownErrors})
	return out, err
}

// cacheMountDir is where this build keeps cache mounts: Options.CacheMountDir, or the
// store's.
func (b *builder) cacheMountDir() string {
	if b.opts.CacheMountDir != "" {
		return b.opts.CacheMountDir
	}
	return CacheMountDir(b.store.GraphRoot())
}
