package cli

import (
	"context"
	"errors"
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/build"
	"github.com/forge-build/forge/storage"
)

func pruneCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "prune",
		Usage: "remove what builds keep between runs",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "cache", Usage: "empty the directories of RUN --mount=type=cache"},
		},
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 0, 0, "--cache"); err != nil {
				return err
			}
			if !c.Bool("cache") {
				return errors.New("forge prune: say what to prune: --cache (the RUN --mount=type=cache directories)")
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				removed, busy, err := build.PruneCacheMounts(build.CacheMountDir(s.GraphRoot()))
				for _, b := range busy {
					fmt.Fprintf(c.App.ErrWriter, "forge: cache mount %.12s is in use by a build: left alone\n", b)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "removed %d cache mount directories\n", removed)
				return nil
			})
		},
	}
}
