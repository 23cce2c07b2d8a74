package build

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
)

// DigestOptions tune Context.Digest.
type DigestOptions struct {
	// Cache remembers file contents' sums by their stat data, so an unchanged file is not
	// read again. Nil reads every file.
	Cache *DigestCache
	// Add allows ADD's URL sources; a URL adds only its text to the digest (its content
	// is not fetched). Without it a URL is a path, as for COPY.
	Add bool
	// Exclude and Parents are COPY's --exclude patterns and --parents: the digest covers
	// the files the copy takes, no more.
	Exclude []string
	Parents bool
}

// Digest sums the sources of a COPY or ADD as the copy would see them: the same
// wildcard expansion, ignore-file exclusion and symlink resolution (the code is shared),
// and the same errors (ErrNoSource, ErrNoMatch, ErrOutsideContext), so a build can
// report them before doing any work. For every file, in order: its path below the source,
// its type, permission bits (with setuid, setgid, sticky), symlink target and content sum.
// Modification times and host owners are left out: COPY sets owners itself and the cache
// key must not change when a checkout touches files. Absolute sources are taken from the
// context root, as in a Dockerfile.
func (c *Context) Digest(ctx context.Context, sources []string, opts DigestOptions) (digest.Digest, error) {
	r, err := c.sources().with(opts.Exclude, opts.Parents)
	if err != nil {
		return "", err
	}
	d := digest.SHA256.Digester()
	h := d.Hash()
	for _, src := range sources {
		if opts.Add && isURL(src) {
			fmt.Fprintf(h, "url\x00%s\x00", src)
			continue
		}
		items, err := r.resolve(ctx, src)
		if err != nil {
			return "", err
		}
		for _, it := range items {
			if err := sumSource(ctx, h, r, it, opts.Cache); err != nil {
				return "", fmt.Errorf("source %s: %w", src, err)
			}
		}
	}
	return d.Digest(), nil
}

// sumBatch is how many entries sumSource holds at once: their files are summed in
// parallel, then written in order. Holding a large context's every entry (its stat data
// and two paths each) was the largest part of a build's memory.
var sumBatch = 1024 // a variable for the tests

// sumSource writes one resolved source: its name in the destination, then its entries.
func sumSource(ctx context.Context, h hash.Hash, r sourceRoot, s source, cache *DigestCache) error {
	fmt.Fprintf(h, "source\x00%s\x00", s.name)
	entries := make([]entry, 0, sumBatch)
	flush := func() error {
		sums, err := fileSums(ctx, entries, cache)
		if err != nil {
			return err
		}
		for i, e := range entries {
			if err := sumEntry(h, e, sums[i]); err != nil {
				return err
			}
		}
		clear(entries) // no stat data kept alive by the slice's spare room
		entries = entries[:0]
		return nil
	}
	if err := r.walk(ctx, s, func(e entry) error {
		entries = append(entries, e)
		if len(entries) == sumBatch {
			return flush()
		}
		return nil
	}); err != nil {
		return err
	}
	return flush()
}

// fileSums sums the contents of the regular files among entries, several at a time (the
// first build of a large context is bound by reading and hashing).
func fileSums(ctx context.Context, entries []entry, cache *DigestCache) ([]string, error) {
	sums := make([]string, len(entries))
	errs := make([]error, len(entries))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(4, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range next {
				sums[i], errs[i] = cache.fileSum(entries[i].host, entries[i].fi)
			}
		})
	}
feed:
	for i, e := range entries {
		if !e.fi.Mode().IsRegular() {
			continue
		}
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return sums, nil
}

// sumEntry writes one entry: fields end with NUL, which no path or link target holds.
func sumEntry(h hash.Hash, e entry, sum string) error {
	kind, err := entryKind(e)
	if err != nil {
		return err
	}
	var link string
	if kind == 'l' {
		if link, err = os.Readlink(e.host); err != nil {
			return err
		}
	}
	mode := e.fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	_, err = fmt.Fprintf(h, "%c\x00%s\x00%o\x00%s\x00%s\x00", kind, e.name, uint32(mode), link, sum)
	return err
}

// racyWindow: a file changed less than this before it was read may change again with the
// same timestamps (they tick coarsely), so its sum is trusted only after a fresh read.
const racyWindow = time.Second

// DigestCache maps a file's stat data (path, size, mtime, ctime, inode, device) to the
// sha256 of its content, persisted in one file between builds. It is safe for concurrent
// use. Only the entries of files looked at since loading are saved, which bounds its size.
type DigestCache struct {
	path  string
	racy  time.Duration
	mu    sync.Mutex
	files map[string]cachedSum
	seen  map[string]bool
	dirty bool
	reads atomic.Int64 // files read to sum them
	hits  atomic.Int64 // files whose sum came from the cache
}

type statKey struct {
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"` // ns
	Ctime int64  `json:"ctime"` // ns
	Ino   uint64 `json:"ino"`
	Dev   uint64 `json:"dev"`
}

type cachedSum struct {
	statKey
	Summed int64  `json:"summed"` // when the content was read, ns
	Sum    string `json:"sha256"`
}

type cacheFile struct {
	Version int                  `json:"version"`
	Files   map[string]cachedSum `json:"files"`
}

const cacheVersion = 1

// LoadDigestCache reads the cache at path. A missing, unreadable or corrupt file gives an
// empty cache: it only saves work, so it is never a reason to fail a build.
func LoadDigestCache(path string) *DigestCache {
	c := &DigestCache{path: path, racy: racyWindow, files: map[string]cachedSum{}, seen: map[string]bool{}}
	data, err := os.ReadFile(path)
	if err != nil {
		return c
	}
	var f cacheFile
	if json.Unmarshal(data, &f) == nil && f.Version == cacheVersion && f.Files != nil {
		c.files = f.Files
	}
	return c
}

// DigestStats counts, since loading, the files summed by reading them and those whose sum
// came from the cache.
type DigestStats struct{ Reads, Hits int64 }

// Stats says how much work the cache saved.
func (c *DigestCache) Stats() DigestStats {
	if c == nil {
		return DigestStats{}
	}
	return DigestStats{Reads: c.reads.Load(), Hits: c.hits.Load()}
}

// Save writes the entries of the files looked at since loading (dropping the others)
// atomically: to a temporary file renamed over the old one.
func (c *DigestCache) Save() (retErr error) {
	if c == nil || c.path == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty && len(c.seen) == len(c.files) {
		return nil
	}
	dir := filepath.Dir(c.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save digest cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(c.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save digest cache: %w", err)
	}
	defer func() {
		if retErr != nil {
			os.Remove(tmp.Name())
		}
	}()
	err = c.writeSeen(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.path)
	}
	if err != nil {
		return fmt.Errorf("save digest cache: %w", err)
	}
	for p := range c.files {
		if !c.seen[p] {
			delete(c.files, p)
		}
	}
	c.dirty = false
	return nil
}

// writeSeen writes the cache file (a cacheFile) with the entries this build used, one at
// a time: a big context's cache never exists twice in memory.
func (c *DigestCache) writeSeen(f *os.File) error {
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, `{"version":%d,"files":{`, cacheVersion)
	first := true
	for p := range c.seen {
		e, ok := c.files[p]
		if !ok {
			continue
		}
		k, err := json.Marshal(p)
		if err != nil {
			return err
		}
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if !first {
			w.WriteByte(',')
		}
		first = false
		w.Write(k)
		w.WriteByte(':')
		w.Write(v)
	}
	w.WriteString("}}\n")
	return w.Flush()
}

// fileSum returns the hex sha256 of a regular file's content; fi is its Lstat (or Stat)
// from the walk. A nil cache reads the file.
func (c *DigestCache) fileSum(host string, fi fs.FileInfo) (string, error) {
	if c != nil {
		if key, ok := keyOf(fi); ok {
			if sum, ok := c.lookup(host, key); ok {
				return sum, nil
			}
		}
	}
	f, err := os.OpenFile(host, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	ofi, err := f.Stat() // the key is what was read, even if the file changed since the walk
	if err != nil {
		return "", err
	}
	start := time.Now()
	h := sha256.New()
	if _, err := copyData(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", host, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if c != nil {
		c.reads.Add(1)
		if key, ok := keyOf(ofi); ok {
			c.store(host, cachedSum{statKey: key, Summed: start.UnixNano(), Sum: sum})
		}
	}
	return sum, nil
}

func (c *DigestCache) lookup(host string, key statKey) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.files[host]
	if !ok || e.statKey != key || max(e.Mtime, e.Ctime) >= e.Summed-int64(c.racy) {
		return "", false
	}
	c.seen[host] = true
	c.hits.Add(1)
	return e.Sum, true
}

func (c *DigestCache) store(host string, e cachedSum) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files[host], c.seen[host], c.dirty = e, true, true
}

func keyOf(fi fs.FileInfo) (statKey, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return statKey{}, false
	}
	return statKey{
		Size:  st.Size,
		Mtime: st.Mtim.Nano(),
		Ctime: st.Ctim.Nano(),
		Ino:   st.Ino,
		Dev:   uint64(st.Dev), // narrower on some architectures
	}, true
}
