// Package build runs the steps of an image build against working containers: RUN in the
// sandbox, COPY and ADD into the mounted root filesystem. The scripted verbs (`forge run`,
// `forge copy`, `forge add`) and, later, Dockerfile builds call the same functions.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/forge-build/forge/rootless"
	"github.com/forge-build/forge/rootless/sandbox"
	"github.com/forge-build/forge/storage"
)

// ErrNoCommand is returned when there is nothing to run: no arguments and an image
// without ENTRYPOINT or CMD.
var ErrNoCommand = errors.New("no command given, and the image has no ENTRYPOINT or CMD")

// RunOptions are the flags of `forge run`; the zero value runs the image's default
// command with its own environment, user and working directory on the host network.
type RunOptions struct {
	Args     []string // empty: ENTRYPOINT + CMD
	Env      []string // KEY=VALUE, added to (or replacing) the image's
	WorkDir  string
	User     string
	Hostname string
	Network  string // "host" (default) or "none"
	Volumes  []sandbox.Volume
	Tmpfs    []sandbox.Tmpfs
	TTY      bool
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
	Logger   *slog.Logger
	// Isolation is rootless.IsolationChroot to run by chroot alone; empty for namespaces.
	Isolation rootless.Isolation
}

// Run runs a command in a working container and returns its exit status. The changes it
// makes stay in the container's layer. When ctx is cancelled the command is killed and Run
// returns an error carrying context.Cause(ctx).
func Run(ctx context.Context, s *storage.Store, c *storage.Container, o RunOptions) (status int, retErr error) {
	args := o.Args
	if len(args) == 0 {
		args = append(append([]string{}, c.Config.Config.Entrypoint...), c.Config.Config.Cmd...)
	}
	if len(args) == 0 {
		return 0, ErrNoCommand
	}
	rootfs, err := s.Mount(c)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err := s.Unmount(c, false); err != nil && retErr == nil {
			retErr = err
		}
	}()
	cfg := sandbox.Config{
		RootFS:   rootfs,
		Args:     args,
		Env:      mergeEnv(c.Config.Config.Env, o.Env),
		WorkDir:  firstNonEmpty(o.WorkDir, c.Config.Config.WorkingDir, "/"),
		User:     firstNonEmpty(o.User, c.Config.Config.User),
		Hostname: firstNonEmpty(o.Hostname, shortID(c.ID)),
		Network:  o.Network,
		Volumes:  o.Volumes,
		Tmpfs:    o.Tmpfs,
		TTY:      o.TTY,
		Stdin:    o.Stdin,
		Stdout:   o.Stdout,
		Stderr:   o.Stderr,
		Logger:   o.Logger,

		Isolation: o.Isolation,
	}
	status, err = sandbox.Run(ctx, cfg)
	if err != nil {
		return status, fmt.Errorf("run in %s: %w", c.Name, err)
	}
	if ctx.Err() != nil {
		// The sandbox was killed because the work was cancelled (Ctrl-C, SIGTERM): its
		// status (137) is not the command's, so report why it stopped instead.
		return -1, fmt.Errorf("run in %s: stopped: %w", c.Name, context.Cause(ctx))
	}
	return status, nil
}

// mergeEnv returns base with each KEY=VALUE of extra added or replacing the same key.
func mergeEnv(base, extra []string) []string {
	out := append([]string{}, base...)
	for _, e := range extra {
		key, _, _ := strings.Cut(e, "=")
		replaced := false
		for i, b := range out {
			if k, _, _ := strings.Cut(b, "="); k == key {
				out[i], replaced = e, true
			}
		}
		if !replaced {
			out = append(out, e)
		}
	}
	return out
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
