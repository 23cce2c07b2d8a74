package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// run1 runs a RUN step, or reuses its cached result.
func (r *stageRun) run1(ctx context.Context, c *instructions.RunCommand) error {
	args := slices.Clone(c.CmdLine)
	if c.PrependShell {
		if len(args) == 0 || strings.TrimSpace(strings.Join(args, " ")) == "" {
			return errors.New("empty command")
		}
		sh := r.config.Config.Shell
		if len(sh) == 0 {
			sh = []string{"/bin/sh", "-c"}
		}
		args = append(slices.Clone(sh), strings.Join(args, " "))
	} else if len(args) == 0 {
		return errors.New("empty command")
	}
	text := instructionText(r.b.df, c)
	return r.layerStep(ctx, text, "", func(ctx context.Context) error {
		env := mergeEnv(r.args.env(), r.config.Config.Env)
		env = append(env, r.args.proxyEnv()...)
		status, err := Run(ctx, r.b.store, r.ctr, RunOptions{
			Args: args, Env: env, Network: r.b.opts.Network,
			Stdout: r.b.out, Stderr: r.stderr(), Logger: r.b.log,
		})
		if err != nil {
			return err
		}
		if status != 0 {
			return &ExitStatusError{Status: status}
		}
		return nil
	})
}

// stderr is where RUN steps write their errors: with the rest of the output, unless the
// output is discarded (-q), then on forge's stderr.
func (r *stageRun) stderr() io.Writer {
	if r.b.out == io.Discard {
		return r.b.errOut
	}
	return r.b.out
}

// layerStep runs a step that changes files: from the cache when its key was built before,
// otherwise in a working container, then committed (with the layer cache) as the next
// image of the stage.
func (r *stageRun) layerStep(ctx context.Context, text, extra string, do func(context.Context) error) error {
	key := stepKey(r.key, text, r.args.env(), extra+"\n"+r.b.opts.Format)
	cacheOn := !r.b.opts.NoLayers
	if cacheOn && !r.b.opts.NoCache {
		id, err := r.b.store.CachedImage(key)
		if err != nil {
			return err
		}
		if id != "" {
			fmt.Fprintf(r.b.out, "--> Using cache %s\n", id)
			return r.moveTo(ctx, id, key)
		}
	}
	if err := r.ensureContainer(ctx); err != nil {
		return err
	}
	if err := r.makeDirs(ctx); err != nil {
		return err
	}
	if err := do(ctx); err != nil {
		return err
	}
	r.pending = append(r.pending, text)
	r.key = key
	if !cacheOn {
		return nil
	}
	return r.commitStep(ctx)
}
