package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/storage"
)

func imagesCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "images",
		Usage: "list images in local storage",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "also list the build cache's intermediate images"},
			&ucli.BoolFlag{Name: "json", Usage: "print JSON"},
			quietFlag("print only image IDs"),
			&ucli.BoolFlag{Name: "noheading", Aliases: []string{"n"}, Usage: "print no header line"},
			&ucli.BoolFlag{Name: "no-trunc", Usage: "print full image IDs"},
		},
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 0, 0, "[flags]"); err != nil {
				return err
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				images, err := s.Images(ctx, c.Bool("all"))
				if err != nil {
					return err
				}
				return printImages(c.App.Writer, images, imagesFormat{
					json: c.Bool("json"), quiet: c.Bool("quiet"),
					noHeading: c.Bool("noheading"), noTrunc: c.Bool("no-trunc"),
				}, time.Now())
			})
		},
	}
}

type imagesFormat struct {
	json, quiet, noHeading, noTrunc bool
}

// printImages writes the image list as a table (one row per name), IDs or JSON.
func printImages(w io.Writer, images []storage.Image, f imagesFormat, now time.Time) error {
	if f.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(images)
	}
	id := func(s string) string {
		if f.noTrunc || len(s) < 12 {
			return s
		}
		return s[:12]
	}
	if f.quiet {
		for _, img := range images {
			fmt.Fprintln(w, id(img.ID))
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	if !f.noHeading {
		fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	}
	for _, img := range images {
		created := units.HumanDuration(now.Sub(img.Created)) + " ago"
		size := units.HumanSizeWithPrecision(float64(img.Size), 3)
		for _, name := range displayNames(img.Names) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name[0], name[1], id(img.ID), created, size)
		}
	}
	return tw.Flush()
}

// displayNames splits stored names into repository and tag; a nameless image is <none>.
func displayNames(names []string) [][2]string {
	if len(names) == 0 {
		return [][2]string{{"<none>", "<none>"}}
	}
	out := make([][2]string, 0, len(names))
	for _, n := range names {
		repo, tag := n, "<none>"
		if i := strings.LastIndex(n, "@"); i >= 0 {
			repo = n[:i]
		} else if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
			repo, tag = n[:i], n[i+1:]
		}
		out = append(out, [2]string{repo, tag})
	}
	return out
}
