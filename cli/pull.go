package cli

import (
	"context"
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/storage"
)

func pullCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "pull",
		Usage:     "copy an image from a registry or another transport into local storage",
		ArgsUsage: "IMAGE",
		Flags: append(registryFlags(),
			quietFlag("print only the image ID"),
			&ucli.StringFlag{Name: "policy", Value: "always", Usage: "`POLICY`: always, missing or never"},
		),
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 1, 1, "[flags] IMAGE"); err != nil {
				return err
			}
			policy, err := storage.ParsePullPolicy(c.String("policy"))
			if err != nil {
				return err
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				img, err := s.Pull(ctx, c.Args().First(), storage.PullOptions{
					Registry: registryOptions(c), Policy: policy, Progress: progress(c),
				})
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, img.ID)
				return nil
			})
		},
	}
}
