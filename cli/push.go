package cli

import (
	"context"
	"fmt"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/storage"
)

func pushCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "push",
		Usage:     "copy a local image to a registry, an OCI layout, an archive or a directory",
		ArgsUsage: "IMAGE [DESTINATION]",
		Flags: append(registryFlags(),
			quietFlag("print no progress"),
			&ucli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "manifest `FORMAT`: oci or docker (default: keep)"},
			&ucli.StringFlag{Name: "digestfile", Usage: "write the pushed manifest's digest to `FILE`"},
		),
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 1, 2, "[flags] IMAGE [DESTINATION]"); err != nil {
				return err
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				d, err := s.Push(ctx, c.Args().Get(0), c.Args().Get(1), storage.PushOptions{
					Registry: registryOptions(c), Format: c.String("format"), Progress: progress(c),
				})
				if err != nil {
					return err
				}
				if f := c.String("digestfile"); f != "" {
					if err := os.WriteFile(f, []byte(d.String()), 0o644); err != nil {
						return fmt.Errorf("--digestfile: %w", err)
					}
				}
				return nil
			})
		},
	}
}
