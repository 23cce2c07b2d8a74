package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/forge-build/forge/storage"
)

func loginCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "login",
		Usage:     "log in to a registry and store the credentials",
		ArgsUsage: "REGISTRY",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "user `NAME`"},
			&ucli.StringFlag{Name: "password", Aliases: []string{"p"}, Usage: "`PASSWORD` (prefer --password-stdin)"},
			&ucli.BoolFlag{Name: "password-stdin", Usage: "read the password from standard input"},
			&ucli.BoolFlag{Name: "get-login", Usage: "print the user name stored for the registry"},
			&ucli.StringFlag{Name: "authfile", Usage: "auth `FILE` (default: $XDG_RUNTIME_DIR/containers/auth.json)"},
			&ucli.StringFlag{Name: "cert-dir", Usage: "`DIR` with certificates (*.crt) for the registry"},
			&ucli.BoolFlag{Name: "tls-verify", Value: true, Usage: "require HTTPS and verify certificates"},
		},
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 1, 1, "[flags] REGISTRY"); err != nil {
				return err
			}
			if _, err := logger(c); err != nil {
				return err
			}
			o := storage.LoginOptions{Registry: registryOptions(c), RegistriesConf: c.String("registries-conf")}
			registry := c.Args().First()
			if c.Bool("get-login") {
				user, err := storage.LoggedInUser(registry, o)
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, user)
				return nil
			}
			var err error
			if o.Username, o.Password, err = credentials(c); err != nil {
				return err
			}
			if err := storage.Login(c.Context, registry, o); err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, "Login Succeeded!")
			return nil
		},
	}
}

// credentials takes the user name and password from flags, standard input, or a prompt
// on the terminal; the password is never echoed.
func credentials(c *ucli.Context) (user, password string, err error) {
	user, password = c.String("username"), c.String("password")
	if c.Bool("password-stdin") {
		if password != "" {
			return "", "", errors.New("--password and --password-stdin are mutually exclusive")
		}
		b, err := io.ReadAll(io.LimitReader(c.App.Reader, 1<<20))
		if err != nil {
			return "", "", fmt.Errorf("read password from stdin: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	if user != "" && password != "" {
		return user, password, nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return "", "", errors.New("user name and password needed: use --username with --password-stdin")
	}
	in := bufio.NewReader(os.Stdin)
	if user == "" {
		fmt.Fprint(c.App.ErrWriter, "Username: ")
		line, err := in.ReadString('\n')
		if err != nil {
			return "", "", fmt.Errorf("read user name: %w", err)
		}
		user = strings.TrimSpace(line)
	}
	if password == "" {
		fmt.Fprint(c.App.ErrWriter, "Password: ")
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(c.App.ErrWriter)
		if err != nil {
			return "", "", fmt.Errorf("read password: %w", err)
		}
		password = string(b)
	}
	return user, password, nil
}

func logoutCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "logout",
		Usage:     "remove the stored credentials of a registry",
		ArgsUsage: "REGISTRY",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "authfile", Usage: "auth `FILE` (default: $XDG_RUNTIME_DIR/containers/auth.json)"},
			&ucli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove the credentials of every registry"},
		},
		Action: func(c *ucli.Context) error {
			all := c.Bool("all")
			if all && c.NArg() > 0 || !all && c.NArg() != 1 {
				return errors.New("usage: forge logout [--authfile FILE] REGISTRY | --all")
			}
			o := storage.LoginOptions{Registry: registryOptions(c), RegistriesConf: c.String("registries-conf")}
			if err := storage.Logout(c.Args().First(), all, o); err != nil {
				return err
			}
			if all {
				fmt.Fprintln(c.App.Writer, "Removed login credentials for all registries")
			} else {
				fmt.Fprintf(c.App.Writer, "Removed login credentials for %s\n", c.Args().First())
			}
			return nil
		},
	}
}
