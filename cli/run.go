package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/build"
	"github.com/forge-build/forge/rootless"
	"github.com/forge-build/forge/rootless/sandbox"
	"github.com/forge-build/forge/storage"
)

func runCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "run",
		Usage:     "run a command in a working container (default: its ENTRYPOINT and CMD)",
		ArgsUsage: "CONTAINER [--] [COMMAND [ARG...]]",
		Flags: []ucli.Flag{
			&ucli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set `KEY=VALUE` for the command"},
			&ucli.StringFlag{Name: "workingdir", Usage: "working `DIR` (default: the image's)"},
			&ucli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "`USER[:GROUP]` to run as, by name or number"},
			&ucli.StringSliceFlag{Name: "volume", Aliases: []string{"v"}, Usage: "bind `SRC:DEST[:ro]` into the container"},
			&ucli.StringFlag{Name: "network", Aliases: []string{"net"}, Value: "host", Usage: "`MODE`: host or none"},
			&ucli.StringFlag{Name: "hostname", Usage: "`NAME` of the sandbox's host"},
			&ucli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the command a terminal"},
			&ucli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep standard input open"},
		},
		Action: runAction,
	}
}

func runAction(c *ucli.Context) error {
	if c.NArg() < 1 {
		return fmt.Errorf("usage: forge run [flags] CONTAINER [--] [COMMAND [ARG...]]")
	}
	args := c.Args().Tail()
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	volumes, err := parseVolumes(c.StringSlice("volume"))
	if err != nil {
		return err
	}
	network := c.String("network")
	if network != "host" && network != "none" {
		return fmt.Errorf("--network %q: want host or none", network)
	}
	var stdin io.Reader
	if c.Bool("interactive") || c.Bool("tty") {
		stdin = c.App.Reader
	}
	return withStore(c, func(ctx context.Context, s *storage.Store) error {
		ctr, err := s.Container(c.Args().First())
		if err != nil {
			return err
		}
		log, _ := logger(c)
		status, err := build.Run(ctx, s, ctr, build.RunOptions{
			Args: args, Env: hostEnv(c.StringSlice("env")), WorkDir: c.String("workingdir"), User: c.String("user"),
			Hostname: c.String("hostname"), Network: network, Volumes: volumes, TTY: c.Bool("tty"),
			Stdin: stdin, Stdout: c.App.Writer, Stderr: c.App.ErrWriter, Logger: log,
			Isolation: isolationOf(c).Isolation,
		})
		if err != nil {
			return err
		}
		if status != 0 {
			return &rootless.ExitError{Code: status}
		}
		return nil
	})
}

// hostEnv completes `--env KEY` (no value) from forge's own environment, as Buildah and
// Docker do; a KEY that is not set there is left out.
func hostEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, e := range env {
		if strings.Contains(e, "=") {
			out = append(out, e)
		} else if v, ok := os.LookupEnv(e); ok {
			out = append(out, e+"="+v)
		}
	}
	return out
}

// parseVolumes reads --volume SRC:DEST[:OPTIONS]; the source must exist.
func parseVolumes(specs []string) ([]sandbox.Volume, error) {
	var out []sandbox.Volume
	for _, spec := range specs {
		parts := strings.Split(spec, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("--volume %q: want SRC:DEST[:ro]", spec)
		}
		v := sandbox.Volume{Source: parts[0], Dest: parts[1]}
		if len(parts) == 3 {
			for _, opt := range strings.Split(parts[2], ",") {
				switch opt {
				case "ro":
					v.ReadOnly = true
				case "rw", "z", "Z":
				default:
					return nil, fmt.Errorf("--volume %q: unknown option %q (want ro or rw)", spec, opt)
				}
			}
		}
		if !strings.HasPrefix(v.Dest, "/") {
			return nil, fmt.Errorf("--volume %q: destination must be an absolute path", spec)
		}
		v.Dest = path.Clean(v.Dest)
		switch v.Dest {
		case "/", "/dev", "/proc", "/sys":
			return nil, fmt.Errorf("--volume %q: destination %s would hide the container's own", spec, v.Dest)
		}
		for _, o := range out {
			if o.Dest == v.Dest {
				return nil, fmt.Errorf("--volume %q: destination %s is given twice", spec, v.Dest)
			}
		}
		abs, err := filepath.Abs(v.Source)
		if err != nil {
			return nil, fmt.Errorf("--volume %q: %w", spec, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("--volume %q: source %s does not exist", spec, abs)
		}
		// The host path the symlinks lead to: chroot isolation copies the tree it names.
		if v.Source, err = filepath.EvalSymlinks(abs); err != nil {
			return nil, fmt.Errorf("--volume %q: %w", spec, err)
		}
		out = append(out, v)
	}
	return out, nil
}
