package build

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/forge-build/forge/storage"
)

// copySpec is a COPY or ADD step after parsing.
type copySpec struct {
	add          bool
	from         string
	chown, chmod string
	paths        instructions.SourcesAndDest
}

// copyStep runs COPY or ADD: sources from the context, an earlier stage or an image.
func (r *stageRun) copyStep(ctx context.Context, cmd instructions.Command, spec copySpec) error {
	x := r.expand
	var err error
	for _, w := range []*string{&spec.from, &spec.chown, &spec.chmod, &spec.paths.DestPath} {
		if *w, err = x(*w); err != nil {
			return err
		}
	}
	sources := make([]string, len(spec.paths.SourcePaths))
	for i, src := range spec.paths.SourcePaths {
		if sources[i], err = x(src); err != nil {
			return err
		}
	}
	opts := CopyOptions{Chown: spec.chown, Chmod: spec.chmod, Add: spec.add,
		IgnoreChownErrors: r.b.opts.IgnoreChownErrors, SourcesInContext: true}
	var extra string
	if spec.from == "" {
		opts.Context, opts.ContextDir = r.b.bctx, r.b.bctx.Dir
		if extra, err = r.contextDigest(ctx, sources, spec.add); err != nil {
			return err
		}
	}
	fromID := ""
	if spec.from != "" {
		if fromID, err = r.copySource(ctx, spec.from); err != nil {
			return err
		}
		extra = "from:" + fromID
	}
	text := instructionText(r.b.df, cmd)
	return r.layerStep(ctx, text, extra+"\n"+strings.Join(sources, "\n")+"\n"+spec.paths.DestPath, func(ctx context.Context) error {
		if fromID != "" {
			// Mounted only when the step runs: a cache hit mounts nothing.
			dir, err := r.b.mountImage(fromID)
			if err != nil {
				return err
			}
			opts.ContextDir = dir
		}
		return r.copyInto(ctx, sources, spec.paths.DestPath, opts)
	})
}

// copyInto copies into the working container, whose working directory comes from the
// stage's configuration.
func (r *stageRun) copyInto(ctx context.Context, sources []string, dest string, opts CopyOptions) error {
	r.ctr.Config.Config.WorkingDir = r.config.Config.WorkingDir
	err := Copy(ctx, r.b.store, r.ctr, sources, dest, opts)
	if errors.Is(err, ErrNoSource) {
		return fmt.Errorf("%w", err)
	}
	return err
}

// contextDigest sums the context files a COPY or ADD would read (URLs by their text).
func (r *stageRun) contextDigest(ctx context.Context, sources []string, add bool) (string, error) {
	var local []string
	for _, s := range sources {
		if !(add && isURL(s)) {
			local = append(local, s)
		}
	}
	if len(local) == 0 {
		return "", nil
	}
	d, err := r.b.bctx.Digest(ctx, local, DigestOptions{Cache: r.b.digests})
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// copySource finds the image COPY --from names: an earlier stage (by name or index) or
// an image, which is pulled as --pull says.
func (r *stageRun) copySource(ctx context.Context, from string) (string, error) {
	var id string
	if i, ok := r.b.stageIndex(from, r.index); ok {
		dep, err := r.b.buildStage(ctx, i)
		if err != nil {
			return "", err
		}
		id = dep.imageID
	} else if _, isLater := r.b.names[strings.ToLower(from)]; isLater || isStageNumber(from) {
		return "", fmt.Errorf("--from=%s: no stage named %s before this one", from, from)
	} else {
		img, err := r.b.store.Pull(ctx, from, storage.PullOptions{Registry: r.b.opts.Registry, Policy: r.b.opts.Pull, Progress: r.b.errOut})
		if err != nil {
			return "", fmt.Errorf("--from=%s: %w", from, err)
		}
		id = img.ID
	}
	if id == "" {
		return "", fmt.Errorf("--from=%s: the stage is empty (FROM scratch with no files)", from)
	}
	return id, nil
}

func isStageNumber(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
