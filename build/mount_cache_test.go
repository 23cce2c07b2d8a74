package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// holdCache runs n users of one cache at once, each holding it for hold, and returns the
// most that held it at the same time and the directories they got.
func holdCache(t *testing.T, c cacheDirs, sharing instructions.ShareMode, n int, hold time.Duration) (int32, []string) {
	t.Helper()
	var inside, most atomic.Int32
	dirs := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			dir, release, err := c.acquire(context.Background(), cacheRequest{key: "id\x00apt", sharing: sharing})
			if err != nil {
				t.Error(err)
				return
			}
			now := inside.Add(1)
			for {
				m := most.Load()
				if now <= m || most.CompareAndSwap(m, now) {
					break
				}
			}
			time.Sleep(hold)
			inside.Add(-1)
			dirs[i] = dir
			if err := release(); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	return most.Load(), dirs
}

// sharing=locked: two steps on one cache never run at the same time; shared ones do, on
// the same directory; private ones do, each on its own.
func TestCacheSharing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sharing  instructions.ShareMode
		most     int32
		distinct int
	}{
		{instructions.MountSharingLocked, 1, 1},
		{instructions.MountSharingShared, 3, 1},
		{instructions.MountSharingPrivate, 3, 3},
	}
	for _, tt := range tests {
		t.Run(string(tt.sharing), func(t *testing.T) {
			t.Parallel()
			c := cacheDirs{dir: t.TempDir()}
			most, dirs := holdCache(t, c, tt.sharing, 3, 300*time.Millisecond)
			if most != tt.most {
				t.Errorf("%d users held the cache at once, want %d", most, tt.most)
			}
			distinct := map[string]bool{}
			for _, d := range dirs {
				distinct[d] = true
				if !strings.HasPrefix(d, c.dir+"/") {
					t.Errorf("cache %s outside %s", d, c.dir)
				}
			}
			if len(distinct) != tt.distinct {
				t.Errorf("directories %q, want %d distinct", dirs, tt.distinct)
			}
		})
	}
}

// A locked cache waits for a shared user, and a private one takes another copy then.
func TestCacheLockedWaitsForShared(t *testing.T) {
	t.Parallel()
	c := cacheDirs{dir: t.TempDir()}
	ctx := context.Background()
	shared, release, err := c.acquire(ctx, cacheRequest{key: "k", sharing: instructions.MountSharingShared})
	if err != nil {
		t.Fatal(err)
	}
	private, releasePrivate, err := c.acquire(ctx, cacheRequest{key: "k", sharing: instructions.MountSharingPrivate})
	if err != nil {
		t.Fatal(err)
	}
	if private == shared {
		t.Errorf("a private user got the cache in use: %s", private)
	}
	_ = releasePrivate()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, _, err := c.acquire(short, cacheRequest{key: "k", sharing: instructions.MountSharingLocked}); err == nil {
		t.Error("a locked user got the cache while a shared one held it")
	}
	_ = release()
	if _, rel, err := c.acquire(ctx, cacheRequest{key: "k", sharing: instructions.MountSharingLocked}); err != nil {
		t.Errorf("locked after release: %v", err)
	} else {
		_ = rel()
	}
}

// A cache id is never a path: `..`, absolute ids and slashes all land in one directory
// named by a hash inside the cache root.
func TestCacheIDStaysInside(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "caches")
	c := cacheDirs{dir: root}
	for _, id := range []string{"../../escape", "/etc", "a/../../b", "..", "."} {
		dir, release, err := c.acquire(context.Background(), cacheRequest{key: "id\x00" + id})
		if err != nil {
			t.Fatal(err)
		}
		_ = release()
		rel, err := filepath.Rel(root, dir)
		if err != nil || strings.HasPrefix(rel, "..") || strings.Count(rel, "/") != 1 {
			t.Errorf("id %q: cache %s is not one entry inside %s", id, dir, root)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escape")); err == nil {
		t.Error("an id made a directory outside the cache root")
	}
}

// A new cache is created once, by create, and kept between uses.
func TestCacheCreateAndReuse(t *testing.T) {
	t.Parallel()
	c := cacheDirs{dir: t.TempDir()}
	calls := 0
	req := cacheRequest{key: "k", create: func(dir string) error {
		calls++
		return os.WriteFile(filepath.Join(dir, "seed"), []byte("s"), 0o644)
	}}
	for range 2 {
		dir, release, err := c.acquire(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "seed")); err != nil {
			t.Error(err)
		}
		_ = release()
	}
	if calls != 1 {
		t.Errorf("create called %d times, want 1", calls)
	}
}

func TestPruneCacheMounts(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	c := cacheDirs{dir: root}
	ctx := context.Background()
	var dirs []string
	for _, k := range []string{"a", "b"} {
		dir, release, err := c.acquire(ctx, cacheRequest{key: k})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		_ = release()
		dirs = append(dirs, dir)
	}
	_, hold, err := c.acquire(ctx, cacheRequest{key: "b", sharing: instructions.MountSharingShared})
	if err != nil {
		t.Fatal(err)
	}
	removed, busy, err := PruneCacheMounts(root)
	if err != nil || removed != 1 || len(busy) != 1 {
		t.Errorf("prune: removed %d, busy %q, err %v; want 1 removed, 1 busy", removed, busy, err)
	}
	if _, err := os.Stat(dirs[0]); err == nil {
		t.Error("the idle cache is still there")
	}
	if _, err := os.Stat(filepath.Join(dirs[1], "f")); err != nil {
		t.Errorf("the cache in use was pruned: %v", err)
	}
	_ = hold()
	if removed, busy, err := PruneCacheMounts(root); err != nil || removed != 1 || len(busy) != 0 {
		t.Errorf("second prune: removed %d, busy %q, err %v", removed, busy, err)
	}
}
