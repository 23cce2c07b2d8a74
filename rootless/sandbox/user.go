package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"

	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrUnmappedID means the user or group the command should run as has no ID in forge's
// user namespace (only the caller's own ID is mapped without /etc/subuid ranges).
var ErrUnmappedID = errors.New("ID not mapped in forge's user namespace")

// execUser is a user resolved from the container's passwd and group files.
type execUser struct {
	uid, gid uint32
	groups   []uint32 // supplementary groups
	home     string
}

// resolveUser resolves spec ("", "name", "uid", "uid:gid", "name:group") against the
// /etc/passwd and /etc/group of rootfs. Both are read inside rootfs: a symlink in the
// image resolves inside it, never to a host file. A missing file means numeric IDs only.
func resolveUser(rootfs, spec string) (execUser, error) {
	passwd, err := readInRoot(rootfs, "/etc/passwd")
	if err != nil {
		return execUser{}, err
	}
	group, err := readInRoot(rootfs, "/etc/group")
	if err != nil {
		return execUser{}, err
	}
	u, err := user.GetExecUser(spec, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return execUser{}, fmt.Errorf("user %q: %w", spec, err)
	}
	if u.Uid < 0 || u.Gid < 0 {
		return execUser{}, fmt.Errorf("user %q: negative ID", spec)
	}
	eu := execUser{uid: uint32(u.Uid), gid: uint32(u.Gid), home: u.Home}
	if eu.home == "" {
		eu.home = "/"
	}
	for _, g := range u.Sgids {
		if g >= 0 && !slices.Contains(eu.groups, uint32(g)) {
			eu.groups = append(eu.groups, uint32(g))
		}
	}
	return eu, nil
}

// readInRoot reads the regular file p inside root, resolving every symlink inside root
// (openat2 RESOLVE_IN_ROOT). A missing file gives a nil reader.
func readInRoot(root, p string) (io.Reader, error) {
	dir, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	defer dir.Close()
	fd, err := unix.Openat2(int(dir.Fd()), p, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s in rootfs: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in rootfs: not a regular file", p)
	}
	data, err := io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s in rootfs: %w", p, err)
	}
	return bytes.NewReader(data), nil
}

// fitIDs checks that the process's IDs exist in the current user namespace. Unmapped
// supplementary groups are dropped (with a warning), as are all of them when the
// namespace denies setgroups; an unmapped uid or gid is an error naming the fix.
func fitIDs(spec *specs.Spec, log *slog.Logger) error {
	u := &spec.Process.User
	if !idMapped("/proc/self/uid_map", u.UID) {
		return fmt.Errorf("user %q: uid %d: %w; running as another user needs a range for "+
			"your user in /etc/subuid and /etc/subgid, and newuidmap", u.Username, u.UID, ErrUnmappedID)
	}
	if !idMapped("/proc/self/gid_map", u.GID) {
		return fmt.Errorf("user %q: gid %d: %w; add a range for your user to /etc/subgid, "+
			"and install newgidmap", u.Username, u.GID, ErrUnmappedID)
	}
	if setgroups, err := os.ReadFile("/proc/self/setgroups"); err == nil && bytes.HasPrefix(setgroups, []byte("deny")) {
		if len(u.AdditionalGids) > 0 {
			log.Warn("setgroups is denied in this user namespace: running without supplementary groups", "groups", u.AdditionalGids)
		}
		u.AdditionalGids = nil
		return nil
	}
	kept := u.AdditionalGids[:0]
	for _, g := range u.AdditionalGids {
		if idMapped("/proc/self/gid_map", g) {
			kept = append(kept, g)
		} else {
			log.Warn("supplementary group not mapped in forge's user namespace: dropped", "gid", g)
		}
	}
	u.AdditionalGids = kept
	return nil
}

// idMapped reports whether id is inside one of the ranges of a uid_map or gid_map file.
func idMapped(mapFile string, id uint32) bool {
	maps, err := user.ParseIDMapFile(mapFile)
	if err != nil {
		return true // no user namespaces here: every ID is valid
	}
	for _, m := range maps {
		if int64(id) >= m.ID && int64(id) < m.ID+m.Count {
			return true
		}
	}
	return false
}
