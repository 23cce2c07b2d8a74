package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/forge-build/forge/storage"
)

// copySpec is a COPY or ADD step after parsing.
type copySpec struct {
	add           bool
	from          string
	chown, chmod  string
	link, parents bool
	exclude       []string
	checksum      string
	paths         instructions.SourcesAndDest
}

// withFlags adds the flags of the command that the dispatcher does not pass.
func (spec copySpec) withFlags(cmd instructions.Command) copySpec {
	switch c := cmd.(type) {
	case *instructions.CopyCommand:
		spec.link, spec.parents, spec.exclude = c.Link, c.Parents, c.ExcludePatterns
	case *instructions.AddCommand:
		spec.link, spec.exclude, spec.checksum = c.Link, c.ExcludePatterns, c.Checksum
	}
	return spec
}

// copyInput is where a COPY or ADD reads: the build context, a directory named with
// --build-context, or an image (an earlier stage's, an image's, an image --build-context).
type copyInput struct {
	context *Context
	name    string // of a --build-context directory
	imageID string
	stage   string // the cache key of an earlier stage's result (its state, see stateKey)
}

// copyStep runs COPY or ADD: sources from the context, an earlier stage or an image, and
// heredocs.
func (r *stageRun) copyStep(ctx context.Context, cmd instructions.Command, spec copySpec) error {
	spec = spec.withFlags(cmd)
	sources, inline, err := r.expandCopy(&spec)
	if err != nil {
		return err
	}
	if err := spec.check(sources, inline); err != nil {
		return err
	}
	opts := CopyOptions{Chown: spec.chown, Chmod: spec.chmod, Add: spec.add,
		IgnoreChownErrors: r.b.opts.IgnoreChownErrors, SourcesInContext: true,
		Exclude: spec.exclude, Parents: spec.parents, Inline: inline, Checksum: spec.checksum}
	in := copyInput{context: r.b.bctx}
	if spec.from != "" {
		if in, err = r.copySource(ctx, spec.from); err != nil {
			return err
		}
	}
	extra := "from:" + in.imageID
	if in.stage != "" {
		// The stage's files, not its history: a stage rebuilt the same hits again.
		extra = "from stage:" + in.stage
	}
	if in.context != nil {
		opts.Context, opts.ContextDir = in.context, in.context.Dir
		d, err := r.contextDigest(ctx, in.context, sources, spec)
		if err != nil {
			return err
		}
		extra = d
		if in.name != "" {
			extra = "context:" + in.name + "\n" + d
		}
	}
	extra += "\n" + strings.Join(sources, "\n") + "\n" + spec.paths.DestPath + "\n" + inlineDigest(inline)
	text := instructionText(r.b.df, cmd)
	do := func(ctx context.Context, ctr *storage.Container) error {
		if in.imageID != "" {
			// Mounted only when the step runs: a cache hit mounts nothing.
			dir, err := r.b.mountImage(in.imageID)
			if err != nil {
				return err
			}
			opts.ContextDir = dir
		}
		return r.copyInto(ctx, ctr, sources, spec.paths.DestPath, opts)
	}
	if spec.link {
		// The layer does not depend on the image below: its key leaves out the state
		// before it, so what can change the files is spelled out.
		linkExtra := strings.Join([]string{extra, "chown:" + spec.chown, "chmod:" + spec.chmod,
			"workdir:" + r.config.Config.WorkingDir}, "\n")
		return r.linkStep(ctx, text, extra, linkExtra, do)
	}
	return r.layerStep(ctx, text, extra, func(ctx context.Context) error { return do(ctx, r.ctr) })
}

// expandCopy expands the variables of a COPY or ADD as Docker does: flags, sources and
// destination as words, heredoc contents (unless the delimiter is quoted) without quote
// processing.
func (r *stageRun) expandCopy(spec *copySpec) ([]string, []InlineFile, error) {
	x := r.expand
	var err error
	for _, w := range []*string{&spec.from, &spec.chown, &spec.chmod, &spec.checksum, &spec.paths.DestPath} {
		if *w, err = x(*w); err != nil {
			return nil, nil, err
		}
	}
	sources := make([]string, len(spec.paths.SourcePaths))
	for i, src := range spec.paths.SourcePaths {
		if sources[i], err = x(src); err != nil {
			return nil, nil, err
		}
	}
	var inline []InlineFile
	for _, sc := range spec.paths.SourceContents {
		data := sc.Data
		if sc.Expand {
			lex := newLex(r.b.df.Escape)
			lex.SkipProcessQuotes = true
			if data, _, err = lex.ProcessWord(data, r.env()); err != nil {
				return nil, nil, fmt.Errorf("heredoc %s: %w", sc.Path, err)
			}
		}
		inline = append(inline, InlineFile{Name: sc.Path, Data: data})
	}
	return sources, inline, nil
}

// inlineDigest sums the heredoc files of a step for its cache key.
func inlineDigest(files []InlineFile) string {
	if len(files) == 0 {
		return ""
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00%s", f.Name, len(f.Data), f.Data)
	}
	return "inline:" + hex.EncodeToString(h.Sum(nil))
}

// chownByName reports whether --chown names a user or group rather than numbers.
func chownByName(chown string) bool {
	if chown == "" {
		return false
	}
	user, group, _ := strings.Cut(chown, ":")
	return !isStageNumber(user) || (group != "" && !isStageNumber(group))
}

// copyInto copies into a working container, whose working directory comes from the
// stage's configuration.
func (r *stageRun) copyInto(ctx context.Context, ctr *storage.Container, sources []string, dest string, opts CopyOptions) error {
	ctr.Config.Config.WorkingDir = r.config.Config.WorkingDir
	err := Copy(ctx, r.b.store, ctr, sources, dest, opts)
	if errors.Is(err, ErrNoSource) {
		return fmt.Errorf("%w", err)
	}
	return err
}

// contextDigest sums the files of a context that a COPY or ADD would read (URLs by their
// text).
func (r *stageRun) contextDigest(ctx context.Context, c *Context, sources []string, spec copySpec) (string, error) {
	var local []string
	for _, s := range sources {
		if !(spec.add && isURL(s)) {
			local = append(local, s)
		}
	}
	if len(local) == 0 {
		return "", nil
	}
	d, err := c.Digest(ctx, local, DigestOptions{Cache: r.b.digests, Exclude: spec.exclude, Parents: spec.parents})
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// copySource finds what COPY --from names: a --build-context (which wins, as in
// BuildKit), an earlier stage (by name or index), or an image, which is pulled as --pull
// says.
func (r *stageRun) copySource(ctx context.Context, from string) (copyInput, error) {
	if nc, ok := r.b.namedContext(from); ok {
		if nc.context != nil {
			return copyInput{context: nc.context, name: nc.Name}, nil
		}
		return r.pullSource(ctx, from, nc.Image)
	}
	if i, ok := r.b.stageIndex(from, r.index); ok {
		dep, err := r.b.buildStage(ctx, i)
		if err != nil {
			return copyInput{}, err
		}
		if dep.imageID == "" {
			return copyInput{}, fmt.Errorf("--from=%s: the stage is empty (FROM scratch with no files)", from)
		}
		return copyInput{imageID: dep.imageID, stage: dep.key}, nil
	}
	if _, isLater := r.b.names[strings.ToLower(from)]; isLater || isStageNumber(from) {
		return copyInput{}, fmt.Errorf("--from=%s: no stage named %s before this one", from, from)
	}
	return r.pullSource(ctx, from, from)
}

// pullSource pulls the image that COPY --from=from names as ref.
func (r *stageRun) pullSource(ctx context.Context, from, ref string) (copyInput, error) {
	img, err := r.b.store.Pull(ctx, ref, storage.PullOptions{Registry: r.b.opts.Registry, Policy: r.b.opts.Pull, Progress: r.b.pullProgress()})
	if err != nil {
		return copyInput{}, fmt.Errorf("--from=%s: %w", from, err)
	}
	return copyInput{imageID: img.ID}, nil
}

func isStageNumber(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
