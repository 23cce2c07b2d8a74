package cli

import (
	"context"
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/storage"
)

func rmCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "rm",
		Usage:     "remove working containers",
		ArgsUsage: "CONTAINER [CONTAINER...]",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove every working container"},
		},
		Action: func(c *ucli.Context) error {
			all := c.Bool("all")
			if all && c.NArg() > 0 || !all && c.NArg() == 0 {
				return fmt.Errorf("usage: forge rm CONTAINER [CONTAINER...] | --all")
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				names := c.Args().Slice()
				if all {
					list, err := s.Containers(ctx, false)
					if err != nil {
						return err
					}
					for _, e := range list {
						names = append(names, e.ID)
					}
				}
				for _, name := range names {
					ctr, err := s.Container(name)
					if err != nil {
						return err
					}
					if err := s.RemoveContainer(ctr); err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, ctr.ID)
				}
				return nil
			})
		},
	}
}
