package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/forge-build/forge/commit"
	"github.com/forge-build/forge/storage"
)

// builder holds one Dockerfile build's state: the parsed file, the context, the global
// ARGs and the stages built so far.
//
// Each stage runs with its own copy of the builder (see view): the fields that change
// while stages run are either that copy's own (out, errOut, usedArgs, holding) or behind
// the jobs pointer, which every copy shares.
type builder struct {
	store    *storage.Store
	opts     Options
	df       *Dockerfile
	bctx     *Context
	named    map[string]*NamedContext // --build-context, by lower-case name
	digests  *DigestCache
	remote   *remoteCache      // --cache-to/--cache-from; nil when neither is given
	global   map[string]string // ARGs before the first FROM
	usedArgs map[string]bool
	names    map[string]int // stage name -> index
	deps     map[int][]int  // the stages each needed stage is known to use
	jobs     *jobs          // the stages started, shared by all copies
	holding  bool           // this copy runs a stage and holds one of the --jobs slots
	out      io.Writer
	errOut   io.Writer
	log      *slog.Logger
}

// stageResult is a built stage: its image and the cache key that leads to it.
type stageResult struct {
	imageID string
	key     string
	config  storage.ImageConfig
}

func newBuilder(ctx context.Context, s *storage.Store, o Options) (*builder, error) {
	b := &builder{store: s, opts: o, usedArgs: map[string]bool{}, names: map[string]int{},
		out: o.Out, errOut: o.Err, log: o.Logger}
	if b.out == nil {
		b.out = io.Discard
	}
	if b.errOut == nil {
		b.errOut = io.Discard
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.remote = newRemoteCache(ctx, s, o, b.log, b.out)
	contextDir := o.ContextDir
	if contextDir == "" {
		contextDir = "."
	}
	df, dfPath, err := readDockerfile(o, contextDir)
	if err != nil {
		return nil, err
	}
	b.df = df
	for _, note := range df.Notes {
		b.log.Warn(note)
	}
	if b.bctx, err = OpenContext(contextDir, dfPath); err != nil {
		return nil, err
	}
	if b.named, err = openNamedContexts(o.BuildContexts); err != nil {
		return nil, err
	}
	if o.DigestCachePath != "" {
		b.digests = LoadDigestCache(o.DigestCachePath)
	}
	if err := b.globalArgs(); err != nil {
		return nil, err
	}
	for i := range df.Stages {
		if n := strings.ToLower(df.Stages[i].Name); n != "" {
			b.names[n] = i
		}
	}
	return b, ctx.Err()
}

// globalArgs evaluates the ARGs before the first FROM; they are visible to FROM lines and
// to stages that declare them again.
func (b *builder) globalArgs() error {
	scope := newArgScope(b.opts.BuildArgs, b.usedArgs)
	for k, v := range platformArgs() {
		scope.vars[k] = v
	}
	for _, a := range b.df.MetaArgs {
		for _, kv := range a.Args {
			expand := b.expander(newEnvGetter(scope.vars, nil))
			if err := scope.declare(kv, nil, expand); err != nil {
				return &StepError{File: b.df.File, Line: commandLine(&a), Instruction: instructionText(b.df, &a), Err: err}
			}
		}
	}
	b.global = scope.vars
	return nil
}

func (b *builder) expander(env envGetter) func(string) (string, error) {
	lex := newLex(b.df.Escape)
	return func(word string) (string, error) {
		out, _, err := lex.ProcessWord(word, env)
		return out, err
	}
}

// finish applies --label, names the final image and records the digest cache.
func (b *builder) finish(ctx context.Context, r *stageResult) (string, error) {
	id := r.imageID
	if len(b.opts.Labels) > 0 || id == "" {
		var err error
		if id, err = b.relabel(ctx, r); err != nil {
			return "", err
		}
	}
	var names []string
	for _, t := range b.opts.Tags {
		if !strings.HasPrefix(t, "docker://") {
			names = append(names, t)
		}
	}
	if len(names) > 0 {
		fmt.Fprintf(b.out, "COMMIT %s\n", strings.Join(names, " "))
		if err := b.store.Tag(ctx, id, names...); err != nil {
			return "", err
		}
	}
	if b.digests != nil {
		if err := b.digests.Save(); err != nil {
			b.log.Warn("could not save the context digest cache", "err", err)
		}
	}
	return id, nil
}

// relabel commits the final image once more with --label applied (and makes an image at
// all for a build whose result is the empty scratch stage).
func (b *builder) relabel(ctx context.Context, r *stageResult) (string, error) {
	cfg := r.config.Clone()
	if cfg.Config.Labels == nil {
		cfg.Config.Labels = map[string]string{}
	}
	for _, l := range b.opts.Labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return "", fmt.Errorf("--label %q: want KEY=VALUE", l)
		}
		cfg.Config.Labels[k] = v
	}
	key := stepKey(r.key, "LABEL (--label)", b.opts.Labels, b.outputKey())
	return b.commitConfig(ctx, r.imageID, cfg, key, "LABEL "+strings.Join(b.opts.Labels, " "))
}

// commitConfig makes an image from parent with cfg and no new layer, reusing a cached
// one when the key was built before.
func (b *builder) commitConfig(ctx context.Context, parent string, cfg storage.ImageConfig, key, createdBy string) (string, error) {
	if !b.opts.NoCache && !b.opts.NoLayers {
		id, err := b.cachedImage(key)
		if err != nil {
			return "", err
		}
		if id != "" {
			if id, err := b.adopt(ctx, id, key, cfg.History, []string{createdBy}); err != nil || id != "" {
				return id, err
			}
		}
	}
	ctr, err := b.newContainer(ctx, parent)
	if err != nil {
		return "", err
	}
	defer b.removeContainer(ctr)
	ctr.Config = cfg
	return commit.Commit(ctx, b.store, ctr, commit.Options{Format: b.opts.Format, Timestamp: b.opts.Timestamp, CreatedBy: createdBy, Logger: b.log,
		Metadata: storage.CacheMetadata(key)})
}

// newContainer makes a working container for a build step from image ("" = scratch).
func (b *builder) newContainer(ctx context.Context, image string) (*storage.Container, error) {
	if image == "" {
		image = "scratch"
	}
	return b.store.From(ctx, image, storage.FromOptions{Name: "forge-build-" + randomSuffix(), Pull: storage.PullNever, Throwaway: true})
}

func (b *builder) removeContainer(c *storage.Container) {
	if err := b.store.RemoveContainer(c); err != nil {
		b.log.Warn("could not remove build container", "name", c.Name, "err", err)
	}
}

// mountImage mounts an image for COPY --from until the build ends.
func (b *builder) mountImage(id string) (string, error) {
	dir, err := b.store.MountImage(id)
	if err != nil {
		return "", err
	}
	b.jobs.mu.Lock()
	b.jobs.mounted = append(b.jobs.mounted, id)
	b.jobs.mu.Unlock()
	return dir, nil
}

// close unmounts what the build mounted and stops the cache's reads ahead; it runs once
// every stage has ended.
func (b *builder) close() {
	b.remote.close()
	if b.jobs == nil {
		return
	}
	var errs []error
	for _, id := range b.jobs.mounted {
		errs = append(errs, b.store.UnmountImage(id))
	}
	if err := errors.Join(errs...); err != nil {
		b.log.Warn("could not unmount images", "err", err)
	}
}
