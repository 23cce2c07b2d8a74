package build

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/forge-build/forge/rootless/sandbox"
)

// The RUN flags and mount types forge implements: `--mount` of type bind, cache, tmpfs and
// secret, `--network`, and `--security=sandbox` (the default). Everything else is refused
// by name, never ignored.

// errSSHMount is the clear refusal of `--mount=type=ssh` until it is implemented.
var errSSHMount = fmt.Errorf("RUN --mount=type=ssh is %w (use --mount=type=secret for a key file)", ErrNotSupported)

// checkRun refuses, when the Dockerfile is parsed, the RUN flags forge does not implement
// and the mount options that are wrong as written. A mount whose words hold variables is
// checked again, expanded, when its step runs.
func checkRun(c *instructions.RunCommand) error {
	for _, f := range c.FlagsUsed {
		switch f {
		case "mount", "network":
		case "security":
			if s := instructions.GetSecurity(c); s != instructions.SecuritySandbox {
				return fmt.Errorf("RUN --security=%s is %w", s, ErrNotSupported)
			}
		default:
			return fmt.Errorf("RUN --%s is %w", f, ErrNotSupported)
		}
	}
	hasVars := false
	err := c.Expand(func(w string) (string, error) {
		hasVars = hasVars || strings.Contains(w, "$")
		return w, nil
	})
	if err != nil {
		if hasVars {
			return nil // the step reports it, with the values
		}
		return mountError(err)
	}
	if _, err := checkMounts(instructions.GetMounts(c), "/"); err != nil && !hasVars {
		return err
	}
	return nil
}

// runMount is one `RUN --mount` after expansion and checks.
type runMount struct {
	typ      instructions.MountType
	target   string // absolute and clean; "" for a secret given only as an environment variable
	from     string // a stage, an image, or "" (bind: the context; cache: an empty directory)
	source   string // clean, relative to the root of from ("" is the root); a secret's id for a secret
	readOnly bool
	id       string // cache: the cache's id; secret: the secret's id
	sharing  instructions.ShareMode
	size     int64  // tmpfs: bytes, 0 for the kernel's default
	required bool   // secret
	env      string // secret: the environment variable that gets it; "" for none
	mode     *uint64
	uid, gid *uint64
}

// parseRunMounts expands the words of a RUN's --mount flags with expand and checks them.
// Relative targets are relative to workdir.
func parseRunMounts(c *instructions.RunCommand, expand instructions.SingleWordExpander, workdir string) ([]runMount, error) {
	if err := c.Expand(expand); err != nil {
		return nil, mountError(err)
	}
	return checkMounts(instructions.GetMounts(c), workdir)
}

// checkMounts checks each mount and that no two share a target.
func checkMounts(mounts []*instructions.Mount, workdir string) ([]runMount, error) {
	var out []runMount
	targets := map[string]bool{}
	for _, m := range mounts {
		rm, err := checkMount(m, workdir)
		if err != nil {
			return nil, err
		}
		if rm.target != "" {
			if targets[rm.target] {
				return nil, fmt.Errorf("--mount: two mounts at %s", rm.target)
			}
			targets[rm.target] = true
		}
		out = append(out, rm)
	}
	return out, nil
}

// checkVolumes refuses a RUN mount (or the heredoc scripts' directory) at, inside or
// around a --volume's destination: it would be made in the host directory, or hide it.
func checkVolumes(volumes []sandbox.Volume, mounts []runMount, heredoc bool) error {
	var targets []string
	for _, m := range mounts {
		if m.target != "" {
			targets = append(targets, m.target)
		}
	}
	if heredoc {
		targets = append(targets, heredocDir)
	}
	nested := func(a, b string) bool { return a == b || strings.HasPrefix(a, b+"/") || b == "/" }
	for _, v := range volumes {
		dest := path.Clean(v.Dest)
		for _, t := range targets {
			if nested(t, dest) || nested(dest, t) {
				what := "RUN --mount target " + t
				if t == heredocDir {
					what = "the directory of its heredoc scripts, " + t + ","
				}
				return fmt.Errorf("%s overlaps --volume destination %s", what, dest)
			}
		}
	}
	return nil
}

// mountError keeps the first line of an error of BuildKit's mount parser.
func mountError(err error) error {
	return fmt.Errorf("--mount: %w", plainError(err))
}

// mountOptions lists, per type, the options a mount may set besides type and ro/rw (the
// parser already refused keys it does not know at all): an option that does not apply to
// the type is an error, not ignored.
var mountOptions = map[instructions.MountType][]string{
	instructions.MountTypeBind:   {"target", "from", "source"},
	instructions.MountTypeCache:  {"target", "from", "source", "id", "sharing", "mode", "uid", "gid"},
	instructions.MountTypeTmpfs:  {"target", "size"},
	instructions.MountTypeSecret: {"target", "source", "id", "env", "required", "mode", "uid", "gid"},
}

// setOptions names the options of m that are set.
func setOptions(m *instructions.Mount) []string {
	var set []string
	add := func(name string, isSet bool) {
		if isSet {
			set = append(set, name)
		}
	}
	add("target", m.Target != "")
	add("from", m.From != "")
	add("source", m.Source != "")
	add("id", m.CacheID != "")
	add("sharing", m.CacheSharing != "")
	add("size", m.SizeLimit != 0)
	add("required", m.Required)
	add("env", m.Env != nil)
	add("mode", m.Mode != nil)
	add("uid", m.UID != nil)
	add("gid", m.GID != nil)
	return set
}

// checkMount checks one parsed mount against the fixed list of its type and fills in
// BuildKit's defaults.
func checkMount(m *instructions.Mount, workdir string) (runMount, error) {
	allowed, ok := mountOptions[m.Type]
	if m.Type == instructions.MountTypeSSH {
		return runMount{}, errSSHMount
	}
	if !ok {
		return runMount{}, fmt.Errorf("--mount: unknown type %q", m.Type)
	}
	for _, opt := range setOptions(m) {
		if !slices.Contains(allowed, opt) {
			return runMount{}, fmt.Errorf("--mount: option %q is not allowed for type=%s", opt, m.Type)
		}
	}
	rm := runMount{typ: m.Type, from: m.From, readOnly: m.ReadOnly, sharing: m.CacheSharing,
		size: m.SizeLimit, required: m.Required, mode: m.Mode, uid: m.UID, gid: m.GID}
	if m.Type == instructions.MountTypeSecret {
		return secretMount(m, rm)
	}
	if m.Target == "" {
		return runMount{}, fmt.Errorf("--mount=type=%s: target is required", m.Type)
	}
	target, err := mountTarget(m.Target, workdir)
	if err != nil {
		return runMount{}, err
	}
	rm.target = target
	rm.source = cleanSource(m.Source)
	if m.Type == instructions.MountTypeCache {
		rm.id = m.CacheID
		if rm.id == "" {
			rm.id = path.Clean(m.Target) // BuildKit: the target as written
		}
		if rm.sharing == "" {
			rm.sharing = instructions.MountSharingShared
		}
	}
	return rm, nil
}

// secretMount fills in a secret's id, file and variable as BuildKit does: the id defaults
// to the target's base name, the file to /run/secrets/ID unless only env is asked for.
func secretMount(m *instructions.Mount, rm runMount) (runMount, error) {
	rm.id = m.CacheID
	if m.Source != "" {
		rm.id = m.Source
	}
	if rm.id == "" {
		rm.id = path.Base(m.Target)
	}
	if rm.id == "" || rm.id == "/" || rm.id == "." {
		return runMount{}, errors.New("--mount=type=secret: an id or a target is required")
	}
	if m.Env != nil {
		rm.env = *m.Env
		if rm.env == "" {
			rm.env = rm.id
		}
		if strings.ContainsAny(rm.env, "=\x00") {
			return runMount{}, fmt.Errorf("--mount=type=secret: env=%s is not a variable name", rm.env)
		}
	}
	target := m.Target
	if target == "" && m.Env == nil {
		target = "/run/secrets/" + path.Base(rm.id)
	}
	if target != "" {
		t, err := mountTarget(target, "/")
		if err != nil {
			return runMount{}, err
		}
		rm.target = t
	}
	return rm, nil
}

// mountTarget makes a target absolute (relative to workdir) and clean; `..` stops at the
// root, and the root itself is refused. Symlinks are resolved inside the container's root
// when the sandbox mounts it.
func mountTarget(target, workdir string) (string, error) {
	t := target
	if !path.IsAbs(t) {
		t = path.Join("/", workdir, t)
	}
	t = path.Clean("/" + t)
	if t == "/" {
		return "", fmt.Errorf("--mount: invalid target %q", target)
	}
	return t, nil
}

// cleanSource makes a source a clean path relative to its root: `..` stops at the root,
// as BuildKit's path.Join("/", source) does. "" is the root itself.
func cleanSource(source string) string {
	return strings.TrimPrefix(path.Clean("/"+source), "/")
}

// keyText describes the mount for the step's cache key: everything that decides what the
// command sees, never a secret's value. fromID is the image a from names, when it names one.
func (m runMount) keyText(fromID string) string {
	opt := func(p *uint64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatUint(*p, 10)
	}
	return fmt.Sprintf("mount\x00%s\x00%s\x00%s\x00%s\x00%t\x00%s\x00%s\x00%d\x00%t\x00%s\x00%s\x00%s\x00%s\x00",
		m.typ, m.target, fromID, m.source, m.readOnly, m.id, m.sharing, m.size, m.required, m.env,
		opt(m.mode), opt(m.uid), opt(m.gid))
}
