package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"

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
	// pushed are the entries --cache-to pushed, per stage, in build order: linked when
	// the build ends (see link).
	pushed map[int][]storage.CacheLink
	// pushes are the steps record queued, pushed in order by one goroutine while the build
	// goes on; pushCtx is the build's context (not a stage's, which ends with the stage).
	// qmu guards pushes and queueClosed; the pusher never takes it, so record may wait
	// on a full queue holding it.
	qmu         sync.Mutex
	pushes      chan pushJob
	queueClosed bool
	pushing     sync.WaitGroup
	pushCtx     context.Context
	// layers are the layers the --cache-to repository is known to have: those pushed so
	// far (each entry holds those of the one before) and those of the entries found there
	// with --cache-from; later pushes reuse them without asking the registry.
	layers *storage.PushedLayers
	// chains are the entries the --cache-from registries' entries listed as following
	// them, by registry, read ahead in the background.
	chains map[string]*cacheChain
	slots  chan struct{} // one per read ahead running
	fetch  sync.WaitGroup
	// fetchCtx is the reads' context, which close cancels: the build's own cancellation
	// reaches the reads through close.
	fetchCtx context.Context
	cancel   context.CancelFunc
	closed   bool // close ran: no more reads start
}

// pushJob is a step's image for --cache-to.
type pushJob struct {
	stage   int
	id, key string
}

// cacheChain is what one --cache-from registry's entries listed: the following entries,
// each read through one registry client as the build comes near it.
type cacheChain struct {
	repo    *storage.RemoteRepo
	entries map[string]*chainEntry // by key
}

// chainEntry is one listed entry; once started, done closes when it has been read (ri)
// or not (err).
type chainEntry struct {
	digest  digest.Digest
	started bool
	done    chan struct{}
	ri      *storage.RemoteImage
	err     error
}

const (
	// readAhead is how many listed entries are read at once.
	readAhead = 4
	// readWindow is how many of the entries an entry lists are read ahead: a build that
	// stops matching the list (a changed step changes every later key) wastes no more.
	readWindow = 8
)

func newRemoteCache(ctx context.Context, s *storage.Store, o Options, log *slog.Logger, out io.Writer) *remoteCache {
	if o.CacheTo == "" && len(o.CacheFrom) == 0 {
		return nil
	}
	if o.CacheTTL > 0 && len(o.CacheFrom) > 0 && o.Timestamp != nil && time.Since(*o.Timestamp) > o.CacheTTL {
		log.Warn(fmt.Sprintf("--cache-ttl %s: the cache entries of a build with --timestamp are dated %s, "+
			"which is older: no --cache-from entry will be used", o.CacheTTL, o.Timestamp.Format(time.RFC3339)))
	}
	// The cache only saves work: a registry that fails is dropped for the rest of the
	// build (see fail) rather than retried with backoff while the build waits.
	reg := o.Registry
	reg.Retry = 0
	c := &remoteCache{store: s, to: o.CacheTo, from: o.CacheFrom, ttl: o.CacheTTL, reg: reg,
		log: log, out: out, broken: map[string]bool{}, pushed: map[int][]storage.CacheLink{},
		chains: map[string]*cacheChain{}, slots: make(chan struct{}, readAhead), pushCtx: ctx}
	if o.CacheTo != "" {
		c.layers = storage.NewPushedLayers(o.CacheTo)
	}
	c.fetchCtx, c.cancel = context.WithCancel(context.Background())
	return c
}

// cacheName is the registry name of a cache entry: the key's hex digest is the tag.
func cacheName(repo, key string) string {
	return strings.TrimPrefix(repo, "docker://") + ":" + cacheTag(key)
}

// cacheTag is the tag of key's entries.
func cacheTag(key string) string { return strings.TrimPrefix(key, "sha256:") }

// lookup finds the entry for key in the first --cache-from registry that has it. Only
// its manifest and configuration are read: the build goes on from there (the next key
// chains on the configuration), and the layers are pulled once, by pull, for the image
// a step or the stage's result needs. An entry that an earlier one listed as following
// it is read by digest, ahead of time (see follow); others by their key.
func (c *remoteCache) lookup(ctx context.Context, key string) (*remoteEntry, bool) {
	if c == nil {
		return nil, false
	}
	for _, repo := range c.from {
		if c.isBroken(repo) {
			continue
		}
		ri, err := c.listed(ctx, repo, key)
		if err == nil && (ri == nil || checkEntry(ri) != nil || c.expired(ri)) {
			// Not listed, or what the list named is no use now (the tag may hold a
			// newer entry than the digest listed): look the key up.
			ri, err = c.store.FetchRemote(ctx, cacheName(repo, key), c.reg)
		}
		if err != nil && ctx.Err() != nil {
			return nil, false // the build is stopping; the registry did nothing wrong
		}
		if err != nil {
			if !errors.Is(err, storage.ErrNoRemoteImage) {
				c.fail(repo, "--cache-from", err)
			}
			continue
		}
		if err := checkEntry(ri); err != nil {
			c.fail(repo, "--cache-from", fmt.Errorf("%s: %w", ri.Name, err))
			continue
		}
		c.follow(ctx, repo, ri)
		if c.expired(ri) {
			continue
		}
		c.layers.NoteRemote(ri) // the --cache-to pushes after it need not ask about its layers
		fmt.Fprintf(c.out, "--> Using cache %s (from %s)\n", ri.ID, repo)
		return &remoteEntry{RemoteImage: ri, repo: repo, key: key}, true
	}
	return nil, false
}

// expired reports whether --cache-ttl rules an entry out.
func (c *remoteCache) expired(ri *storage.RemoteImage) bool {
	return c.ttl > 0 && (ri.Config.Created == nil || time.Since(*ri.Config.Created) > c.ttl)
}

// listed returns the entry for key that an entry of repo listed, once read; nil and no
// error when none listed it, or reading it failed (the key is then looked up itself).
func (c *remoteCache) listed(ctx context.Context, repo, key string) (*storage.RemoteImage, error) {
	c.mu.Lock()
	var e *chainEntry
	if ch := c.chains[repo]; ch != nil {
		if e = ch.entries[cacheTag(key)]; e != nil {
			c.startReads(ch, []*chainEntry{e}) // started already unless the build skipped ahead
			if !e.started {
				e = nil // the build is over
			}
		}
	}
	c.mu.Unlock()
	if e == nil {
		return nil, nil
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if e.err != nil {
		c.log.Debug("listed cache entry not read", "key", key, "err", e.err)
		return nil, nil
	}
	return e.ri, nil
}

// follow notes the entries ri lists as following it and starts reading the first
// readWindow of them (the entry in use slides the window along), through one registry client for repo, so that the steps after this
// one find theirs without a lookup each. A repository whose client cannot be made is not
// tried again.
func (c *remoteCache) follow(ctx context.Context, repo string, ri *storage.RemoteImage) {
	if len(ri.Next) == 0 {
		return
	}
	c.mu.Lock()
	ch, closed := c.chains[repo], c.closed
	c.mu.Unlock()
	if ch == nil && !closed {
		r, err := c.store.OpenRemoteRepo(ctx, ri) // not under the lock: it waits on the registry
		if err != nil {
			c.log.Debug("cache entries not read ahead", "repo", repo, "err", err)
		}
		c.mu.Lock()
		if ch = c.chains[repo]; ch == nil && !c.closed {
			ch = &cacheChain{repo: r, entries: map[string]*chainEntry{}}
			c.chains[repo] = ch
		} else if r != nil {
			defer r.Close() // another stage made one first, or the build is over
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch == nil || ch.repo == nil || c.closed {
		return
	}
	window := make([]*chainEntry, 0, readWindow)
	for i, l := range ri.Next {
		e := ch.entries[l.Key]
		if e == nil {
			e = &chainEntry{digest: l.Digest, done: make(chan struct{})}
			ch.entries[l.Key] = e
		}
		if i < readWindow {
			window = append(window, e)
		}
	}
	c.startReads(ch, window)
}

// startReads starts reading those of entries whose reads have not started, readAhead at
// a time over all of them; within one call, in the order given. c.mu is held.
func (c *remoteCache) startReads(ch *cacheChain, entries []*chainEntry) {
	if c.closed || ch.repo == nil {
		return
	}
	var todo []*chainEntry
	for _, e := range entries {
		if !e.started {
			e.started = true
			todo = append(todo, e)
		}
	}
	if len(todo) == 0 {
		return
	}
	fetchCtx, repoClient := c.fetchCtx, ch.repo
	c.fetch.Go(func() {
		var reads sync.WaitGroup
		for _, e := range todo {
			c.slots <- struct{}{}
			reads.Go(func() {
				defer func() { <-c.slots }()
				defer close(e.done)
				e.ri, e.err = repoClient.Fetch(fetchCtx, e.digest)
			})
		}
		reads.Wait()
	})
}

// checkEntry refuses an entry forge cannot have written: every image a build commits has
// a history, with an entry for each layer the build added (a base image may have none
// for its own).
func checkEntry(ri *storage.RemoteImage) error {
	n := 0
	for _, h := range ri.Config.History {
		if !h.EmptyLayer {
			n++
		}
	}
	if len(ri.Config.History) == 0 || n > len(ri.Config.RootFS.DiffIDs) {
		return fmt.Errorf("not a cache entry: its history names %d layers and its config %d", n, len(ri.Config.RootFS.DiffIDs))
	}
	return nil
}

// remoteEntry is a cache entry found in a --cache-from registry and not yet pulled.
type remoteEntry struct {
	*storage.RemoteImage
	repo string       // the --cache-from registry that has it
	key  string       // the step's cache key
	prev *remoteEntry // the entry the stage went on from before this one, if not pulled
}

// pull brings an entry found by lookup into the store and records it under its key,
// and so the entries the stage went through before it (their layers come with it): the
// local cache then knows every step, as after a build that ran them.
func (c *remoteCache) pull(ctx context.Context, e *remoteEntry) (string, error) {
	id, err := c.store.PullRemote(ctx, e.RemoteImage)
	if err == nil {
		err = c.store.SetCacheKey(id, e.key)
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		return "", fmt.Errorf("pull %s: %w", e.Name, err)
	}
	for p := e.prev; p != nil; p = p.prev {
		if _, err := c.store.RecordRemote(p.RemoteImage, p.key); err != nil {
			c.log.Debug("cache entry not recorded locally", "entry", p.Name, "err", err)
		}
	}
	return id, nil
}

// record queues a step's image of stage for the --cache-to registry. The pushes run one
// at a time, in build order, while the build goes on: a push takes longer than a small
// step, and the two use different resources (the registry and compression against the
// step's process and the store). close waits for them.
func (c *remoteCache) record(stage int, id, key string) {
	if c == nil || c.to == "" || c.isBroken(c.to) {
		return
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.queueClosed {
		return
	}
	if c.pushes == nil {
		c.pushes = make(chan pushJob, 64)
		c.pushing.Add(1)
		go c.pushAll()
	}
	c.pushes <- pushJob{stage: stage, id: id, key: key}
}

// pushAll pushes the queued images, in order, until close closes the queue.
func (c *remoteCache) pushAll() {
	defer c.pushing.Done()
	for j := range c.pushes {
		if c.isBroken(c.to) || c.pushCtx.Err() != nil {
			continue
		}
		d, err := c.store.Push(c.pushCtx, j.id, "docker://"+cacheName(c.to, j.key), storage.PushOptions{Registry: c.reg, Pushed: c.layers})
		if err != nil {
			if c.pushCtx.Err() == nil {
				c.fail(c.to, "--cache-to", err)
			}
			continue
		}
		if d != "" {
			c.mu.Lock()
			c.pushed[j.stage] = append(c.pushed[j.stage], storage.CacheLink{Key: cacheTag(j.key), Digest: d})
			c.mu.Unlock()
		}
	}
}

// link writes into each entry --cache-to pushed the list of the entries its stage pushed
// after it (storage.LinkCacheEntries), once the build has succeeded.
func (c *remoteCache) link(ctx context.Context) {
	if c == nil || c.to == "" || c.isBroken(c.to) || ctx.Err() != nil {
		return
	}
	for _, entries := range c.pushed {
		if err := c.store.LinkCacheEntries(ctx, c.to, entries, c.reg); err != nil {
			// The entries are pushed and usable; only the lists are missing (a registry
			// whose tags cannot be overwritten refuses them).
			c.log.Warn(fmt.Sprintf("--cache-to %s: the entries were pushed, but the list of the entries "+
				"after each could not be added, so builds using them look each step up: %v", c.to, err))
			return
		}
	}
}

// close stops the reads ahead and closes their clients, and waits for the queued pushes
// (a build that failed keeps the entries of the steps that succeeded). It may be called
// again.
func (c *remoteCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.cancel()
	c.mu.Unlock()
	c.qmu.Lock()
	c.queueClosed = true
	if c.pushes != nil {
		if n := len(c.pushes); n > 0 && !c.isBroken(c.to) && c.pushCtx.Err() == nil {
			fmt.Fprintf(c.out, "Waiting for the --cache-to pushes of %d more steps\n", n)
		}
		close(c.pushes)
	}
	c.qmu.Unlock()
	c.pushing.Wait()
	c.fetch.Wait()
	for _, ch := range c.chains {
		if ch.repo != nil {
			_ = ch.repo.Close()
		}
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

// remoteRedo says a --cache-from entry the stage went on from could not be pulled; its
// registry is now dropped and the stage must run again without it.
type remoteRedo struct{ err error }

func (e *remoteRedo) Error() string { return e.err.Error() }
func (e *remoteRedo) Unwrap() error { return e.err }
