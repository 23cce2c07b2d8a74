package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/commit"
	"github.com/forge-build/forge/storage"
)

func commitCommand() *ucli.Command {
	// -c is a second flag sharing --change's values rather than an alias: urfave/cli
	// refuses a mix of a flag's names, and copies alias values by re-parsing them.
	changes := &repeated{}
	return &ucli.Command{
		Name:      "commit",
		Usage:     "write a working container's changes as a new image and print its ID",
		ArgsUsage: "CONTAINER [IMAGE]",
		Flags: []ucli.Flag{
			&ucli.GenericFlag{Name: "change", Value: changes,
				Usage: "apply a Dockerfile `INSTRUCTION` to the config: CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, USER, " +
					"WORKDIR, VOLUME, STOPSIGNAL, ONBUILD, HEALTHCHECK, SHELL (repeatable; short form -c)"},
			&ucli.GenericFlag{Name: "c", Value: changes, Hidden: true},
			&ucli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: commit.FormatOCI,
				Usage: "image `FORMAT`: oci, or docker (keeps HEALTHCHECK, ONBUILD and SHELL)"},
			&ucli.BoolFlag{Name: "squash", Usage: "write one layer holding the whole filesystem"},
			&ucli.BoolFlag{Name: "rm", Usage: "remove the working container after a successful commit"},
			&ucli.StringFlag{Name: "iidfile", Usage: "write the image ID to `FILE`"},
			&ucli.StringFlag{Name: "author", Aliases: []string{"a"}, Usage: "image `AUTHOR`"},
			&ucli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "history comment `TEXT`"},
			&ucli.Int64Flag{Name: "timestamp", Usage: "reproducible commit: created time and file times in `SECONDS` since the epoch " +
				"(default: $SOURCE_DATE_EPOCH; unset: now)"},
			quietFlag("print only the image ID, no warnings"),
		},
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 1, 2, "[flags] CONTAINER [IMAGE]"); err != nil {
				return err
			}
			o, err := commitOptions(c, changes.values)
			if err != nil {
				return err
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				return runCommit(ctx, c, s, o)
			})
		},
	}
}

// commitOptions maps the flags to commit.Options and checks the changes before the
// store is opened.
func commitOptions(c *ucli.Context, changes []string) (commit.Options, error) {
	if _, err := commit.ParseChanges(changes); err != nil {
		return commit.Options{}, err
	}
	o := commit.Options{
		Format:  c.String("format"),
		Squash:  c.Bool("squash"),
		Changes: changes,
		Comment: c.String("message"),
		Author:  c.String("author"),
	}
	if name := c.Args().Get(1); name != "" {
		o.Names = []string{name}
	}
	ts, err := sourceDate(c, "")
	if err != nil {
		return o, err
	}
	o.Timestamp = ts
	if c.Bool("quiet") {
		return o, nil // nil Logger: no warnings
	}
	log, err := logger(c)
	o.Logger = log
	return o, err
}

func runCommit(ctx context.Context, c *ucli.Context, s *storage.Store, o commit.Options) error {
	ctr, err := s.Container(c.Args().First())
	if err != nil {
		return err
	}
	id, err := commit.Commit(ctx, s, ctr, o)
	if err != nil {
		return err
	}
	if f := c.String("iidfile"); f != "" {
		if err := os.WriteFile(f, []byte("sha256:"+id), 0o644); err != nil {
			return fmt.Errorf("--iidfile: %w", err)
		}
	}
	fmt.Fprintln(c.App.Writer, id)
	if c.Bool("rm") {
		return s.RemoveContainer(ctr)
	}
	return nil
}

// repeated collects every value of a repeatable flag as given. Unlike StringSliceFlag it
// does not split at commas, which JSON-form instructions (`CMD ["a", "b"]`) contain.
type repeated struct{ values []string }

func (r *repeated) Set(v string) error {
	r.values = append(r.values, v)
	return nil
}

func (r *repeated) String() string { return strings.Join(r.values, "\n") }
