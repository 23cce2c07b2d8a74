package build

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/forge-build/forge/commit"
	"github.com/forge-build/forge/storage"
)

// linkStep runs COPY --link or ADD --link. The files are copied into an empty container,
// which is committed as an image of one layer, cached under a key that leaves out the
// state below (linkExtra must name everything else the files depend on); that layer is
// then put on top of the stage's image unchanged, so its digest is the same whatever the
// base, and a changed base does not copy again. The step's own image is cached like any
// step's (extra). Without the layer cache (--layers=false) the stage has one container
// and one layer: the copy goes into it like any COPY.
func (r *stageRun) linkStep(ctx context.Context, text, extra, linkExtra string, do func(context.Context, *storage.Container) error) error {
	if r.b.opts.NoLayers {
		return r.layerStep(ctx, text, extra, func(ctx context.Context) error { return do(ctx, r.ctr) })
	}
	key := stepKey(r.key, text, r.args.env(), extra+"\n"+r.b.outputKey())
	if !r.b.opts.NoCache {
		id, err := r.b.cachedImage(key)
		if err != nil {
			return err
		}
		if id != "" {
			fmt.Fprintf(r.b.out, "--> Using cache %s\n", id)
			if ok, err := r.useCached(ctx, id, key, text); ok || err != nil {
				return err
			}
		}
	}
	if len(r.dirs) > 0 {
		// WORKDIRs since the last layer belong to the state below: their own layer first.
		if err := r.ensureContainer(ctx); err != nil {
			return err
		}
		if err := r.makeDirs(ctx); err != nil {
			return err
		}
		if err := r.commitStep(ctx); err != nil {
			return err
		}
	}
	linked, err := r.linkedLayer(ctx, text, linkExtra, do)
	if err != nil {
		return err
	}
	if err := r.ensureContainer(ctx); err != nil {
		return err
	}
	r.pending = append(r.pending, text)
	r.key = key
	return r.commitLinked(ctx, linked)
}

// linkedLayer returns the image of one layer holding what the step copies: from the
// cache, or copied into an empty container now.
func (r *stageRun) linkedLayer(ctx context.Context, text, linkExtra string, do func(context.Context, *storage.Container) error) (string, error) {
	key := stepKey("link", text, r.args.env(), linkExtra+"\n"+r.b.outputKey())
	if !r.b.opts.NoCache {
		if id, err := r.b.cachedImage(key); err != nil || id != "" {
			return id, err
		}
	}
	ctr, err := r.b.newContainer(ctx, "")
	if err != nil {
		return "", err
	}
	defer r.b.removeContainer(ctr)
	start := time.Now()
	if err := do(ctx, ctr); err != nil {
		return "", err
	}
	if err := r.settleDirTimes(ctr, start); err != nil {
		return "", err
	}
	ctr.Config = storage.ScratchConfig()
	id, err := commit.Commit(ctx, r.b.store, ctr, commit.Options{
		Format: r.b.opts.Format, Timestamp: r.b.opts.Timestamp, CreatedBy: text, Logger: quietLogger(r.b.log),
		Consume: true, Metadata: storage.CacheMetadata(key),
	})
	return id, err
}

// settleDirTimes gives the directories the copy made or changed (its destination's
// parents) a zero modification time, so the linked layer is the same on every build.
func (r *stageRun) settleDirTimes(ctr *storage.Container, since time.Time) (retErr error) {
	rootfs, err := r.b.store.Mount(ctr)
	if err != nil {
		return err
	}
	defer func() {
		if err := r.b.store.Unmount(ctr, false); err != nil && retErr == nil {
			retErr = err
		}
	}()
	epoch := []unix.Timespec{{Sec: 0}, {Sec: 0}}
	return filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == rootfs {
			return err
		}
		fi, err := d.Info()
		if err != nil || fi.ModTime().Before(since.Add(-time.Second)) {
			return err
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, epoch, unix.AT_SYMLINK_NOFOLLOW)
	})
}

// commitLinked commits the stage's image with the linked layer on top, as the step's image.
func (r *stageRun) commitLinked(ctx context.Context, linked string) error {
	r.ctr.Config = r.config
	var before []string
	createdBy := "forge bud"
	if n := len(r.pending); n > 0 {
		before, createdBy = r.pending[:n-1], r.pending[n-1]
	}
	id, err := commit.CommitLink(ctx, r.b.store, r.ctr, linked, commit.Options{
		Format: r.b.opts.Format, Timestamp: r.b.opts.Timestamp, CreatedBy: createdBy, EmptyLayers: before, Logger: quietLogger(r.b.log),
		Metadata: storage.CacheMetadata(r.key),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.b.out, "--> %s\n", shortID(id))
	r.b.removeContainer(r.ctr)
	r.ctr = nil
	return r.moveTo(ctx, id)
}
