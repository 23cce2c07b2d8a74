package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultCaps is Docker's default capability set for root in a container.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Docker's masked and read-only paths: kernel interfaces a build step has no business with.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// devices are bound from the host's /dev: a user namespace cannot mknod.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// Files under /etc that exist only for the run. Their mounts' sources are these names,
// relative: Run replaces them with files in a private directory.
const (
	etcHosts    = "hosts"
	etcResolv   = "resolv.conf"
	etcHostname = "hostname"
)

// Spec returns the OCI runtime spec (runtime-tools generate) describing the sandbox for
// cfg. The user is resolved from the container's /etc/passwd and /etc/group, read inside
// RootFS. The sources of the /etc/hosts, /etc/resolv.conf and /etc/hostname mounts are
// relative names of files that Run writes to a private directory for each run.
func Spec(cfg Config) (*specs.Spec, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	u, err := resolveUser(cfg.RootFS, cfg.User)
	if err != nil {
		return nil, err
	}
	g, err := generate.New("linux")
	if err != nil {
		return nil, fmt.Errorf("generate spec: %w", err)
	}
	g.SetRootPath(cfg.RootFS)
	g.SetHostname(cfg.Hostname)
	g.SetProcessArgs(cfg.Args)
	g.SetProcessCwd(cfg.WorkDir)
	g.SetProcessTerminal(cfg.TTY)
	g.SetProcessUID(u.uid)
	g.SetProcessGID(u.gid)
	for _, gid := range u.groups {
		g.AddProcessAdditionalGid(gid)
	}
	g.SetProcessUsername(cfg.User)
	g.ClearProcessRlimits()
	g.Config.Process.Env = environment(cfg, u.home)
	g.Config.Process.Capabilities = capabilities(u.uid == 0)
	g.ClearLinuxNamespaces()
	for _, ns := range namespaces(cfg.Network) {
		if err := g.AddOrReplaceLinuxNamespace(ns, ""); err != nil {
			return nil, fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	mounts, err := mountList(cfg)
	if err != nil {
		return nil, err
	}
	g.ClearMounts()
	for _, m := range mounts {
		g.AddMount(m)
	}
	for _, p := range maskedPaths {
		g.AddLinuxMaskedPaths(p)
	}
	for _, p := range readonlyPaths {
		g.AddLinuxReadonlyPaths(p)
	}
	g.Config.Linux.Seccomp = nil
	g.Config.Linux.Resources = nil
	return g.Config, nil
}

// withDefaults checks cfg and fills in the defaults.
func withDefaults(cfg Config) (Config, error) {
	if cfg.RootFS == "" {
		return cfg, errors.New("sandbox: no root filesystem")
	}
	if len(cfg.Args) == 0 || cfg.Args[0] == "" {
		return cfg, errors.New("sandbox: no command")
	}
	root, err := filepath.Abs(cfg.RootFS)
	if err != nil {
		return cfg, fmt.Errorf("rootfs: %w", err)
	}
	cfg.RootFS = filepath.Clean(root)
	if st, err := os.Stat(cfg.RootFS); err != nil {
		return cfg, fmt.Errorf("rootfs: %w", err)
	} else if !st.IsDir() {
		return cfg, fmt.Errorf("rootfs %s: not a directory", cfg.RootFS)
	}
	cfg.WorkDir = path.Clean("/" + cfg.WorkDir)
	if cfg.Hostname == "" {
		sum := sha256.Sum256([]byte(cfg.RootFS))
		cfg.Hostname = hex.EncodeToString(sum[:6])
	}
	switch cfg.Network {
	case "":
		cfg.Network = NetworkHost
	case NetworkHost, NetworkNone:
	default:
		return cfg, fmt.Errorf("network %q: want %q or %q", cfg.Network, NetworkHost, NetworkNone)
	}
	return cfg, nil
}

// environment is cfg.Env with PATH, HOME (and TERM with a TTY) added when absent.
func environment(cfg Config, home string) []string {
	env := make([]string, 0, len(cfg.Env)+3)
	seen := map[string]int{}
	for _, kv := range cfg.Env {
		key, _, _ := strings.Cut(kv, "=")
		if i, ok := seen[key]; ok {
			env[i] = kv // the last value wins, in the first one's place
			continue
		}
		seen[key] = len(env)
		env = append(env, kv)
	}
	add := func(key, value string) {
		if _, ok := seen[key]; !ok {
			env = append(env, key+"="+value)
		}
	}
	add("PATH", defaultPath)
	add("HOME", home)
	if cfg.TTY {
		add("TERM", "xterm")
	}
	return env
}

// capabilities: Docker's default set for root; for another user only the bounding set,
// so that the command runs with none.
func capabilities(root bool) *specs.LinuxCapabilities {
	caps := &specs.LinuxCapabilities{Bounding: append([]string(nil), defaultCaps...)}
	if root {
		caps.Effective = append([]string(nil), defaultCaps...)
		caps.Permitted = append([]string(nil), defaultCaps...)
	}
	return caps
}

func namespaces(network string) []string {
	ns := []string{"mount", "pid", "ipc", "uts"}
	if network == NetworkNone {
		ns = append(ns, "network")
	}
	return ns
}

// mountList is the sandbox's mounts, in the order they are made.
func mountList(cfg Config) ([]specs.Mount, error) {
	ptsOpts := []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
	if idMapped("/proc/self/gid_map", 5) {
		ptsOpts = append(ptsOpts, "gid=5") // tty
	}
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: ptsOpts},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	for _, d := range devices {
		mounts = append(mounts, specs.Mount{Destination: "/dev/" + d, Type: "bind", Source: "/dev/" + d, Options: []string{"bind", "nosuid", "noexec"}})
	}
	mounts = append(mounts, specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}})
	for _, f := range []string{etcHosts, etcResolv, etcHostname} {
		mounts = append(mounts, specs.Mount{Destination: "/etc/" + f, Type: "bind", Source: f, Options: []string{"bind", "nosuid", "nodev", "noexec", "ro"}})
	}
	user, err := userMounts(cfg)
	if err != nil {
		return nil, err
	}
	return append(mounts, user...), nil
}

// userMounts are cfg's volumes and tmpfs mounts, the shallower first, so that a mount
// inside another one's target is made on top of it.
func userMounts(cfg Config) ([]specs.Mount, error) {
	var mounts []specs.Mount
	for _, v := range cfg.Volumes {
		m, err := volumeMount(v)
		if err != nil {
			return nil, err
		}
		mounts = append(mounts, m)
	}
	for _, t := range cfg.Tmpfs {
		if t.Dest == "" || t.Size < 0 {
			return nil, fmt.Errorf("tmpfs %q: a destination and a size >= 0 are required", t.Dest)
		}
		opts := []string{"nosuid", "nodev"}
		if t.Size > 0 {
			opts = append(opts, "size="+strconv.FormatInt(t.Size, 10))
		}
		mounts = append(mounts, specs.Mount{Destination: path.Clean("/" + t.Dest), Type: "tmpfs", Source: userTmpfs, Options: opts})
	}
	sort.SliceStable(mounts, func(i, j int) bool {
		return pathDepth(mounts[i].Destination) < pathDepth(mounts[j].Destination)
	})
	return mounts, nil
}

func pathDepth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// volumeMount checks v and describes it as a recursive bind mount.
func volumeMount(v Volume) (specs.Mount, error) {
	if v.Source == "" && v.Root == "" || v.Dest == "" {
		return specs.Mount{}, fmt.Errorf("volume %q:%q: source and destination are required", v.Source, v.Dest)
	}
	opts := []string{"rbind"}
	if v.ReadOnly {
		opts = append(opts, "ro")
	}
	src, err := filepath.Abs(v.Source)
	if v.Root != "" {
		if src, err = filepath.Abs(v.Root); err == nil {
			if rel := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(v.Source)), "/"); rel != "" {
				opts = append(opts, subpathOption+rel)
			}
		}
	}
	if err != nil {
		return specs.Mount{}, fmt.Errorf("volume %s: %w", v.Source, err)
	}
	m := specs.Mount{Destination: path.Clean("/" + v.Dest), Type: "bind", Source: src, Options: opts}
	if _, err := sourcePath(m); err != nil {
		return specs.Mount{}, fmt.Errorf("volume %s: source does not exist: %w", v.Source, err)
	}
	return m, nil
}

// subpathOption marks a bind mount whose source is a path inside Source, resolved inside
// it by the child (see Volume.Root). It is forge's own and never reaches mount(2).
const subpathOption = "x-forge-subpath="

// userTmpfs is the source name of a Config.Tmpfs mount, whose target may be reached
// through symlinks inside the root, unlike the kernel filesystems of the sandbox.
const userTmpfs = "forge-tmpfs"

// subpath returns the subpath option of a bind mount.
func subpath(m specs.Mount) (string, bool) {
	for _, o := range m.Options {
		if rel, ok := strings.CutPrefix(o, subpathOption); ok {
			return rel, true
		}
	}
	return "", false
}

// sourcePath is the host path a bind mount's source is now (a subpath resolved inside its
// root), for the parent's checks; the child resolves it again when it mounts.
func sourcePath(m specs.Mount) (string, error) {
	src := m.Source
	if rel, ok := subpath(m); ok {
		var err error
		if src, err = securejoin.SecureJoin(m.Source, rel); err != nil {
			return "", err
		}
	}
	_, err := os.Stat(src)
	return src, err
}
