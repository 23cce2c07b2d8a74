package build

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/forge-build/forge/storage"
)

// from starts the stage: from scratch, from an earlier stage, or from an image (pulled as
// --pull says). ONBUILD triggers of the base image run first, as in Docker.
func (r *stageRun) from(ctx context.Context) error {
	r.step = 1
	fail := func(err error) error {
		return &StepError{File: r.b.df.File, Line: fromLine(r.stage), Instruction: "FROM " + r.stage.BaseName, Err: err}
	}
	base, err := r.b.expander(newEnvGetter(r.b.global, nil))(r.stage.BaseName)
	if err != nil {
		return fail(err)
	}
	r.headerFrom(base)
	if err := r.checkPlatform(); err != nil {
		return fail(err)
	}
	switch i, isStage := r.b.stageIndex(base, r.index); {
	case strings.EqualFold(base, "scratch"):
		r.config, r.key = storage.ScratchConfig(), stepKey("", "scratch", nil, r.b.outputKey())
	case isStage:
		dep, err := r.b.buildStage(ctx, i)
		if err != nil {
			return err
		}
		r.imageID, r.key, r.config = dep.imageID, dep.key, dep.config.Clone()
	default:
		if err := r.fromImage(ctx, r.b.baseImage(base)); err != nil {
			return fail(err)
		}
	}
	return r.onBuild(ctx)
}

func fromLine(st *instructions.Stage) int {
	if len(st.Location) > 0 {
		return st.Location[0].Start.Line
	}
	return 0
}

func (r *stageRun) fromImage(ctx context.Context, name string) error {
	img, err := r.b.store.Pull(ctx, name, storage.PullOptions{Registry: r.b.opts.Registry, Policy: r.b.opts.Pull, Progress: r.b.pullProgress()})
	if err != nil {
		return err
	}
	cfg, err := r.b.store.ImageConfig(ctx, img.ID)
	if err != nil {
		return err
	}
	// The image ID is the digest of its configuration, so the key is the same on every
	// machine that has the same base image.
	r.imageID, r.config, r.key = img.ID, cfg, stepKey("", "image:"+img.ID, nil, r.b.outputKey())
	return nil
}

// checkPlatform accepts --platform only for the host's own platform.
func (r *stageRun) checkPlatform() error {
	if r.stage.Platform == "" {
		return nil
	}
	p, err := r.b.expander(newEnvGetter(r.b.global, nil))(r.stage.Platform)
	if err != nil {
		return err
	}
	host := runtime.GOOS + "/" + runtime.GOARCH
	if p != host && p != runtime.GOARCH && p != host+"/" {
		return fmt.Errorf("--platform=%s: only this host's platform (%s) can be built; %w", p, host, ErrNotSupported)
	}
	return nil
}

// onBuild runs the base image's ONBUILD triggers and clears them, as Docker does.
func (r *stageRun) onBuild(ctx context.Context) error {
	triggers := r.config.Config.OnBuild
	if len(triggers) == 0 {
		return nil
	}
	r.config.Config.OnBuild = nil
	for _, t := range triggers {
		cmd, err := parseTrigger(t)
		if err != nil {
			return &StepError{File: r.b.df.File, Line: fromLine(r.stage), Instruction: "ONBUILD " + t, Err: err}
		}
		if err := r.dispatch(ctx, cmd); err != nil {
			return &StepError{File: r.b.df.File, Line: fromLine(r.stage), Instruction: "ONBUILD " + t, Err: err}
		}
	}
	return nil
}

func parseTrigger(text string) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	if len(res.AST.Children) != 1 {
		return nil, errors.New("an ONBUILD trigger must be one instruction")
	}
	switch strings.ToUpper(res.AST.Children[0].Value) {
	case "FROM", "ONBUILD", "MAINTAINER":
		return nil, fmt.Errorf("%s is not allowed as an ONBUILD trigger", strings.ToUpper(res.AST.Children[0].Value))
	}
	cmd, err := instructions.ParseCommand(res.AST.Children[0])
	if err != nil {
		return nil, err
	}
	return cmd, checkSupported(cmd)
}
