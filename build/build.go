package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/forge-build/forge/rootless"
	"github.com/forge-build/forge/rootless/sandbox"
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
	Secrets    []Secret // --secret: for RUN --mount=type=secret
	// Volumes are bind-mounted into every RUN step (--volume), as Buildah's are. They are
	// not part of any cache key: what a step reads from one is the user's business.
	Volumes []sandbox.Volume
	// CacheMountDir keeps RUN --mount=type=cache directories; default CacheMountDir(the
	// store's graph root).
	CacheMountDir string
	Tags          []string // names of the final image (storage.LocalName applied)
	// DigestCachePath keeps the context files' content digests between builds.
	DigestCachePath   string
	IgnoreChownErrors bool
	// CacheTo and CacheFrom are registry repositories that share step results between
	// machines (--cache-to, --cache-from); CacheTTL ignores older entries (0: no limit).
	CacheTo   string
	CacheFrom []string
	CacheTTL  time.Duration
	// Timestamp, when set (--timestamp, SOURCE_DATE_EPOCH), is the created time of every
	// image the build makes and the time of every file in its new layers, which are then
	// reproducible; it is part of every cache key.
	Timestamp *time.Time
	// Jobs is how many stages may build at once (--jobs); 0 means the number of CPUs.
	Jobs int
	// BuildContexts are the --build-context directories and images that COPY --from
	// and FROM name.
	BuildContexts []NamedContext
	Out           io.Writer // STEP lines and the output of RUN steps
	Err           io.Writer // pull progress
	// Quiet (-q) leaves out the pull progress; the caller sets Out to io.Discard, and RUN
	// steps then print on Err, so that a failing command's output is never lost.
	Quiet  bool
	Logger *slog.Logger

	// Isolation of RUN steps: rootless.IsolationChroot, or empty for namespaces.
	Isolation rootless.Isolation
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
	res, err := b.buildStages(ctx, target)
	if err != nil {
		return "", err
	}
	b.remote.close() // no step looks anything up any more; the pushes have ended
	if ctx.Err() != nil {
		return "", context.Cause(ctx) // interrupted while the pushes ran
	}
	b.remote.link(ctx)
	b.warnUnusedArgs()
	return b.finish(ctx, res)
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

// stageIndex resolves a stage reference (name or index) that must exist before from. A
// --build-context of that name hides the stage.
func (b *builder) stageIndex(ref string, before int) (int, bool) {
	if _, ok := b.namedContext(ref); ok {
		return 0, false
	}
	if i, ok := b.names[strings.ToLower(ref)]; ok && i < before {
		return i, true
	}
	if n, err := strconv.Atoi(ref); err == nil && n >= 0 && n < before {
		return n, true
	}
	return 0, false
}

// stageGraph finds the stages the target depends on through FROM, COPY --from and RUN
// --mount from=, with names expanded by the global ARGs, and what each of them uses. A
// reference only known once its stage runs (an ARG of that stage) is still built on
// demand. FROM a --build-context directory is refused here, at its line.
func (b *builder) stageGraph(target int) (needed map[int]bool, deps map[int][]int, err error) {
	needed, deps = map[int]bool{}, map[int][]int{}
	expand := b.expander(newEnvGetter(b.global, nil))
	var visit func(i int) error
	visit = func(i int) error {
		if needed[i] {
			return nil
		}
		needed[i] = true
		st := &b.df.Stages[i]
		if base, err := expand(st.BaseName); err == nil {
			if nc, ok := b.namedContext(base); ok && nc.Dir != "" {
				return &StepError{File: b.df.File, Line: fromLine(st), Instruction: "FROM " + st.BaseName,
					Err: fmt.Errorf("FROM a --build-context directory (%s) is %w", nc.Name, ErrNotSupported)}
			}
		}
		for _, ref := range stageRefs(st) {
			name, err := expand(ref)
			if err != nil {
				continue
			}
			if dep, ok := b.stageIndex(name, i); ok {
				deps[i] = append(deps[i], dep)
				if err := visit(dep); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return needed, deps, visit(target)
}

// stageRefs are the names a stage uses other stages (or images) by, unexpanded.
func stageRefs(st *instructions.Stage) []string {
	refs := []string{st.BaseName}
	for _, cmd := range st.Commands {
		switch c := cmd.(type) {
		case *instructions.CopyCommand:
			if c.From != "" {
				refs = append(refs, c.From)
			}
		case *instructions.RunCommand:
			if !slices.Contains(c.FlagsUsed, "mount") {
				continue
			}
			for _, m := range instructions.GetMounts(c) {
				if m.From != "" {
					refs = append(refs, m.From)
				}
			}
		}
	}
	return refs
}

// warnUnusedArgs tells about --build-arg values no ARG consumed, as Docker does.
func (b *builder) warnUnusedArgs() {
	var unused []string
	for k := range b.opts.BuildArgs {
		if !b.usedArgs[k] && (k != "SOURCE_DATE_EPOCH" || b.opts.Timestamp == nil) {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		b.log.Warn("build args were not consumed: " + strings.Join(unused, ", "))
	}
}
