package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/rootless"
	"github.com/forge-build/forge/storage"
)

// unshareEnv marks the processes started by `forge unshare`: forge's namespace outlives
// each forge command there, so mounts stay usable.
const unshareEnv = "_FORGE_UNSHARE"

func unshareCommand() *ucli.Command {
	return &ucli.Command{
		Name:            "unshare",
		Usage:           "run a command (default: a shell) inside forge's user namespace",
		ArgsUsage:       "[COMMAND [ARG...]]",
		SkipFlagParsing: false,
		Action: func(c *ucli.Context) error {
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				info, err := s.Info()
				if err != nil {
					return err
				}
				args := c.Args().Slice()
				if len(args) == 0 {
					shell := os.Getenv("SHELL")
					if shell == "" {
						shell = "/bin/sh"
					}
					args = []string{shell}
				}
				cmd := exec.CommandContext(ctx, args[0], args[1:]...)
				cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, c.App.Writer, c.App.ErrWriter
				cmd.Env = append(os.Environ(), unshareEnv+"=1", "CONTAINERS_GRAPHROOT="+info.GraphRoot, "CONTAINERS_RUNROOT="+info.RunRoot)
				return exitStatus(cmd.Run(), args[0])
			})
		},
	}
}

// exitStatus turns a finished command's error into forge's exit status.
func exitStatus(err error, name string) error {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit):
		return &rootless.ExitError{Code: exit.ExitCode()}
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, os.ErrNotExist):
		return &rootless.ExitError{Code: 127, Message: fmt.Sprintf("%s: command not found", name)}
	}
	return err
}
