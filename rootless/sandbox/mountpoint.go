package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// writeEtcFiles writes /etc/hosts, /etc/resolv.conf and /etc/hostname for the run into a
// new private directory and points the spec's mounts of them there.
func writeEtcFiles(cfg Config, spec *specs.Spec) (string, error) {
	dir, err := os.MkdirTemp("", "forge-sandbox-")
	if err != nil {
		return "", fmt.Errorf("etc files: %w", err)
	}
	network := NetworkHost
	if hasNamespace(spec, specs.NetworkNamespace) {
		network = NetworkNone
	}
	files := map[string]string{
		etcHosts:    hostsFile(spec.Hostname, network),
		etcResolv:   hostFile("/etc/resolv.conf"),
		etcHostname: spec.Hostname + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return dir, fmt.Errorf("etc files: %w", err)
		}
	}
	for i, m := range spec.Mounts {
		if _, ok := files[m.Source]; ok && m.Type == "bind" {
			spec.Mounts[i].Source = filepath.Join(dir, m.Source)
		}
	}
	return dir, nil
}

// hostsFile is /etc/hosts for the sandbox: the host's entries when it shares the host's
// network, and the sandbox's own name.
func hostsFile(hostname, network string) string {
	base := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if network == NetworkHost {
		if h := hostFile("/etc/hosts"); h != "" {
			base = strings.TrimRight(h, "\n") + "\n"
		}
	}
	return base + "127.0.1.1\t" + hostname + "\n"
}

// hostFile is the content of a host file, or "" when it cannot be read.
func hostFile(p string) string {
	data, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return string(data)
}

func hasNamespace(spec *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// makeMountpoints creates the mount targets missing from the root filesystem (those not
// inside a filesystem the sandbox mounts itself, such as /dev) and returns what it created,
// as paths inside the root, for removeMountpoints. A symlink in the image is followed
// inside the root.
func makeMountpoints(spec *specs.Spec) ([]string, error) {
	root := spec.Root.Path
	var created []string
	for i, m := range spec.Mounts {
		if insideFresh(spec.Mounts[:i], m.Destination) {
			continue
		}
		dir, err := isDirSource(m)
		if err != nil {
			return created, err
		}
		c, err := makeMountpoint(root, m.Destination, dir)
		created = append(created, c...)
		if err != nil {
			return created, err
		}
	}
	return created, nil
}

// insideFresh reports whether dest lies in a filesystem mounted by an earlier mount that
// is not a bind mount (a tmpfs, proc, ...): the child creates it there.
func insideFresh(earlier []specs.Mount, dest string) bool {
	for _, m := range earlier {
		if !isBind(m) && strings.HasPrefix(dest, strings.TrimSuffix(m.Destination, "/")+"/") {
			return true
		}
	}
	return false
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// isDirSource reports whether m mounts a directory (anything but a bind of a file).
func isDirSource(m specs.Mount) (bool, error) {
	if !isBind(m) {
		return true, nil
	}
	src, err := sourcePath(m)
	if err != nil {
		return false, fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	st, err := os.Stat(src)
	if err != nil {
		return false, fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	return st.IsDir(), nil
}

// makeMountpoint creates dest (a directory, or an empty file) and its missing parents
// inside root, returning what it created, parents first.
func makeMountpoint(root, dest string, dir bool) ([]string, error) {
	full, err := securejoin.SecureJoin(root, dest)
	if err != nil {
		return nil, fmt.Errorf("mount point %s: %w", dest, err)
	}
	rel := strings.TrimPrefix(full, root)
	if rel == "" || rel == "/" {
		return nil, nil
	}
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	rootDir, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	defer rootDir.Close()
	var created []string
	cur := ""
	for i, part := range parts {
		cur += "/" + part
		if _, err := os.Lstat(filepath.Join(root, cur)); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return created, fmt.Errorf("mount point %s: %w", dest, err)
		}
		if err := createInRoot(rootDir, cur, dir || i < len(parts)-1); err != nil {
			return created, fmt.Errorf("mount point %s: %w", dest, err)
		}
		created = append(created, cur)
	}
	return created, nil
}

// createInRoot creates p inside root (parents included), as a directory or an empty file.
// Every path is resolved inside root.
func createInRoot(root *os.File, p string, dir bool) error {
	if dir {
		h, err := pathrs.MkdirAllHandle(root, p, 0o755)
		if err != nil {
			return err
		}
		return h.Close()
	}
	h, err := pathrs.MkdirAllHandle(root, path.Dir(p), 0o755)
	if err != nil {
		return err
	}
	defer h.Close()
	fd, err := unix.Openat(int(h.Fd()), path.Base(p), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// removeMountpoints removes, deepest first, the mount points makeMountpoints created, so
// that none is committed into an image: a directory only when empty, a file only when it
// is still an empty regular file.
func removeMountpoints(root string, created []string) error {
	var errs []error
	for i := len(created) - 1; i >= 0; i-- {
		if err := removeMountpoint(root, created[i]); err != nil {
			errs = append(errs, fmt.Errorf("remove mount point %s: %w", created[i], err))
		}
	}
	return errors.Join(errs...)
}

// removeMountpoint removes one created mount point. The command may have replaced what
// Run created, with a symlink for instance: no symlink is followed on the way (one found
// means the path is no longer what Run made, and it is left alone), and nothing outside
// root is reached.
func removeMountpoint(root, p string) error {
	rootDir, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer rootDir.Close()
	fd, err := unix.Openat2(int(rootDir.Fd()), path.Dir(p), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EXDEV) {
		return nil
	}
	if err != nil {
		return err
	}
	parent := os.NewFile(uintptr(fd), path.Dir(p))
	defer parent.Close()
	dirfd, base := int(parent.Fd()), path.Base(p)
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		err = unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR)
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			return nil // the command put something there: it stays
		}
	case st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == 0:
		err = unix.Unlinkat(dirfd, base, 0)
	}
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
