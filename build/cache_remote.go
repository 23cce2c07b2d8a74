package build

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/forge-build/forge/storage"
)

// remoteCache shares step results through registries: --cache-to pushes each step's image
// tagged with its cache key, --cache-from looks a key up before a step runs. The key is the
// same on every machine (it chains from the base image's config digest and each step's
// resulting layers and config, see stateKey), so a fresh runner finds what another one built. A registry that fails is reported once and then left
// alone: a cache never fails a build.
type remoteCache struct {
	store  *storage.Store
	to     string
	from   []string
	ttl    time.Duration
	reg    storage.RegistryOptions
	log    *slog.Logger
	out    io.Writer
	mu     sync.Mutex
	broken map[string]bool
}

func newRemoteCache(s *storage.Store, o Options, log *slog.Logger, out io.Writer) *remoteCache {
	if o.CacheTo == "" && len(o.CacheFrom) == 0 {
		return nil
	}
	if o.CacheTTL > 0 && len(o.CacheFrom) > 0 && o.Timestamp != nil && time.Since(*o.Timestamp) > o.CacheTTL {
		log.Warn(fmt.Sprintf("--cache-ttl %s: the cache entries of a build with --timestamp are dated %s, "+
			"which is older: no --cache-from entry will be used", o.CacheTTL, o.Timestamp.Format(time.RFC3339)))
	}
	return &remoteCache{store: s, to: o.CacheTo, from: o.CacheFrom, ttl: o.CacheTTL, reg: o.Registry,
		log: log, out: out, broken: map[string]bool{}}
}

// ref is the registry reference of a cache entry: the key's hex digest is the tag.
func cacheRef(repo, key string) string {
	return "docker://" + strings.TrimPrefix(repo, "docker://") + ":" + strings.TrimPrefix(key, "sha256:")
}

// lookup pulls the entry for key from the first --cache-from registry that has it.
func (c *remoteCache) lookup(ctx context.Context, key string) (string, bool) {
	if c == nil {
		return "", false
	}
	for _, repo := range c.from {
		if c.isBroken(repo) {
			continue
		}
		id, err := c.store.PullUnnamed(ctx, cacheRef(repo, key), c.reg)
		if err != nil {
			if !strings.Contains(err.Error(), "manifest unknown") { // the registry's "no such tag"
				c.fail(repo, "--cache-from", err)
			}
			continue
		}
		if c.tooOld(ctx, id) {
			continue
		}
		if err := c.store.SetCacheKey(id, key); err != nil {
			c.fail(repo, "--cache-from", err)
			continue
		}
		fmt.Fprintf(c.out, "--> Using cache %s (from %s)\n", id, repo)
		return id, true
	}
	return "", false
}

// tooOld applies --cache-ttl to an entry by its creation time (with --timestamp: the
// fixed timestamp).
func (c *remoteCache) tooOld(ctx context.Context, id string) bool {
	if c.ttl <= 0 {
		return false
	}
	cfg, err := c.store.ImageConfig(ctx, id)
	return err != nil || cfg.Created == nil || time.Since(*cfg.Created) > c.ttl
}

// record pushes a step's image to the --cache-to registry.
func (c *remoteCache) record(ctx context.Context, id, key string) {
	if c == nil || c.to == "" || c.isBroken(c.to) {
		return
	}
	if _, err := c.store.Push(ctx, id, cacheRef(c.to, key), storage.PushOptions{Registry: c.reg}); err != nil {
		c.fail(c.to, "--cache-to", err)
	}
}

func (c *remoteCache) isBroken(repo string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken[repo]
}

// fail reports a registry's first failure and stops using it for this build.
func (c *remoteCache) fail(repo, flag string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken[repo] {
		return
	}
	c.broken[repo] = true
	c.log.Warn(fmt.Sprintf("%s %s: %v; building without it", flag, repo, err))
}
