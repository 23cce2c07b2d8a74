package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/storage"
)

func containersCommand() *ucli.Command {
	return &ucli.Command{
		Name:    "containers",
		Aliases: []string{"ps"},
		Usage:   "list working containers",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "also list containers other tools made in the store"},
			&ucli.BoolFlag{Name: "json", Usage: "print JSON"},
			quietFlag("print only container IDs"),
			&ucli.BoolFlag{Name: "noheading", Aliases: []string{"n"}, Usage: "print no header line"},
			&ucli.BoolFlag{Name: "no-trunc", Usage: "print full IDs"},
		},
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 0, 0, "[flags]"); err != nil {
				return err
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				list, err := s.Containers(ctx, c.Bool("all"))
				if err != nil {
					return err
				}
				return printContainers(c.App.Writer, list, imagesFormat{
					json: c.Bool("json"), quiet: c.Bool("quiet"), noHeading: c.Bool("noheading"), noTrunc: c.Bool("no-trunc"),
				})
			})
		},
	}
}

func printContainers(w io.Writer, list []storage.ContainerEntry, f imagesFormat) error {
	if f.json {
		if list == nil {
			list = []storage.ContainerEntry{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	short := func(id string) string {
		if f.noTrunc || len(id) < 12 {
			return id
		}
		return id[:12]
	}
	if f.quiet {
		for _, e := range list {
			fmt.Fprintln(w, short(e.ID))
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if !f.noHeading {
		fmt.Fprintln(tw, "CONTAINER ID\tBUILDER\tIMAGE ID\tIMAGE NAME\tCONTAINER NAME")
	}
	for _, e := range list {
		builder := ""
		if e.Working {
			builder = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", short(e.ID), builder, short(e.ImageID), e.ImageName, e.Name)
	}
	return tw.Flush()
}
