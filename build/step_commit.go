package build

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/forge-build/forge/commit"
	"github.com/forge-build/forge/storage"
)

// quietLogger silences the per-commit notes of intermediate images.
func quietLogger(*slog.Logger) *slog.Logger { return slog.New(slog.DiscardHandler) }

// moveTo continues the stage from an image: a step's result, just committed or cached.
// The next steps' keys chain on its state (see stateKey).
func (r *stageRun) moveTo(ctx context.Context, id string) error {
	cfg, err := r.b.store.ImageConfig(ctx, id)
	if err != nil {
		return err
	}
	return r.moveToConfig(id, cfg, nil)
}

// moveToConfig is moveTo for an image whose configuration is known: one in the store
// (lazy nil) or a --cache-from entry not pulled yet (see pullLazy).
func (r *stageRun) moveToConfig(id string, cfg storage.ImageConfig, lazy *remoteEntry) error {
	key, err := r.b.stateKey(cfg)
	if err != nil {
		return err
	}
	if lazy != nil {
		lazy.prev = r.lazy
	}
	r.imageID, r.key, r.config, r.lazy = id, key, cfg, lazy
	r.pending, r.dirs = nil, nil
	if r.ctr != nil {
		r.b.removeContainer(r.ctr)
		r.ctr = nil
	}
	return nil
}

// pullLazy pulls the --cache-from entry the stage went on from, if it has not been yet:
// a step needs its files, or the stage is done. One pull fetches every layer the store
// lacks, whatever the number of entries the stage went through. When it fails the
// registry is dropped and the stage runs again (remoteRedo).
func (r *stageRun) pullLazy(ctx context.Context) error {
	if r.lazy == nil {
		return nil
	}
	id, err := r.b.remote.pull(ctx, r.lazy)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		r.b.remote.fail(r.lazy.repo, "--cache-from", err)
		return &remoteRedo{err: err}
	}
	r.imageID, r.lazy = id, nil
	return nil
}

// ensureContainer makes (or brings up to date) the working container the next step runs
// in: it carries the stage's configuration so far (USER, WORKDIR, ENV, SHELL).
func (r *stageRun) ensureContainer(ctx context.Context) error {
	if err := r.pullLazy(ctx); err != nil {
		return err
	}
	if r.ctr == nil {
		ctr, err := r.b.newContainer(ctx, r.imageID)
		if err != nil {
			return err
		}
		r.ctr = ctr
	}
	r.ctr.Config = r.config.Clone()
	return nil
}

// makeDirs creates the WORKDIRs set since the last step that touched files, each owned
// by the USER in force when its WORKDIR ran, as BuildKit does.
func (r *stageRun) makeDirs(ctx context.Context) (retErr error) {
	if len(r.dirs) == 0 {
		return nil
	}
	rootfs, err := r.b.store.Mount(r.ctr)
	if err != nil {
		return err
	}
	defer func() {
		if err := r.b.store.Unmount(r.ctr, false); err != nil && retErr == nil {
			retErr = err
		}
	}()
	for _, d := range r.dirs {
		owner, err := resolveOwner(rootfs, d.user)
		if err != nil {
			owner = idPair{}
		}
		if err := mkdirOwned(rootfs, d.path, owner); err != nil {
			return fmt.Errorf("WORKDIR %s: %w", d.path, err)
		}
	}
	r.dirs = nil
	return ctx.Err()
}

// mkdirOwned creates dir inside rootfs if it is missing; only the directories it creates
// get the owner.
func mkdirOwned(rootfs, dir string, owner idPair) error {
	var created []string
	for p := dir; p != "/" && p != "."; p = parentDir(p) {
		if h, err := pathrs.OpenInRoot(rootfs, p); err == nil {
			h.Close()
			break
		}
		created = append(created, p)
	}
	if err := pathrs.MkdirAll(rootfs, dir, 0o755); err != nil {
		return err
	}
	for _, p := range created {
		h, err := pathrs.OpenInRoot(rootfs, p)
		if err != nil {
			return err
		}
		err = unix.Fchownat(int(h.Fd()), "", owner.uid, owner.gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
		h.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func parentDir(p string) string {
	i := strings.LastIndex(strings.TrimSuffix(p, "/"), "/")
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// commitStep commits the working container as the stage's next image, records it under
// the current key and drops the container.
func (r *stageRun) commitStep(ctx context.Context) error {
	r.ctr.Config = r.config
	var before []string
	createdBy := "forge bud"
	if n := len(r.pending); n > 0 {
		before, createdBy = r.pending[:n-1], r.pending[n-1]
	}
	// The step's container is volatile: what it wrote reaches the disk here, once, before
	// the store records an image of it (as unmounting an ordinary overlay would).
	if err := r.b.store.SyncVolatile(); err != nil {
		return err
	}
	id, err := commit.Commit(ctx, r.b.store, r.ctr, commit.Options{
		Format: r.b.opts.Format, Timestamp: r.b.opts.Timestamp, CreatedBy: createdBy, EmptyLayers: before, Logger: quietLogger(r.b.log),
		Consume: true, Metadata: storage.CacheMetadata(r.key),
	})
	if err != nil {
		return err
	}
	r.b.remote.record(r.index, id, r.key)
	fmt.Fprintf(r.b.out, "--> %s\n", shortID(id))
	r.b.removeContainer(r.ctr)
	r.ctr = nil
	return r.moveTo(ctx, id)
}

// result finishes the stage: when instructions were applied since the last image (or
// without the layer cache), one more commit makes the stage's image.
func (r *stageRun) result(ctx context.Context) (*stageResult, error) {
	if len(r.pending) > 0 || len(r.dirs) > 0 || r.imageID == "" {
		if !r.b.opts.NoLayers && !r.b.opts.NoCache {
			if ok, err := r.cached(ctx, r.key, ""); err != nil {
				return nil, err
			} else if ok {
				return r.finished(ctx)
			}
		}
		if err := r.ensureContainer(ctx); err != nil {
			return nil, err
		}
		if err := r.makeDirs(ctx); err != nil {
			return nil, err
		}
		if err := r.commitStep(ctx); err != nil {
			return nil, err
		}
	}
	return r.finished(ctx)
}

// finished is the stage's result, with its layers in the store.
func (r *stageRun) finished(ctx context.Context) (*stageResult, error) {
	if err := r.pullLazy(ctx); err != nil {
		return nil, err
	}
	return &stageResult{imageID: r.imageID, key: r.key, config: r.config}, nil
}
