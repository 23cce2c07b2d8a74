package cli

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/build"
	"github.com/forge-build/forge/rootless"
	"github.com/forge-build/forge/storage"
)

func budCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "bud",
		Aliases:   []string{"build", "build-using-dockerfile"},
		Usage:     "build an image from a Dockerfile (or Containerfile)",
		ArgsUsage: "[CONTEXT]",
		Flags: append(registryFlags(),
			&ucli.StringSliceFlag{Name: "tag", Aliases: []string{"t"}, Usage: "`NAME` of the image (repeatable; docker://REF pushes it there)"},
			&ucli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "`PATH` of the Dockerfile (- for standard input)"},
			&ucli.StringSliceFlag{Name: "build-arg", Usage: "`KEY=VALUE` for an ARG (KEY alone takes the value from the environment)"},
			&ucli.StringFlag{Name: "target", Usage: "build up to the `STAGE` named"},
			&ucli.BoolFlag{Name: "no-cache", Usage: "run every step, not reusing cached results"},
			&ucli.BoolFlag{Name: "layers", Value: true, Usage: "keep a cached image for each step (false: one layer per stage)"},
			&ucli.StringFlag{Name: "pull", Value: "missing", Usage: "pull `POLICY` for base images: always, missing or never"},
			&ucli.StringFlag{Name: "iidfile", Usage: "write the image ID to `FILE`"},
			quietFlag("print only the image ID"),
			&ucli.StringFlag{Name: "format", Value: "oci", Usage: "image `FORMAT`: oci or docker"},
			&ucli.StringSliceFlag{Name: "label", Usage: "add `KEY=VALUE` to the image's labels (repeatable)"},
			&ucli.StringFlag{Name: "network", Value: "host", Usage: "network `MODE` of RUN steps: host or none"},
			&ucli.StringSliceFlag{Name: "volume", Aliases: []string{"v"}, Usage: "bind `SRC:DEST[:ro]` into every RUN step (repeatable)"},
			&ucli.StringSliceFlag{Name: "secret", Usage: "`id=ID,src=FILE` or id=ID,env=VAR: a secret for RUN --mount=type=secret (repeatable)"},
			&ucli.StringFlag{Name: "cache-to", Usage: "push each step's result to registry `REPO` (tagged by its cache key)"},
			&ucli.StringSliceFlag{Name: "cache-from", Usage: "look steps up in registry `REPO` before running them (repeatable)"},
			&ucli.DurationFlag{Name: "cache-ttl", Usage: "ignore cached step results older than `DURATION` (e.g. 168h; 0: --no-cache)"},
			&ucli.Int64Flag{Name: "timestamp", Usage: "reproducible build: created time and file times in `SECONDS` since the epoch " +
				"(default: --build-arg SOURCE_DATE_EPOCH, then $SOURCE_DATE_EPOCH; unset: now)"},
			&ucli.IntFlag{Name: "jobs", Usage: "build up to `N` independent stages at once (default: the number of CPUs)"},
			&ucli.StringSliceFlag{Name: "build-context", Usage: "`NAME=DIR` or NAME=docker-image://IMAGE for COPY --from=NAME and FROM NAME (repeatable)"},
		),
		Action: budAction,
	}
}

func budAction(c *ucli.Context) error {
	if err := needArgs(c, 0, 1, "[flags] [CONTEXT]"); err != nil {
		return err
	}
	o, err := budOptions(c)
	if err != nil {
		return err
	}
	return withStore(c, func(ctx context.Context, s *storage.Store) error {
		id, err := rootless.Current()
		if err != nil {
			return err
		}
		o.IgnoreChownErrors = id.Mode == rootless.ModeSingle
		o.Isolation = isolationOf(c).Isolation
		o.DigestCachePath = filepath.Join(s.GraphRoot(), "forge-context-digests.json")
		log, _ := logger(c)
		o.Logger = log
		image, err := build.Build(ctx, s, o)
		if err != nil {
			return err
		}
		if err := pushTags(ctx, c, s, image); err != nil {
			return err
		}
		if f := c.String("iidfile"); f != "" {
			if err := os.WriteFile(f, []byte("sha256:"+image), 0o644); err != nil {
				return fmt.Errorf("--iidfile: %w", err)
			}
		}
		fmt.Fprintln(c.App.Writer, image)
		return nil
	})
}

// budOptions maps the flags of `forge bud` onto build.Options.
func budOptions(c *ucli.Context) (build.Options, error) {
	pull, err := storage.ParsePullPolicy(c.String("pull"))
	if err != nil {
		return build.Options{}, fmt.Errorf("--pull: %w", err)
	}
	network := c.String("network")
	if network != "host" && network != "none" {
		return build.Options{}, fmt.Errorf("--network %q: want host or none", network)
	}
	args, err := buildArgs(c.StringSlice("build-arg"))
	if err != nil {
		return build.Options{}, err
	}
	secrets, err := budSecrets(c.StringSlice("secret"))
	if err != nil {
		return build.Options{}, err
	}
	ts, err := sourceDate(c, args["SOURCE_DATE_EPOCH"])
	if err != nil {
		return build.Options{}, err
	}
	volumes, err := parseVolumes(c.StringSlice("volume"))
	if err != nil {
		return build.Options{}, err
	}
	o := build.Options{
		ContextDir: c.Args().First(), Dockerfile: c.String("file"), Stdin: c.App.Reader,
		BuildArgs: args, Target: c.String("target"), NoCache: c.Bool("no-cache"), NoLayers: !c.Bool("layers"),
		Pull: pull, Registry: registryOptions(c), Format: c.String("format"), Labels: c.StringSlice("label"),
		Network: network, Tags: c.StringSlice("tag"), Out: c.App.Writer, Err: c.App.ErrWriter,
		Secrets: secrets, CacheTo: c.String("cache-to"), CacheFrom: c.StringSlice("cache-from"), CacheTTL: c.Duration("cache-ttl"),
		Timestamp: ts, Volumes: volumes,
	}
	if c.Bool("quiet") {
		o.Out, o.Quiet = io.Discard, true
	}
	switch {
	case o.CacheTTL < 0:
		return o, fmt.Errorf("--cache-ttl %s: want a duration of 0 or more", o.CacheTTL)
	case o.CacheTTL == 0 && c.IsSet("cache-ttl"):
		o.NoCache = true // as Buildah's: no cached result is young enough
	}
	if o.Jobs = c.Int("jobs"); o.Jobs < 0 {
		return o, fmt.Errorf("--jobs %d: want 1 or more (0: the number of CPUs)", o.Jobs)
	}
	for _, v := range c.StringSlice("build-context") {
		nc, err := build.ParseNamedContext(v)
		if err != nil {
			return o, err
		}
		o.BuildContexts = append(o.BuildContexts, nc)
	}
	if o.Format != "oci" && o.Format != "docker" {
		return o, fmt.Errorf("--format %q: want oci or docker", o.Format)
	}
	for _, t := range o.Tags {
		if strings.HasPrefix(t, "docker://") {
			continue
		}
		if _, err := storage.LocalName(t); err != nil {
			return o, fmt.Errorf("--tag: %w", err)
		}
	}
	return o, nil
}

// buildArgs reads --build-arg KEY=VALUE; KEY alone takes its value from the environment.
func buildArgs(values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		k, val, found := strings.Cut(v, "=")
		if k == "" {
			return nil, fmt.Errorf("--build-arg %q: want KEY=VALUE", v)
		}
		if !found {
			env, ok := os.LookupEnv(k)
			if !ok {
				continue
			}
			val = env
		}
		out[k] = val
	}
	return out, nil
}

// budSecrets reads the --secret flags; a secret file must exist (it is read when a step
// mounts it).
func budSecrets(values []string) ([]build.Secret, error) {
	var out []build.Secret
	for _, v := range values {
		s, err := parseSecret(v, os.LookupEnv)
		if err != nil {
			return nil, err
		}
		if s.File != "" {
			if s.File, err = filepath.Abs(s.File); err != nil {
				return nil, fmt.Errorf("--secret id=%s: %w", s.ID, err)
			}
			if fi, err := os.Stat(s.File); err != nil {
				return nil, fmt.Errorf("--secret id=%s: %w", s.ID, err)
			} else if fi.IsDir() {
				return nil, fmt.Errorf("--secret id=%s: %s is a directory", s.ID, s.File)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// parseSecret parses one --secret value as Docker does: id=ID plus src=FILE (or
// source=FILE), or env=VAR, optionally type=file|env; with id alone, the variable ID when
// it is set, else the file ID. A value read from the environment is never printed.
func parseSecret(value string, lookupEnv func(string) (string, bool)) (build.Secret, error) {
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return build.Secret{}, fmt.Errorf("--secret %q: %w", value, err)
	}
	var id, src, env, typ string
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return build.Secret{}, fmt.Errorf("--secret %q: %q is not KEY=VALUE", value, f)
		}
		switch strings.ToLower(k) {
		case "type":
			if v != "file" && v != "env" {
				return build.Secret{}, fmt.Errorf("--secret %q: type must be file or env", value)
			}
			typ = v
		case "id":
			id = v
		case "src", "source":
			src = v
		case "env":
			env = v
		default:
			return build.Secret{}, fmt.Errorf("--secret %q: unknown key %q (want id, src, env or type)", value, k)
		}
	}
	if id == "" {
		return build.Secret{}, fmt.Errorf("--secret %q: id is required", value)
	}
	if typ == "env" && env == "" {
		env, src = src, ""
	}
	if src != "" && env != "" {
		return build.Secret{}, fmt.Errorf("--secret id=%s: give src or env, not both", id)
	}
	if src == "" && env == "" {
		if _, ok := lookupEnv(id); ok {
			env = id
		} else {
			src = id
		}
	}
	if src != "" {
		return build.Secret{ID: id, File: src}, nil
	}
	v, ok := lookupEnv(env)
	if !ok {
		return build.Secret{}, fmt.Errorf("--secret id=%s: environment variable %s is not set", id, env)
	}
	return build.Secret{ID: id, Value: []byte(v)}, nil
}

// pushTags pushes the built image to the docker:// tags, as Buildah does with -t docker://.
func pushTags(ctx context.Context, c *ucli.Context, s *storage.Store, image string) error {
	for _, t := range c.StringSlice("tag") {
		if !strings.HasPrefix(t, "docker://") {
			continue
		}
		_, err := s.Push(ctx, image, t, storage.PushOptions{Registry: registryOptions(c), Format: c.String("format"), Progress: c.App.ErrWriter})
		if err != nil {
			return err
		}
	}
	return nil
}
