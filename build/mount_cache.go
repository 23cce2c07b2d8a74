package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/sys/unix"
)

// CacheMountDir is where the directories of RUN --mount=type=cache are kept for a store
// whose graph root is graphRoot: inside forge's store, never inside an image.
func CacheMountDir(graphRoot string) string {
	return filepath.Join(graphRoot, "forge-cache-mounts")
}

// cacheDirs keeps the cache mounts of one store. Each cache (an id, and for a cache seeded
// with from, the seed) has a directory named by the SHA-256 of its key, so no id can name
// a path:
//
//	lock                   flock: shared by sharing=shared users, exclusive for locked and private
//	data/                  the cache
//	private-N.lock, -N/    more copies, for sharing=private users that found data in use
//	init.lock              held while a cache directory is created
//
// The locks are flock(2) locks on separately opened files, so they hold between
// goroutines of one build as well as between forge processes.
type cacheDirs struct {
	dir string
	log *slog.Logger
}

// cacheRequest asks for one cache.
type cacheRequest struct {
	key     string
	sharing instructions.ShareMode
	// create fills a new, empty cache directory (owner, mode, seed).
	create func(dir string) error
}

const (
	lockPoll       = 50 * time.Millisecond
	maxPrivateDirs = 256
)

// acquire returns the cache directory to mount, locked as req.sharing says, and the
// function that releases it once the step is done.
func (c cacheDirs) acquire(ctx context.Context, req cacheRequest) (string, func() error, error) {
	entry := filepath.Join(c.dir, cacheHash(req.key))
	if err := mkdirPrivate(c.dir, entry); err != nil {
		return "", nil, err
	}
	lockPath := filepath.Join(entry, "lock")
	switch req.sharing {
	case instructions.MountSharingLocked:
		f, err := lockFile(ctx, lockPath, unix.LOCK_EX, c.waitNote(req))
		if err != nil {
			return "", nil, err
		}
		return c.use(entry, "data", f, req)
	case instructions.MountSharingPrivate:
		return c.acquirePrivate(ctx, entry, req)
	default:
		f, err := lockFile(ctx, lockPath, unix.LOCK_SH, c.waitNote(req))
		if err != nil {
			return "", nil, err
		}
		return c.use(entry, "data", f, req)
	}
}

// acquirePrivate takes the cache when nobody uses it, or else a copy nobody uses, making a
// new one when all are busy.
func (c cacheDirs) acquirePrivate(ctx context.Context, entry string, req cacheRequest) (string, func() error, error) {
	for i := 0; i <= maxPrivateDirs; i++ {
		lock, name := "lock", "data"
		if i > 0 {
			lock, name = "private-"+strconv.Itoa(i)+".lock", "private-"+strconv.Itoa(i)
		}
		f, err := lockFile(ctx, filepath.Join(entry, lock), unix.LOCK_EX, nil)
		if err != nil {
			return "", nil, err
		}
		if f != nil {
			return c.use(entry, name, f, req)
		}
	}
	return "", nil, fmt.Errorf("cache mount: more than %d private copies in use", maxPrivateDirs)
}

// use makes sure the cache directory name exists, holding lock until released.
func (c cacheDirs) use(entry, name string, lock *os.File, req cacheRequest) (string, func() error, error) {
	dir := filepath.Join(entry, name)
	if err := ensureCacheDir(entry, dir, req.create); err != nil {
		lock.Close()
		return "", nil, err
	}
	return dir, lock.Close, nil
}

// waitNote is what to do when a cache is busy: tell once that the step waits.
func (c cacheDirs) waitNote(req cacheRequest) func() {
	return func() {
		if c.log != nil {
			c.log.Info("waiting for a cache mount in use by another step", "sharing", string(req.sharing))
		}
	}
}

// ensureCacheDir creates dir with create when it does not exist yet, under init.lock. A new
// cache is made in a temporary directory and renamed into place, so a failed or
// interrupted creation never leaves a half-made cache.
func ensureCacheDir(entry, dir string, create func(string) error) error {
	if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
		return nil
	}
	f, err := lockFile(context.Background(), filepath.Join(entry, "init.lock"), unix.LOCK_EX, func() {})
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := os.Lstat(dir)
	if err == nil && fi.IsDir() {
		return nil
	}
	if err == nil {
		return fmt.Errorf("cache mount %s: not a directory", dir)
	}
	tmp, err := os.MkdirTemp(entry, "new-")
	if err != nil {
		return fmt.Errorf("cache mount: %w", err)
	}
	if create != nil {
		err = create(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("cache mount: %w", err)
	}
	return nil
}

// lockFile opens (creating) path and takes a flock on it. When the lock is busy it calls
// busy once and polls until ctx ends; with busy nil it returns (nil, nil) instead.
func lockFile(ctx context.Context, path string, how int, busy func()) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache mount lock: %w", err)
	}
	told := false
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("cache mount lock: %w", err)
		}
		if busy == nil {
			f.Close()
			return nil, nil
		}
		if !told {
			busy()
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

func cacheHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// mkdirPrivate creates the cache root (mode 0700) and one entry in it.
func mkdirPrivate(root, entry string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("cache mounts: %w", err)
	}
	if err := os.Mkdir(entry, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cache mounts: %w", err)
	}
	return nil
}

// PruneCacheMounts empties the cache mounts kept in dir (see CacheMountDir). A cache that a
// running build holds is left alone and named in busy. The lock files stay, so that a
// build waiting for one keeps excluding the others.
func PruneCacheMounts(dir string) (removed int, busy []string, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("prune cache mounts: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || len(e.Name()) != sha256.Size*2 {
			continue
		}
		n, inUse, err := pruneCacheEntry(filepath.Join(dir, e.Name()))
		removed += n
		if inUse {
			busy = append(busy, e.Name())
		}
		errs = append(errs, err)
	}
	return removed, busy, errors.Join(errs...)
}

// pruneCacheEntry removes the cache directories of one entry if it can lock all of them.
func pruneCacheEntry(entry string) (removed int, busy bool, err error) {
	names, err := os.ReadDir(entry)
	if err != nil {
		return 0, false, err
	}
	var locks []*os.File
	defer func() {
		for _, f := range locks {
			f.Close()
		}
	}()
	for _, n := range names {
		if !strings.HasSuffix(n.Name(), ".lock") && n.Name() != "lock" {
			continue
		}
		f, err := lockFile(context.Background(), filepath.Join(entry, n.Name()), unix.LOCK_EX, nil)
		if err != nil {
			return 0, false, err
		}
		if f == nil {
			return 0, true, nil
		}
		locks = append(locks, f)
	}
	var errs []error
	for _, n := range names {
		if n.IsDir() {
			errs = append(errs, os.RemoveAll(filepath.Join(entry, n.Name())))
			removed++
		}
	}
	return removed, false, errors.Join(errs...)
}
