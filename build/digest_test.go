package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func digestFixture(t *testing.T) *Context {
	t.Helper()
	dir := t.TempDir()
	ctxTree(t, dir, map[string]string{
		".dockerignore":   "**/*.log\nbuild\n",
		"app/main.go":     "package main",
		"app/lib/util.go": "package lib",
		"app/link":        "->main.go",
		"app/debug.log":   "noise",
		"build/out":       "binary",
		"README":          "readme",
	})
	c, err := OpenContext(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustDigest(t *testing.T, c *Context, cache *DigestCache, sources ...string) string {
	t.Helper()
	d, err := c.Digest(context.Background(), sources, DigestOptions{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestDigestChanges(t *testing.T) {
	t.Parallel()
	at := func(c *Context, p string) string { return filepath.Join(c.Dir, filepath.FromSlash(p)) }
	check := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		change func(t *testing.T, c *Context)
		same   bool
	}{
		{"nothing", func(*testing.T, *Context) {}, true},
		{"touch", func(t *testing.T, c *Context) {
			past := time.Now().Add(-time.Hour)
			check(t, os.Chtimes(at(c, "app/main.go"), past, past))
			check(t, os.Chtimes(at(c, "app/lib"), past, past))
		}, true},
		{"host owner", func(t *testing.T, c *Context) {
			// Another owner needs root; unprivileged, chown to ourselves changes nothing
			// and the test still holds.
			uid, gid := os.Getuid(), os.Getgid()
			if uid == 0 {
				uid, gid = 1234, 1234
			}
			check(t, os.Lchown(at(c, "app/main.go"), uid, gid))
			check(t, os.Lchown(at(c, "app/link"), uid, gid))
		}, true},
		{"excluded file changed", func(t *testing.T, c *Context) {
			check(t, os.WriteFile(at(c, "app/debug.log"), []byte("more noise"), 0o644))
		}, true},
		{"excluded file added", func(t *testing.T, c *Context) {
			check(t, os.WriteFile(at(c, "app/new.log"), nil, 0o644))
		}, true},
		{"content", func(t *testing.T, c *Context) {
			check(t, os.WriteFile(at(c, "app/main.go"), []byte("package lib!"), 0o644))
		}, false},
		{"same size, mtime put back", func(t *testing.T, c *Context) {
			fi, err := os.Stat(at(c, "app/main.go"))
			check(t, err)
			check(t, os.WriteFile(at(c, "app/main.go"), []byte("package mayn"), 0o644))
			check(t, os.Chtimes(at(c, "app/main.go"), fi.ModTime(), fi.ModTime()))
		}, false},
		{"mode", func(t *testing.T, c *Context) { check(t, os.Chmod(at(c, "app/main.go"), 0o755)) }, false},
		{"directory mode", func(t *testing.T, c *Context) { check(t, os.Chmod(at(c, "app/lib"), 0o700)) }, false},
		{"rename", func(t *testing.T, c *Context) {
			check(t, os.Rename(at(c, "app/lib/util.go"), at(c, "app/lib/utils.go")))
		}, false},
		{"file added", func(t *testing.T, c *Context) {
			check(t, os.WriteFile(at(c, "app/lib/new.go"), nil, 0o644))
		}, false},
		{"empty directory added", func(t *testing.T, c *Context) { check(t, os.Mkdir(at(c, "app/empty"), 0o755)) }, false},
		{"symlink target", func(t *testing.T, c *Context) {
			check(t, os.Remove(at(c, "app/link")))
			check(t, os.Symlink("lib/util.go", at(c, "app/link")))
		}, false},
		{"no longer excluded", func(t *testing.T, c *Context) {
			check(t, os.WriteFile(at(c, ".dockerignore"), []byte("build\n"), 0o644))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, cached := range []bool{false, true} {
				c := digestFixture(t)
				var cache *DigestCache
				if cached {
					cache = LoadDigestCache(filepath.Join(t.TempDir(), "cache.json"))
					cache.racy = 0
				}
				before := mustDigest(t, c, cache, "app", "README")
				tt.change(t, c)
				c, err := OpenContext(c.Dir, "") // the ignore file may have changed
				check(t, err)
				after := mustDigest(t, c, cache, "app", "README")
				if (before == after) != tt.same {
					t.Errorf("cached=%v: digest before %s, after %s; want same=%v", cached, before, after, tt.same)
				}
			}
		})
	}
}

func TestDigestSourcesMatter(t *testing.T) {
	t.Parallel()
	c := digestFixture(t)
	seen := map[string][]string{}
	for _, srcs := range [][]string{
		{"app"}, {"app/"}, {"/app"}, {"app/*"}, {"app", "README"}, {"README", "app"}, {"README"}, {"app/main.go"}, {"app/link"},
	} {
		d := mustDigest(t, c, nil, srcs...)
		seen[d] = append(seen[d], strings.Join(srcs, " "))
	}
	// app, app/ and /app name the same directory; app/link is followed to main.go but is
	// named link in the destination.
	want := map[string]bool{"app app/ /app": true}
	for _, group := range seen {
		if len(group) > 1 && !want[strings.Join(group, " ")] {
			t.Errorf("these sources give the same digest: %q", group)
		}
	}
	if len(seen) != 7 {
		t.Errorf("%d distinct digests, want 7: %v", len(seen), seen)
	}
}

func TestDigestErrors(t *testing.T) {
	t.Parallel()
	c := contextFixture(t)
	for _, tt := range []struct {
		src string
		err error
	}{
		{"missing", ErrNoSource},
		{"a.log", ErrNoSource},
		{"*.nothing", ErrNoMatch},
		{"../x", ErrOutsideContext},
		{"escape-link", ErrNoSource},
		{"hostdir/passwd", ErrNoSource},
	} {
		if _, err := c.Digest(context.Background(), []string{"app.txt", tt.src}, DigestOptions{}); !errors.Is(err, tt.err) {
			t.Errorf("Digest(%q) = %v, want %v", tt.src, err, tt.err)
		}
	}
	// A URL is a path for COPY, and its text for ADD.
	if _, err := c.Digest(context.Background(), []string{"https://example.com/x"}, DigestOptions{}); !errors.Is(err, ErrNoSource) {
		t.Errorf("COPY of a URL: %v, want ErrNoSource", err)
	}
	d1, err1 := c.Digest(context.Background(), []string{"https://example.com/x"}, DigestOptions{Add: true})
	d2, err2 := c.Digest(context.Background(), []string{"https://example.com/y"}, DigestOptions{Add: true})
	if err1 != nil || err2 != nil || d1 == d2 {
		t.Errorf("ADD of URLs: %s %v, %s %v", d1, err1, d2, err2)
	}
}

func TestDigestCacheSkipsUnchangedFiles(t *testing.T) {
	t.Parallel()
	c := digestFixture(t)
	path := filepath.Join(t.TempDir(), "sub", "cache.json")
	cache := LoadDigestCache(path)
	cache.racy = 0
	first := mustDigest(t, c, cache, "app", "README")
	if s := cache.Stats(); s.Reads != 3 || s.Hits != 0 { // main.go, util.go, README
		t.Fatalf("first run: %+v, want 3 reads", s)
	}
	if second := mustDigest(t, c, cache, "app", "README"); second != first {
		t.Fatalf("digest changed: %s, %s", first, second)
	}
	if s := cache.Stats(); s.Reads != 3 || s.Hits != 3 {
		t.Fatalf("second run: %+v, want no new read", s)
	}
	if err := cache.Save(); err != nil {
		t.Fatal(err)
	}

	// A later build loads the file: nothing is read but the changed file.
	if err := os.WriteFile(filepath.Join(c.Dir, "README"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	again := LoadDigestCache(path)
	again.racy = 0
	if d := mustDigest(t, c, again, "app", "README"); d == first {
		t.Error("a changed file did not change the digest")
	}
	if s := again.Stats(); s.Reads != 1 || s.Hits != 2 {
		t.Errorf("after reload: %+v, want 1 read and 2 hits", s)
	}
}

func TestDigestCacheRacyFiles(t *testing.T) {
	t.Parallel()
	c := digestFixture(t)
	cache := LoadDigestCache(filepath.Join(t.TempDir(), "cache.json"))
	cache.racy = time.Hour // every file is too fresh to trust
	mustDigest(t, c, cache, "app")
	mustDigest(t, c, cache, "app")
	if s := cache.Stats(); s.Reads != 4 || s.Hits != 0 {
		t.Errorf("%+v: want every file read twice", s)
	}
}

func TestDigestCacheFile(t *testing.T) {
	t.Parallel()
	c := digestFixture(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "cache.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	cache := LoadDigestCache(path) // corrupt: ignored
	cache.racy = 0
	mustDigest(t, c, cache, "app", "README")
	if err := cache.Save(); err != nil {
		t.Fatal(err)
	}
	if n := cacheEntries(t, path); n != 3 {
		t.Errorf("%d entries saved, want 3", n)
	}

	// A run that looks only at README keeps only README's entry.
	cache = LoadDigestCache(path)
	cache.racy = 0
	mustDigest(t, c, cache, "README")
	if err := cache.Save(); err != nil {
		t.Fatal(err)
	}
	if n := cacheEntries(t, path); n != 1 {
		t.Errorf("%d entries saved, want 1", n)
	}
	if s := cache.Stats(); s.Reads != 0 {
		t.Errorf("%+v: README was read again", s)
	}
	names, err := os.ReadDir(dir)
	if err != nil || len(names) != 1 {
		t.Errorf("files left next to the cache: %v %v", names, err)
	}

	// Unwritable place: Save says so.
	bad := LoadDigestCache(filepath.Join(path, "under-a-file"))
	mustDigest(t, c, bad, "README")
	if err := bad.Save(); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Save under a file: %v", err)
	}
}

func cacheEntries(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f cacheFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	return len(f.Files)
}

// TestDigestBatches: a source summed in several batches has the digest it has in one,
// and every batch counts (a changed file in the first or the last one changes it).
func TestDigestBatches(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	for i := range 10 {
		files[fmt.Sprintf("d/f%02d", i)] = fmt.Sprintf("content %d", i)
	}
	ctxTree(t, dir, files)
	c, err := OpenContext(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer func(n int) { sumBatch = n }(sumBatch)
	whole := mustDigest(t, c, nil, "d")
	sumBatch = 3
	if got := mustDigest(t, c, nil, "d"); got != whole {
		t.Errorf("summed 3 entries at a time: %s, in one batch: %s", got, whole)
	}
	for _, name := range []string{"d/f00", "d/f09"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("changed"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := mustDigest(t, c, nil, "d"); got == whole {
			t.Errorf("changing %s left the digest as it was", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
