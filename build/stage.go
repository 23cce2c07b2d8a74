package build

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/forge-build/forge/commit"
	"github.com/forge-build/forge/storage"
)

// stageRun builds one stage. With the layer cache each step that changes files is
// committed as an image recorded under the step's cache key, and the next step starts
// from it; metadata steps only change the configuration carried to the next commit.
// Without layers one container takes the whole stage and is committed once.
type stageRun struct {
	b       *builder
	index   int
	stage   *instructions.Stage
	args    *argScope
	config  storage.ImageConfig
	imageID string       // the image the next step starts from; "" for scratch
	lazy    *remoteEntry // imageID's --cache-from entry, until its layers are pulled
	key     string       // cache key of the state so far
	ctr     *storage.Container
	pending []string     // instructions applied since the last commit, for the history
	dirs    []pendingDir // WORKDIRs to create before the next step that touches files
	cmds    commit.Stage
	step    int
}

// pendingDir is a WORKDIR still to be created, and the USER it is created as.
type pendingDir struct{ path, user string }

// pullProgress is where pulls report their progress: nowhere with -q, as Buildah's -q.
func (b *builder) pullProgress() io.Writer {
	if b.opts.Quiet {
		return nil
	}
	return b.errOut
}

// runOutput is where RUN steps print: with the STEP lines, or on stderr when those are
// suppressed (-q), so a failing command's output is never lost.
func (r *stageRun) runOutput() io.Writer {
	if r.b.out == io.Discard {
		return r.b.errOut
	}
	return r.b.out
}

func newStageRun(b *builder, i int) *stageRun {
	return &stageRun{b: b, index: i, stage: &b.df.Stages[i], args: newArgScope(b.opts.BuildArgs, b.usedArgs)}
}

func (r *stageRun) run(ctx context.Context) (_ *stageResult, retErr error) {
	defer func() {
		if r.ctr != nil {
			r.b.removeContainer(r.ctr)
		}
	}()
	if err := r.from(ctx); err != nil {
		return nil, err
	}
	for _, cmd := range r.stage.Commands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r.step++
		r.header(cmd)
		if err := r.dispatch(ctx, cmd); err != nil {
			return nil, r.stepError(cmd, err)
		}
	}
	return r.result(ctx)
}

// header prints Buildah's `STEP n/m: INSTRUCTION` line.
func (r *stageRun) header(cmd instructions.Command) {
	r.headerText(instructionText(r.b.df, cmd))
}

// headerFrom prints the FROM line with the base name expanded, as Buildah does.
func (r *stageRun) headerFrom(base string) {
	text := "FROM " + base
	if r.stage.Name != "" {
		text += " AS " + r.stage.Name
	}
	r.headerText(text)
}

func (r *stageRun) headerText(text string) {
	prefix := ""
	if len(r.b.df.Stages) > 1 {
		prefix = fmt.Sprintf("[%d/%d] ", r.index+1, len(r.b.df.Stages))
	}
	fmt.Fprintf(r.b.out, "%sSTEP %d/%d: %s\n", prefix, r.step, len(r.stage.Commands)+1, text)
}

func (r *stageRun) stepError(cmd instructions.Command, err error) error {
	if _, ok := err.(*StepError); ok {
		return err
	}
	return &StepError{File: r.b.df.File, Line: commandLine(cmd), Instruction: instructionText(r.b.df, cmd), Err: err}
}

// env is what the stage's words expand against: its ARGs, then its ENV.
func (r *stageRun) env() envGetter {
	return newEnvGetter(r.args.vars, r.config.Config.Env)
}

func (r *stageRun) expand(word string) (string, error) {
	return r.b.expander(r.env())(word)
}

// dispatch runs one instruction.
func (r *stageRun) dispatch(ctx context.Context, cmd instructions.Command) error {
	switch c := cmd.(type) {
	case *instructions.ArgCommand:
		return r.arg(c)
	case *instructions.RunCommand:
		return r.run1(ctx, c)
	case *instructions.CopyCommand:
		return r.copyStep(ctx, c, copySpec{from: c.From, chown: c.Chown, chmod: c.Chmod, paths: c.SourcesAndDest})
	case *instructions.AddCommand:
		return r.copyStep(ctx, c, copySpec{add: true, chown: c.Chown, chmod: c.Chmod, paths: c.SourcesAndDest})
	case *instructions.WorkdirCommand:
		if err := r.meta(cmd); err != nil {
			return err
		}
		r.dirs = append(r.dirs, pendingDir{path: r.config.Config.WorkingDir, user: r.config.Config.User})
		return nil
	}
	if commit.IsMetadata(cmd) {
		return r.meta(cmd)
	}
	return fmt.Errorf("instruction %s is %w", strings.ToUpper(cmd.Name()), ErrNotSupported)
}

func (r *stageRun) arg(c *instructions.ArgCommand) error {
	for _, kv := range c.Args {
		if err := r.args.declare(kv, r.b.global, r.expand); err != nil {
			return err
		}
	}
	r.key = stepKey(r.key, c.String(), r.args.env(), "")
	return nil
}

// meta applies a metadata instruction to the configuration; no layer, no container.
func (r *stageRun) meta(cmd instructions.Command) error {
	if err := commit.ApplyInstruction(&r.config, cmd, r.env(), r.b.df.Escape, &r.cmds); err != nil {
		return err
	}
	for _, e := range r.config.Config.Env {
		if len(e) > maxValue {
			k, _, _ := strings.Cut(e, "=")
			return fmt.Errorf("the value of %s is over the limit of %d bytes", k, maxValue)
		}
	}
	text := instructionText(r.b.df, cmd)
	r.key = stepKey(r.key, text, r.args.env(), "")
	r.pending = append(r.pending, text)
	return nil
}

// stepKey derives the cache key of a step from the key before it, the instruction as
// written, the ARG values it can see and any extra input (sources, format).
func stepKey(parent, instruction string, args []string, extra string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", parent, instruction, strings.Join(args, "\n"), extra)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newLex(escape rune) *shell.Lex {
	if escape == 0 {
		escape = '\\'
	}
	return shell.NewLex(escape)
}
