package storage

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"go.podman.io/storage/pkg/archive"
	"golang.org/x/sys/unix"
)

// opaqueName is the change path that ExportChanges writes as a directory's opaque
// whiteout (".wh..wh..opq").
const opaqueName = ".wh..opq"

// TrackedChanges are a container's changes found by comparing its root filesystem with
// the record made when the container was (chroot isolation). Close releases the root
// filesystem.
type TrackedChanges struct {
	Changes []archive.Change
	rootfs  string
	release func() error
}

// Tar streams the changes as an uncompressed layer: changed and new files as they are
// now, deletions as whiteouts, replaced directories as opaque ones.
func (t *TrackedChanges) Tar() (io.ReadCloser, error) {
	rc, err := archive.ExportChanges(t.rootfs, t.Changes, nil, nil)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		err := opaqueLikeOverlay(rc, pw)
		rc.Close()
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// opaqueLikeOverlay copies a layer tar, giving each opaque whiteout the permissions and
// owner of its directory, as the overlay driver's diff writes it (ExportChanges writes
// mode 0 and no owner): the same change makes the same layer in both.
func opaqueLikeOverlay(r io.Reader, w io.Writer) error {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	dirs := map[string]*tar.Header{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if hdr.Typeflag == tar.TypeDir {
			dirs[name] = hdr
		}
		if d := dirs[path.Dir(name)]; d != nil && path.Base(name) == archive.WhiteoutOpaqueDir {
			hdr.Mode = d.Mode & 0o777
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = d.Uid, d.Gid, d.Uname, d.Gname
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// Close releases the container's root filesystem.
func (t *TrackedChanges) Close() error { return t.release() }

// TrackedChanges compares c's root filesystem with the record made when c was created.
// It returns nil (and no error) for a container without a record: its changes are
// then its layer's diff in the store.
func (s *Store) TrackedChanges(ctx context.Context, c *Container) (_ *TrackedChanges, retErr error) {
	before, ok, err := s.loadRecord(c.ID)
	if err != nil || !ok {
		return nil, err
	}
	var undo []func() error
	release := func() error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, release())
		}
	}()
	rootfs, err := s.Mount(c)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() error { return s.Unmount(c, false) })
	parent := ""
	if c.ParentLayer != "" {
		if parent, err = s.store.Mount(c.ParentLayer, ""); err != nil {
			return nil, fmt.Errorf("mount layer %s: %w", c.ParentLayer, err)
		}
		undo = append(undo, func() error {
			if _, err := s.store.Unmount(c.ParentLayer, false); err != nil {
				return fmt.Errorf("unmount layer %s: %w", c.ParentLayer, err)
			}
			return nil
		})
	}
	changes, err := diffTree(ctx, rootfs, parent, before)
	if err != nil {
		return nil, fmt.Errorf("compare root filesystem of %s: %w", c.Name, err)
	}
	return &TrackedChanges{Changes: changes, rootfs: rootfs, release: release}, nil
}

// diffTree lists the changes of the tree at root since before was recorded. An entry
// whose fileID is unchanged is unchanged, without more reading. One whose inode changed
// is compared with the same path under parent (the tree before was recorded from: ""
// for none) by type, mode, owner, size, modification time, link target, device and
// extended attributes, and only when all of those agree, by content. A directory that is
// a new inode is a replaced one: opaque, with everything in it. A path that is gone
// gives a whiteout, unless its parent directory went or was replaced too.
func diffTree(ctx context.Context, root, parent string, before rootfsRecord) ([]archive.Change, error) {
	var changes []archive.Change
	now := map[string]bool{}   // paths present now that are directories
	whole := map[string]bool{} // directories whose whole content goes into the layer
	links := map[uint64][]string{}
	add := func(p string, kind archive.ChangeType) {
		changes = append(changes, archive.Change{Path: p, Kind: kind})
	}
	err := walkTree(ctx, root, func(p string, st *unix.Statx_t) error {
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		now[p] = isDir
		if !isDir && st.Nlink > 1 {
			links[st.Ino] = append(links[st.Ino], p)
		}
		old, known := before[p]
		switch {
		case whole[path.Dir(p)]:
			add(p, archive.ChangeAdd)
			whole[p] = isDir
		case !known:
			add(p, archive.ChangeAdd)
		case old == idOf(st):
		case isDir && replaced(old, idOf(st)):
			add(p, archive.ChangeModify)
			add(path.Join(p, opaqueName), archive.ChangeDelete)
			whole[p] = true
		default:
			same, err := sameAsBefore(root, parent, p, st)
			if err != nil {
				return err
			}
			if !same {
				add(p, archive.ChangeModify)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	changes = withHardLinks(changes, links)
	for p := range before {
		if _, ok := now[p]; ok {
			continue
		}
		dir := path.Dir(p)
		if dir == "/" || (now[dir] && !whole[dir]) {
			add(p, archive.ChangeDelete)
		}
	}
	changes = withParents(changes)
	slices.SortFunc(changes, func(a, b archive.Change) int { return strings.Compare(a.Path, b.Path) })
	return changes, nil
}

// withParents adds the directories that hold a change, as they are now: overlay's upper
// directory has them (copied up to hold the change), so the rootless layer lists them too.
func withParents(changes []archive.Change) []archive.Change {
	in := map[string]bool{}
	for _, c := range changes {
		in[c.Path] = true
	}
	for _, c := range changes {
		for dir := path.Dir(c.Path); dir != "/" && !in[dir]; dir = path.Dir(dir) {
			changes = append(changes, archive.Change{Path: dir, Kind: archive.ChangeModify})
			in[dir] = true
		}
	}
	return changes
}

// withHardLinks adds the unchanged names of files that a changed name is a hard link to,
// so that the layer links them as overlay's copy-up does (a new link to an old file
// makes the old name part of the layer too).
func withHardLinks(changes []archive.Change, links map[uint64][]string) []archive.Change {
	in := map[string]bool{}
	for _, c := range changes {
		in[c.Path] = true
	}
	for _, paths := range links {
		if !slices.ContainsFunc(paths, func(p string) bool { return in[p] }) {
			continue
		}
		for _, p := range paths {
			if !in[p] {
				changes = append(changes, archive.Change{Path: p, Kind: archive.ChangeModify})
				in[p] = true
			}
		}
	}
	return changes
}

// replaced reports whether a directory is a new inode: another number, or the same
// number born again.
func replaced(old, cur fileID) bool {
	return old.Ino != cur.Ino || (old.Btime != 0 && cur.Btime != 0 && old.Btime != cur.Btime)
}

// sameAsBefore compares the entry p of root (stat st) with p in parent.
func sameAsBefore(root, parent, p string, st *unix.Statx_t) (bool, error) {
	if parent == "" {
		return false, nil
	}
	dir, err := securejoin.SecureJoin(parent, path.Dir(p))
	if err != nil {
		return false, err
	}
	oldPath := path.Join(dir, path.Base(p))
	var old unix.Stat_t
	if err := unix.Lstat(oldPath, &old); err != nil {
		return false, nil // not there before: changed
	}
	curPath := path.Join(root, p)
	if !sameMetadata(&old, st) {
		return false, nil
	}
	if ok, err := sameXattrs(oldPath, curPath); err != nil || !ok {
		return false, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return sameContent(oldPath, curPath)
	case unix.S_IFLNK:
		a, errA := os.Readlink(oldPath)
		b, errB := os.Readlink(curPath)
		return errA == nil && errB == nil && a == b, nil
	}
	return true, nil
}

// sameMetadata compares what a layer records of a file, content aside.
func sameMetadata(old *unix.Stat_t, st *unix.Statx_t) bool {
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	return old.Mode == uint32(st.Mode) && old.Uid == st.Uid && old.Gid == st.Gid &&
		(isDir || old.Size == int64(st.Size)) &&
		old.Mtim.Sec == st.Mtime.Sec && old.Mtim.Nsec == int64(st.Mtime.Nsec) &&
		old.Rdev == unix.Mkdev(st.Rdev_major, st.Rdev_minor)
}

// sameXattrs compares the extended attributes of two files (no symlink followed).
func sameXattrs(a, b string) (bool, error) {
	xa, err := xattrs(a)
	if err != nil {
		return false, err
	}
	xb, err := xattrs(b)
	if err != nil {
		return false, err
	}
	if len(xa) != len(xb) {
		return false, nil
	}
	for k, v := range xa {
		if w, ok := xb[k]; !ok || !bytes.Equal(v, w) {
			return false, nil
		}
	}
	return true, nil
}

func xattrs(p string) (map[string][]byte, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			err = nil
		}
		return nil, err
	}
	buf := make([]byte, size)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	out := map[string][]byte{}
	for _, name := range bytes.Split(buf[:n], []byte{0}) {
		if len(name) == 0 {
			continue
		}
		v, err := lgetxattr(p, string(name))
		if err != nil {
			return nil, fmt.Errorf("read xattr %s of %s: %w", name, p, err)
		}
		out[string(name)] = v
	}
	return out, nil
}

// lgetxattr reads one extended attribute of any size (a value can grow between asking
// for its size and reading it: then it asks again).
func lgetxattr(p, name string) ([]byte, error) {
	for {
		size, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, err
		}
		v := make([]byte, size)
		n, err := unix.Lgetxattr(p, name, v)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return v[:n], nil
	}
}

// sameContent compares two regular files byte for byte.
func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	bufA, bufB := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		n, errA := io.ReadFull(fa, bufA)
		m, errB := io.ReadFull(fb, bufB)
		if n != m || !bytes.Equal(bufA[:n], bufB[:m]) {
			return false, nil
		}
		doneA := errors.Is(errA, io.EOF) || errors.Is(errA, io.ErrUnexpectedEOF)
		doneB := errors.Is(errB, io.EOF) || errors.Is(errB, io.ErrUnexpectedEOF)
		switch {
		case doneA && doneB:
			return true, nil
		case errA != nil && !doneA:
			return false, errA
		case errB != nil && !doneB:
			return false, errB
		case doneA != doneB:
			return false, nil
		}
	}
}
