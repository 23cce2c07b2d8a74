package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/rootless"
	"github.com/forge-build/forge/storage"
)

// errNeedUnshare explains why a mount made by a rootless forge would be useless.
var errNeedUnshare = errors.New("a rootless mount lives only in forge's mount namespace: run this inside `forge unshare`")

// requireSharedNamespace refuses mount and umount in a namespace that ends with forge.
func requireSharedNamespace(c *ucli.Context) error {
	info, err := rootless.Current()
	if err != nil {
		return err
	}
	if info.Mode != rootless.ModeHost && os.Getenv(unshareEnv) == "" {
		return errNeedUnshare
	}
	return nil
}

func mountCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "mount",
		Usage:     "mount a working container's root filesystem and print its path",
		ArgsUsage: "CONTAINER",
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 1, 1, "CONTAINER"); err != nil {
				return err
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				if err := requireSharedNamespace(c); err != nil {
					return err
				}
				ctr, err := s.Container(c.Args().First())
				if err != nil {
					return err
				}
				dir, err := s.Mount(ctr)
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, dir)
				return nil
			})
		},
	}
}

func umountCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "umount",
		Aliases:   []string{"unmount"},
		Usage:     "unmount a working container's root filesystem",
		ArgsUsage: "CONTAINER",
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 1, 1, "CONTAINER"); err != nil {
				return err
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				if err := requireSharedNamespace(c); err != nil {
					return err
				}
				ctr, err := s.Container(c.Args().First())
				if err != nil {
					return err
				}
				return s.Unmount(ctr, false)
			})
		},
	}
}
