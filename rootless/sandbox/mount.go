package sandbox

import (
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setupRoot builds the sandbox's mounts inside the root filesystem and pivots into it.
// Every mount target is opened inside the root (openat2 RESOLVE_IN_ROOT) and the mount
// made on that handle, so that no symlink in the image can move a mount onto the host.
func setupRoot(spec *specs.Spec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	rootfs := spec.Root.Path
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs: %w", err)
	}
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer root.Close()
	for _, m := range spec.Mounts {
		if err := mountOne(root, m); err != nil {
			return err
		}
	}
	if err := setupDev(root, spec.Process.Terminal); err != nil {
		return err
	}
	if err := restrictPaths(root, spec.Linux); err != nil {
		return err
	}
	if hasNamespace(spec, specs.NetworkNamespace) {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	if spec.Root.Readonly {
		if err := setAttrs(root, "/", unix.MOUNT_ATTR_RDONLY, false); err != nil {
			return fmt.Errorf("read-only rootfs: %w", err)
		}
	}
	return pivotRoot(rootfs)
}

// mountOne makes the mount m inside root.
func mountOne(root *os.File, m specs.Mount) error {
	flags, attrs, data := parseOptions(m.Options)
	bind := flags&unix.MS_BIND != 0
	dir, err := isDirSource(m)
	if err != nil {
		return err
	}
	// Kernel filesystems go on real directories only: no symlink anywhere on the way.
	target, err := openTarget(root, m.Destination, dir, !bind && m.Source != userTmpfs)
	if err != nil {
		return err
	}
	defer target.Close()
	if bind {
		src, err := openSource(m)
		if err != nil {
			return err
		}
		defer src.Close()
		if err := unix.Mount(procFD(src), procFD(target), "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.Destination, err)
		}
		return setAttrs(root, m.Destination, attrs, flags&unix.MS_REC != 0)
	}
	err = unix.Mount(m.Source, procFD(target), m.Type, flags, data)
	switch {
	case err == nil:
		return nil
	case m.Type == "sysfs" && errors.Is(err, unix.EPERM):
		// A user namespace may not mount sysfs for the host's network namespace: bind
		// the host's /sys instead, read-only all the way down.
		if err := unix.Mount("/sys", procFD(target), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.Destination, err)
		}
		return setAttrs(root, m.Destination, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|
			unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, true)
	case m.Type == "mqueue":
		return nil // POSIX message queues are optional
	}
	return fmt.Errorf("mount %s: %w", m.Destination, err)
}

// openSource opens the source of a bind mount as an O_PATH handle, in this mount
// namespace. A subpath is resolved inside the source directory by openat2
// RESOLVE_IN_ROOT: `..` and symlinks, absolute or relative, stay inside it.
func openSource(m specs.Mount) (*os.File, error) {
	rel, ok := subpath(m)
	if !ok {
		f, err := os.OpenFile(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("mount %s: %w", m.Destination, err)
		}
		return f, nil
	}
	root, err := os.OpenFile(m.Source, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	defer root.Close()
	fd, err := unix.Openat2(int(root.Fd()), rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, fmt.Errorf("mount %s: source %s: %w", m.Destination, rel, err)
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// parseOptions splits mount options into mount(2) flags, the equivalent mount_setattr
// attributes (bind mounts take those only afterwards), and filesystem data.
func parseOptions(opts []string) (flags uintptr, attrs uint64, data string) {
	var rest []string
	for _, o := range opts {
		switch o {
		case "bind":
			flags |= unix.MS_BIND
		case "rbind":
			flags |= unix.MS_BIND | unix.MS_REC
		case "ro":
			flags |= unix.MS_RDONLY
			attrs |= unix.MOUNT_ATTR_RDONLY
		case "nosuid":
			flags |= unix.MS_NOSUID
			attrs |= unix.MOUNT_ATTR_NOSUID
		case "nodev":
			flags |= unix.MS_NODEV
			attrs |= unix.MOUNT_ATTR_NODEV
		case "noexec":
			flags |= unix.MS_NOEXEC
			attrs |= unix.MOUNT_ATTR_NOEXEC
		case "strictatime":
			flags |= unix.MS_STRICTATIME
		case "rw", "private", "rprivate":
		default:
			if strings.HasPrefix(o, subpathOption) {
				continue
			}
			rest = append(rest, o)
		}
	}
	return flags, attrs, strings.Join(rest, ",")
}

// openTarget opens the mount point dest inside root as an O_PATH handle, creating it (a
// directory, or an empty file) when missing. strict refuses symlinks on the way.
func openTarget(root *os.File, dest string, dir, strict bool) (*os.File, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	if dir {
		how.Flags |= unix.O_DIRECTORY
	}
	if strict {
		how.Resolve |= unix.RESOLVE_NO_SYMLINKS
	}
	fd, err := unix.Openat2(int(root.Fd()), dest, &how)
	if errors.Is(err, unix.ENOENT) {
		if err := createInRoot(root, dest, dir); err != nil {
			return nil, fmt.Errorf("mount point %s: %w", dest, err)
		}
		fd, err = unix.Openat2(int(root.Fd()), dest, &how)
	}
	if err != nil {
		return nil, fmt.Errorf("mount point %s: %w", dest, err)
	}
	return os.NewFile(uintptr(fd), dest), nil
}

// setAttrs applies mount attributes to the mount now at dest.
func setAttrs(root *os.File, dest string, attrs uint64, recursive bool) error {
	if attrs == 0 {
		return nil
	}
	target, err := openTarget(root, dest, false, false)
	if err != nil {
		return err
	}
	defer target.Close()
	flags := unix.AT_EMPTY_PATH
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	if err := unix.MountSetattr(int(target.Fd()), "", uint(flags), &unix.MountAttr{Attr_set: attrs}); err != nil {
		return fmt.Errorf("mount attributes %s: %w", dest, err)
	}
	return nil
}

func procFD(f *os.File) string {
	return fmt.Sprintf("/proc/self/fd/%d", f.Fd())
}

// setupDev adds the /dev symlinks and, with a terminal, /dev/console (the pty's slave).
func setupDev(root *os.File, tty bool) error {
	dev, err := openTarget(root, "/dev", true, true)
	if err != nil {
		return err
	}
	defer dev.Close()
	links := [][2]string{
		{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], int(dev.Fd()), l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	if !tty {
		return nil
	}
	console, err := openTarget(root, "/dev/console", false, true)
	if err != nil {
		return err
	}
	defer console.Close()
	// Bind the slave by its path: the descriptor's own mount belongs to the parent's
	// mount namespace, which a bind mount may not take from.
	slave, err := os.Readlink("/proc/self/fd/0")
	if err != nil {
		return fmt.Errorf("mount /dev/console: %w", err)
	}
	if err := unix.Mount(slave, procFD(console), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mount /dev/console: %w", err)
	}
	return nil
}

// restrictPaths hides the masked paths (an empty read-only tmpfs on a directory,
// /dev/null on a file) and makes the read-only paths read-only. Paths the kernel does not
// have are skipped.
func restrictPaths(root *os.File, l *specs.Linux) error {
	for _, p := range l.MaskedPaths {
		if err := maskPath(root, p); err != nil {
			return err
		}
	}
	for _, p := range l.ReadonlyPaths {
		if err := readonlyPath(root, p); err != nil {
			return err
		}
	}
	return nil
}

func maskPath(root *os.File, p string) error {
	target, err := openExisting(root, p)
	if target == nil {
		return err
	}
	defer target.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(target.Fd()), &st); err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = unix.Mount("tmpfs", procFD(target), "tmpfs", unix.MS_RDONLY, "size=0")
	} else {
		err = unix.Mount("/dev/null", procFD(target), "", unix.MS_BIND, "")
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}

func readonlyPath(root *os.File, p string) error {
	target, err := openExisting(root, p)
	if target == nil {
		return err
	}
	defer target.Close()
	if err := unix.Mount(procFD(target), procFD(target), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("read-only %s: %w", p, err)
	}
	return setAttrs(root, p, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, true)
}

// openExisting opens p inside root without following any symlink; (nil, nil) when it
// does not exist.
func openExisting(root *os.File, p string) (*os.File, error) {
	fd, err := unix.Openat2(int(root.Fd()), p, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS,
	})
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// loopbackUp brings up lo in a new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// pivotRoot makes rootfs the root and detaches the old one.
func pivotRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir rootfs: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}
