package build

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/forge-build/forge/commit"
	"github.com/forge-build/forge/storage"
)

// Cache keys chain on results, not only on the instructions: the key of the steps after
// an image starts from that image's state (stateKey), so a step that missed the cache
// but made the same layer as before (a reproducible build, with --timestamp) leads back
// to the keys of the earlier build, and the steps after it hit again. Unlike Kaniko, a
// miss does not end the lookups.

// outputKey is what every cache key holds of the build's output settings: the format
// and, when set, the fixed timestamp (the layers and configs depend on it).
func (b *builder) outputKey() string {
	if b.opts.Timestamp == nil {
		return b.opts.Format
	}
	return fmt.Sprintf("%s\ntimestamp %d", b.opts.Format, b.opts.Timestamp.Unix())
}

// stateKey is the key the steps after an image chain on: the image's layers (its diff
// IDs) and configuration, which is all a later step sees, without its history and creation
// time. It is the same on every machine that has the same image.
func (b *builder) stateKey(cfg storage.ImageConfig) (string, error) {
	cfg.History, cfg.Created = nil, nil
	blob, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encode config: %w", err)
	}
	return stepKey("", "state", nil, string(blob)+"\n"+b.outputKey()), nil
}

// adopt checks an image the cache holds for key against the history this build gives
// it: the history so far (before) and the created_by of the entries the step adds
// (tail). An image reached through an earlier step that was written differently but made
// the same layer has the right layers and configuration, but its history names the other
// build's instructions: adopt then makes an image of the same layers with this build's
// history, records it under key and returns it. It returns "" for an image that does not
// fit at all (another number of history entries): the step runs.
func (b *builder) adopt(ctx context.Context, id, key string, before []imgspecv1.History, tail []string) (string, error) {
	cfg, err := b.store.ImageConfig(ctx, id)
	if err != nil {
		return "", err
	}
	want := append(createdBys(before), tail...)
	got := createdBys(cfg.History)
	if slices.Equal(got, want) {
		return id, nil
	}
	if len(got) != len(want) {
		return "", nil
	}
	history := slices.Clone(before)
	for i, h := range cfg.History[len(before):] {
		h.CreatedBy = tail[i]
		history = append(history, h)
	}
	cfg.History = history
	return commit.Reconfigure(ctx, b.store, id, cfg, commit.Options{Format: b.opts.Format, Timestamp: b.opts.Timestamp,
		Metadata: storage.CacheMetadata(key)})
}

func createdBys(h []imgspecv1.History) []string {
	out := make([]string, len(h))
	for i := range h {
		out[i] = h[i].CreatedBy
	}
	return out
}

// historyTail is the created_by of the history entries the next commit adds: the
// instructions applied since the last image, then text (if any).
func (r *stageRun) historyTail(text string) []string {
	tail := slices.Clone(r.pending)
	if text != "" {
		tail = append(tail, text)
	}
	if len(tail) == 0 {
		tail = []string{"forge bud"}
	}
	return tail
}

// cachedImage returns the store's newest image for key that --cache-ttl allows (recorded
// no longer ago than it), or "".
func (b *builder) cachedImage(key string) (string, error) {
	var notBefore time.Time
	if b.opts.CacheTTL > 0 {
		notBefore = time.Now().Add(-b.opts.CacheTTL)
	}
	return b.store.CachedImage(key, notBefore)
}

// cached continues the stage from the image the local cache, or else a --cache-from
// registry, holds for key. ok is false when there is none that fits: the step runs.
func (r *stageRun) cached(ctx context.Context, key, text string) (ok bool, err error) {
	id, err := r.b.cachedImage(key)
	if err != nil {
		return false, err
	}
	if id != "" {
		fmt.Fprintf(r.b.out, "--> Using cache %s\n", id)
		return r.useCached(ctx, id, key, text)
	}
	e, found := r.b.remote.lookup(ctx, key)
	if !found {
		return false, nil
	}
	// An entry whose history is this build's is gone on from without pulling it; one
	// written by another Dockerfile is pulled now and given this build's history.
	want := append(createdBys(r.config.History), r.historyTail(text)...)
	got := createdBys(e.Config.History)
	if len(got) != len(want) {
		return false, nil
	}
	if slices.Equal(got, want) {
		return true, r.moveToConfig(e.ID, e.Config, e)
	}
	e.prev = r.lazy // their layers come with this pull too
	if id, err = r.b.remote.pull(ctx, e); err != nil {
		if ctx.Err() != nil {
			return false, err
		}
		r.b.remote.fail(e.repo, "--cache-from", err)
		return false, nil
	}
	return r.useCached(ctx, id, key, text)
}

// useCached continues the stage from an image the cache holds for key, made to carry
// this build's history (adopt). ok is false when the image does not fit: the step runs.
func (r *stageRun) useCached(ctx context.Context, id, key, text string) (ok bool, err error) {
	id, err = r.b.adopt(ctx, id, key, r.config.History, r.historyTail(text))
	if err != nil || id == "" {
		return false, err
	}
	return true, r.moveTo(ctx, id)
}
