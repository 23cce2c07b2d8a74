package cli

import (
	"context"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/storage"
)

func tagCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "tag",
		Usage:     "add names to a local image",
		ArgsUsage: "IMAGE NAME [NAME...]",
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 2, -1, "IMAGE NAME [NAME...]"); err != nil {
				return err
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				return s.Tag(ctx, c.Args().First(), c.Args().Tail()...)
			})
		},
	}
}
