package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/template"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/storage"
)

func inspectCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "inspect",
		Usage:     "show an image's configuration and manifest",
		ArgsUsage: "IMAGE",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "Go `TEMPLATE` applied to the result, e.g. '{{.Config.Config.Cmd}}'"},
			&ucli.StringFlag{Name: "type", Aliases: []string{"t"}, Value: "image", Usage: "what to inspect: image"},
		},
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 1, 1, "[flags] IMAGE"); err != nil {
				return err
			}
			if t := c.String("type"); t != "image" {
				return fmt.Errorf("--type %q: only image is supported", t)
			}
			tmpl, err := parseFormat(c.String("format"))
			if err != nil {
				return err
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				details, err := s.Inspect(ctx, c.Args().First())
				if err != nil {
					return err
				}
				return render(c.App.Writer, tmpl, details)
			})
		},
	}
}

// parseFormat compiles a --format template; nil means indented JSON.
func parseFormat(format string) (*template.Template, error) {
	if format == "" {
		return nil, nil
	}
	tmpl, err := template.New("format").Funcs(template.FuncMap{"json": toJSON}).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("--format: %w", err)
	}
	return tmpl, nil
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// render prints v as indented JSON, or through tmpl followed by a newline.
func render(w io.Writer, tmpl *template.Template, v any) error {
	if tmpl == nil {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "    ")
		return enc.Encode(v)
	}
	if err := tmpl.Execute(w, v); err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	_, err := fmt.Fprintln(w)
	return err
}
