package cli

import (
	"context"
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/storage"
)

func fromCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "from",
		Usage:     "make a working container from an image (or from scratch) and print its name",
		ArgsUsage: "IMAGE",
		Flags: append(registryFlags(),
			quietFlag("print no pull progress"),
			&ucli.StringFlag{Name: "name", Usage: "container `NAME` (default: IMAGE-working-container[-N])"},
			&ucli.StringFlag{Name: "pull", Value: "missing", Usage: "pull `POLICY`: always, missing or never"},
		),
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 1, 1, "[flags] IMAGE"); err != nil {
				return err
			}
			policy, err := storage.ParsePullPolicy(c.String("pull"))
			if err != nil {
				return fmt.Errorf("--pull: %w", err)
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				ctr, err := s.From(ctx, c.Args().First(), storage.FromOptions{
					Name: c.String("name"), Pull: policy, Registry: registryOptions(c), Progress: progress(c),
				})
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, ctr.Name)
				return nil
			})
		},
	}
}
