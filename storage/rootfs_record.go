package storage

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// recordKey names the big-data item that holds what a container's root filesystem
// looked like when it was made (chroot isolation only).
const recordKey = "forge-rootfs-record"

// fileID tells whether a file is still the one recorded: its inode number, its inode
// change time (which every write, chmod, chown, rename or utime sets, and nothing can set
// back) and, where the file system has it, its birth time (a new file that got a freed
// inode number back has a new one).
type fileID struct {
	Ino   uint64
	Ctime int64 // ns
	Btime int64 // ns; 0 when unknown
}

// rootfsRecord maps each path of a root filesystem ("/etc/passwd") to its fileID.
type rootfsRecord map[string]fileID

const statxMask = unix.STATX_BASIC_STATS | unix.STATX_BTIME

func idOf(st *unix.Statx_t) fileID {
	id := fileID{Ino: st.Ino, Ctime: st.Ctime.Sec*1e9 + int64(st.Ctime.Nsec)}
	if st.Mask&unix.STATX_BTIME != 0 {
		id.Btime = st.Btime.Sec*1e9 + int64(st.Btime.Nsec)
	}
	return id
}

// recordRootFS records the fileIDs of container id's root filesystem.
func (s *Store) recordRootFS(ctx context.Context, id string) (retErr error) {
	dir, err := s.store.Mount(id, "")
	if err != nil {
		return fmt.Errorf("mount container %s: %w", id, err)
	}
	defer func() {
		if _, err := s.store.Unmount(id, false); err != nil && retErr == nil {
			retErr = fmt.Errorf("unmount container %s: %w", id, err)
		}
	}()
	rec, err := readRecord(ctx, dir)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(rec); err != nil {
		return fmt.Errorf("record root filesystem: %w", err)
	}
	if err := s.store.SetContainerBigData(id, recordKey, buf.Bytes()); err != nil {
		return fmt.Errorf("record root filesystem: %w", err)
	}
	return nil
}

// readRecord records the tree at root. It returns once the clock that stamps inode
// change times has passed every change time recorded, so that a change made afterwards
// cannot leave a file with the change time it was recorded with.
func readRecord(ctx context.Context, root string) (rootfsRecord, error) {
	rec := rootfsRecord{}
	var latest int64
	err := walkTree(ctx, root, func(p string, st *unix.Statx_t) error {
		id := idOf(st)
		rec[p] = id
		latest = max(latest, id.Ctime)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record root filesystem: %w", err)
	}
	return rec, waitPast(ctx, latest)
}

// waitPast waits until the coarse real-time clock (the one file times come from) is past
// t (ns); usually it is already.
func waitPast(ctx context.Context, t int64) error {
	for {
		var now unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &now); err != nil {
			return fmt.Errorf("read the clock: %w", err)
		}
		if now.Nano() > t {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// loadRecord reads container id's record; ok is false when it has none.
func (s *Store) loadRecord(id string) (rec rootfsRecord, ok bool, err error) {
	keys, err := s.store.ListContainerBigData(id)
	if err != nil || !slices.Contains(keys, recordKey) {
		return nil, false, err
	}
	data, err := s.store.ContainerBigData(id, recordKey)
	if err != nil {
		return nil, false, err
	}
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&rec); err != nil {
		return nil, false, fmt.Errorf("read the root filesystem's record: %w", err)
	}
	return rec, true, nil
}

// walkTree calls fn for every entry under root (root itself excluded), each directory
// before what it holds, in name order, with paths like "/etc/passwd". Only metadata is
// read, and no symlink is followed.
func walkTree(ctx context.Context, root string, fn func(p string, st *unix.Statx_t) error) error {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", root, err)
	}
	return walkDir(ctx, fd, "/", fn)
}

// walkDir walks the directory open as fd (and closes it); dir is its path in the tree.
func walkDir(ctx context.Context, fd int, dir string, fn func(p string, st *unix.Statx_t) error) error {
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	if err := ctx.Err(); err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", dir, err)
	}
	slices.Sort(names)
	for _, name := range names {
		p := path.Join(dir, name)
		var st unix.Statx_t
		if err := unix.Statx(fd, name, unix.AT_SYMLINK_NOFOLLOW, statxMask, &st); err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if err := fn(p, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", filepath.Join(dir, name), err)
		}
		if err := walkDir(ctx, sub, p, fn); err != nil {
			return err
		}
	}
	return nil
}
