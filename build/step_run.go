package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/forge-build/forge/rootless/sandbox"
)

// run1 runs a RUN step, or reuses its cached result. The cache key holds the whole
// command (heredocs included), the network mode and every mount as written and resolved
// (the image a from names, the digest of the context files a bind shows), never the value
// of a secret.
func (r *stageRun) run1(ctx context.Context, c *instructions.RunCommand) error {
	args, script, err := runArgs(c, r.config.Config.Shell)
	if err != nil {
		return err
	}
	mounts, err := parseRunMounts(c, r.expand, r.config.Config.WorkingDir)
	if err != nil {
		return err
	}
	if err := checkVolumes(r.b.opts.Volumes, mounts, script != nil); err != nil {
		return err
	}
	network, err := r.runNetwork(c)
	if err != nil {
		return err
	}
	if err := r.b.checkIsolation(network); err != nil {
		return err
	}
	planned, mountKey, err := r.planMounts(ctx, mounts)
	if err != nil {
		return err
	}
	text := instructionText(r.b.df, c)
	extra := runKeyText(args, script) + mountKey + "network\x00" + network
	return r.layerStep(ctx, text, extra, func(ctx context.Context) error {
		return r.execRun(ctx, args, script, planned, network)
	})
}

// runNetwork is the network of a RUN step: --network=none or host as it says, default as
// forge bud's --network says.
func (r *stageRun) runNetwork(c *instructions.RunCommand) (string, error) {
	switch n := instructions.GetNetwork(c); n {
	case instructions.NetworkNone:
		return sandbox.NetworkNone, nil
	case instructions.NetworkHost:
		return sandbox.NetworkHost, nil
	case instructions.NetworkDefault, "":
		if r.b.opts.Network == "" {
			return sandbox.NetworkHost, nil
		}
		return r.b.opts.Network, nil
	default:
		return "", fmt.Errorf("--network=%s: want default, none or host", n)
	}
}

// execRun runs the command in the working container with its mounts, and releases them
// (caches unlocked, temporary copies and secret files removed) whatever happens.
func (r *stageRun) execRun(ctx context.Context, args []string, script *runScript, planned []plannedMount, network string) (retErr error) {
	set := &mountSet{volumes: slices.Clone(r.b.opts.Volumes)}
	defer func() { retErr = errors.Join(retErr, set.release()) }()
	if err := r.prepareMounts(ctx, planned, set); err != nil {
		return err
	}
	if script != nil {
		dir, err := script.write()
		if err != nil {
			return err
		}
		set.undo = append(set.undo, func() error { return os.RemoveAll(dir) })
		set.volumes = append(set.volumes, sandbox.Volume{Source: dir, Dest: heredocDir, ReadOnly: true})
	}
	env := mergeEnv(r.args.env(), r.config.Config.Env)
	env = append(env, r.args.proxyEnv()...)
	env = append(env, set.env...)
	status, err := Run(ctx, r.b.store, r.ctr, RunOptions{
		Args: args, Env: env, WorkDir: r.config.Config.WorkingDir, User: r.config.Config.User,
		Network: network, Volumes: set.volumes, Tmpfs: set.tmpfs,
		Stdout: r.runOutput(), Stderr: r.runOutput(), Logger: r.b.log, Isolation: r.b.opts.Isolation,
	})
	if err != nil {
		return err
	}
	if status != 0 {
		return &ExitStatusError{Status: status, DiskFull: r.b.store.Full()}
	}
	return nil
}

// layerStep runs a step that changes files: from the cache when its key was built before,
// otherwise in a working container, then committed (with the layer cache) as the next
// image of the stage.
func (r *stageRun) layerStep(ctx context.Context, text, extra string, do func(context.Context) error) error {
	key := stepKey(r.key, text, r.args.env(), extra+"\n"+r.b.outputKey())
	cacheOn := !r.b.opts.NoLayers
	if cacheOn && !r.b.opts.NoCache {
		if ok, err := r.cached(ctx, key, text); ok || err != nil {
			return err
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
