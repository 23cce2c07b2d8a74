package cli

import (
	"context"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/build"
	"github.com/forge-build/forge/rootless"
	"github.com/forge-build/forge/storage"
)

func copyCommand() *ucli.Command { return copyOrAdd("copy", false) }

func addCommand() *ucli.Command { return copyOrAdd("add", true) }

func copyOrAdd(name string, add bool) *ucli.Command {
	usage := "copy files from the host into a working container"
	if add {
		usage = "like copy, but also unpack local tar archives and fetch URLs"
	}
	return &ucli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "CONTAINER SOURCE [SOURCE...] DESTINATION",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "chown", Usage: "owner `USER[:GROUP]` of the copied files (default 0:0)"},
			&ucli.StringFlag{Name: "chmod", Usage: "octal `MODE` of the copied files"},
			&ucli.StringFlag{Name: "contextdir", Usage: "`DIR` relative sources are read from and may not leave (default: .)"},
		},
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 3, -1, "[flags] CONTAINER SOURCE [SOURCE...] DESTINATION"); err != nil {
				return err
			}
			args := c.Args().Slice()
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				ctr, err := s.Container(args[0])
				if err != nil {
					return err
				}
				id, err := rootless.Current()
				if err != nil {
					return err
				}
				return build.Copy(ctx, s, ctr, args[1:len(args)-1], args[len(args)-1], build.CopyOptions{
					ContextDir: c.String("contextdir"), Chown: c.String("chown"), Chmod: c.String("chmod"),
					Add: add, IgnoreChownErrors: id.Mode == rootless.ModeSingle,
				})
			})
		},
	}
}
