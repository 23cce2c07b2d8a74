package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/forge-build/forge/storage"
)

// Options are the flags of `forge bud`. The zero value builds ./Dockerfile (or
// ./Containerfile) with the layer cache on.
type Options struct {
	ContextDir string            // default "."
	Dockerfile string            // path; "" finds Dockerfile or Containerfile in the context; "-" reads Stdin
	Stdin      io.Reader         // for Dockerfile "-"
	BuildArgs  map[string]string // --build-arg
	Target     string            // --target: the stage to build; default the last
	NoCache    bool              // --no-cache: run every step, but still record the results
	NoLayers   bool              // --layers=false: one layer per stage, no cache
	Pull       storage.PullPolicy
	Registry   storage.RegistryOptions
	Format     string   // "oci" (default) or "docker"
	Labels     []string // --label KEY=VALUE, applied to the final image
	Network    string   // RUN steps: "host" (default) or "none"
	Tags       []string // names of the final image (storage.LocalName applied)
	// DigestCachePath keeps the context files' content digests between builds.
	DigestCachePath   string
	IgnoreChownErrors bool
	Out               io.Writer // STEP lines and the output of RUN steps
	Err               io.Writer // pull progress
	Logger            *slog.Logger
}

// Build builds a Dockerfile and returns the ID of the final image.
func Build(ctx context.Context, s *storage.Store, o Options) (string, error) {
	b, err := newBuilder(ctx, s, o)
	if err != nil {
		return "", err
	}
	defer b.close()
	target, err := b.targetStage()
	if err != nil {
		return "", err
	}
	// Stages run in file order, so the output reads like the Dockerfile; a stage the
	// target does not need is skipped.
	needed := b.neededStages(target)
	for i := 0; i < target; i++ {
		if needed[i] {
			if _, err := b.buildStage(ctx, i); err != nil {
				return "", err
			}
		}
	}
	res, err := b.buildStage(ctx, target)
	if err != nil {
		return "", err
	}
	b.warnUnusedArgs()
	id, err := b.finish(ctx, res)
	if err != nil {
		return "", err
	}
	return id, nil
}

// readDockerfile finds and parses the Dockerfile the options name.
func readDockerfile(o Options, contextDir string) (*Dockerfile, string, error) {
	if o.Dockerfile == "-" {
		if o.Stdin == nil {
			return nil, "", errors.New("no standard input to read the Dockerfile from")
		}
		df, err := ParseDockerfile(o.Stdin, "Dockerfile")
		return df, "", err
	}
	path, name := o.Dockerfile, o.Dockerfile
	if path == "" {
		for _, n := range []string{"Dockerfile", "Containerfile"} {
			if _, err := os.Stat(filepath.Join(contextDir, n)); err == nil {
				path, name = filepath.Join(contextDir, n), n
				break
			}
		}
		if path == "" {
			return nil, "", fmt.Errorf("no Dockerfile or Containerfile in %s (use -f)", contextDir)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("open Dockerfile: %w", err)
	}
	defer f.Close()
	df, err := ParseDockerfile(f, name)
	return df, path, err
}

// targetStage returns the index of the stage to build.
func (b *builder) targetStage() (int, error) {
	if b.opts.Target == "" {
		return len(b.df.Stages) - 1, nil
	}
	if i, ok := b.names[strings.ToLower(b.opts.Target)]; ok {
		return i, nil
	}
	return 0, fmt.Errorf("--target %s: %s has no stage named %s", b.opts.Target, b.df.File, b.opts.Target)
}

// stageIndex resolves a stage reference (name or index) that must exist before from.
func (b *builder) stageIndex(ref string, before int) (int, bool) {
	if i, ok := b.names[strings.ToLower(ref)]; ok && i < before {
		return i, true
	}
	if n, err := strconv.Atoi(ref); err == nil && n >= 0 && n < before {
		return n, true
	}
	return 0, false
}

// neededStages finds the stages the target depends on through FROM and COPY --from,
// with names expanded by the global ARGs. A reference only known once its stage runs
// (an ARG of that stage) is still built on demand.
func (b *builder) neededStages(target int) map[int]bool {
	needed := map[int]bool{}
	expand := b.expander(newEnvGetter(b.global, nil))
	var visit func(i int)
	visit = func(i int) {
		if needed[i] {
			return
		}
		needed[i] = true
		st := &b.df.Stages[i]
		refs := []string{st.BaseName}
		for _, cmd := range st.Commands {
			if c, ok := cmd.(*instructions.CopyCommand); ok && c.From != "" {
				refs = append(refs, c.From)
			}
		}
		for _, ref := range refs {
			if name, err := expand(ref); err == nil {
				if dep, ok := b.stageIndex(name, i); ok {
					visit(dep)
				}
			}
		}
	}
	visit(target)
	return needed
}

// warnUnusedArgs tells about --build-arg values no ARG consumed, as Docker does.
func (b *builder) warnUnusedArgs() {
	var unused []string
	for k := range b.opts.BuildArgs {
		if !b.usedArgs[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		b.log.Warn("build args were not consumed: " + strings.Join(unused, ", "))
	}
}

// stageName is how a stage appears in messages.
func stageName(st *instructions.Stage, i int) string {
	if st.Name != "" {
		return st.Name
	}
	return strconv.Itoa(i)
}
