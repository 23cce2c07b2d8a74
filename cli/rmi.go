package cli

import (
	"context"
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/storage"
)

func rmiCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "rmi",
		Usage:     "remove local images, or one of their names",
		ArgsUsage: "IMAGE [IMAGE...]",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "also remove containers using the image, and every name"},
			&ucli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove every image"},
		},
		Action: func(c *ucli.Context) error {
			all := c.Bool("all")
			if all && c.NArg() > 0 || !all && c.NArg() == 0 {
				return fmt.Errorf("usage: forge rmi [--force] IMAGE [IMAGE...] | --all")
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				names := c.Args().Slice()
				if all {
					images, err := s.Images(ctx, true)
					if err != nil {
						return err
					}
					for _, img := range images {
						names = append(names, img.ID)
					}
				}
				done, err := s.Remove(ctx, names, storage.RemoveOptions{Force: c.Bool("force")})
				for _, r := range done {
					if r.Untagged != "" {
						fmt.Fprintf(c.App.Writer, "untagged: %s\n", r.Untagged)
					} else {
						fmt.Fprintln(c.App.Writer, r.Deleted)
					}
				}
				return err
			})
		},
	}
}
