// Package cli maps forge's command line onto the other packages: one file per command,
// each turning flags into an options struct and making one call. It is the only package
// that imports urfave/cli, and with main the only one that writes to the terminal.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/rootless"
	"github.com/forge-build/forge/storage"
)

// Version is set at build time with -ldflags "-X .../cli.Version=...".
var Version = "0.1.0-dev"

// App returns forge's command-line application.
func App() *ucli.App {
	app := &ucli.App{
		// In a re-executed child os.Args[0] may differ; the name must not.
		Name:                   "forge",
		Usage:                  "build and move container images without a daemon and without root",
		Version:                Version,
		Flags:                  append(globalFlags(), maxLayerSizeFlag()),
		UseShortOptionHandling: true,
		// "-e A=1,2" is one value, as in Buildah and Docker.
		DisableSliceFlagSeparator: true,
		Suggest:                   true,
		ExitErrHandler:            func(*ucli.Context, error) {}, // main prints the error once
		Commands: []*ucli.Command{
			pullCommand(), pushCommand(), imagesCommand(), tagCommand(), inspectCommand(),
			rmiCommand(), loginCommand(), logoutCommand(), infoCommand(), versionCommand(),
			unshareCommand(), fromCommand(), containersCommand(), configCommand(), mountCommand(),
			umountCommand(), rmCommand(), runCommand(), copyCommand(), addCommand(),
			commitCommand(), budCommand(), pruneCommand(),
		},
		OnUsageError: usageError,
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = usageError
	}
	// `forge --version`, as `buildah --version`; no -v, which commands use for volumes.
	ucli.VersionFlag = &ucli.BoolFlag{Name: "version", Usage: "print the version and exit"}
	ucli.VersionPrinter = func(c *ucli.Context) { fmt.Fprintf(c.App.Writer, "forge version %s\n", c.App.Version) }
	return app
}

// usageError reports a bad flag as one error line instead of printing the help to stdout,
// which scripts capture.
func usageError(c *ucli.Context, err error, _ bool) error {
	name := "forge"
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != name { // not the app itself
		name += " " + c.Command.Name
	}
	return fmt.Errorf("%s: %w (see '%s --help')", name, err, name)
}

func globalFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "root", Usage: "storage root `DIR` (default: storage.conf, or ~/.local/share/containers/storage)"},
		&ucli.StringFlag{Name: "runroot", Usage: "storage run-state `DIR` (default: $XDG_RUNTIME_DIR/containers)"},
		&ucli.StringFlag{Name: "storage-driver", Usage: "storage `DRIVER` (overlay or vfs; default: the best that works)"},
		&ucli.StringSliceFlag{Name: "storage-opt", Usage: "storage driver `OPTION` (repeatable)"},
		&ucli.StringFlag{Name: "registries-conf", Usage: "registries.conf `FILE` to use instead of the default ones"},
		&ucli.StringFlag{Name: "log-level", Value: "warn", Usage: "`LEVEL`: error, warn, info or debug"},
		isolationFlag(),
	}
}

// logger builds forge's logger from --log-level and points the libraries' logrus at the
// same level and stream.
func logger(c *ucli.Context) (*slog.Logger, error) {
	var level slog.Level
	name := strings.ToLower(c.String("log-level"))
	if name == "warning" {
		name = "warn"
	}
	if err := level.UnmarshalText([]byte(name)); err != nil {
		return nil, fmt.Errorf("--log-level: invalid level %q (want error, warn, info or debug)", c.String("log-level"))
	}
	lr, err := logrus.ParseLevel(name)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	logrus.SetLevel(lr)
	logrus.SetOutput(c.App.ErrWriter)
	return slog.New(newLineHandler(c.App.ErrWriter, level)), nil
}

// enter puts the process into forge's user namespace. It returns done=true in the outer
// process, whose job ended when the re-executed child exited (err carries its status).
func enter(c *ucli.Context, log *slog.Logger) (done bool, err error) {
	reexeced, err := rootless.Enter(c.Context, rootless.Options{Logger: log})
	if reexeced {
		if err == nil {
			err = &rootless.ExitError{Code: 0}
		}
		return true, err
	}
	return false, err
}

// withStore enters the namespace, opens the store, runs fn and closes the store.
func withStore(c *ucli.Context, fn func(ctx context.Context, s *storage.Store) error) (retErr error) {
	log, err := logger(c)
	if err != nil {
		return err
	}
	iso, err := chooseIsolation(c, log)
	if err != nil {
		return err
	}
	if done, err := enter(c, log); done || err != nil {
		return err
	}
	stopProfile, err := startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	id, err := rootless.Current()
	if err != nil {
		return err
	}
	maxLayerSize, err := parseSize("max-layer-size", c.String("max-layer-size"))
	if err != nil {
		return err
	}
	s, err := storage.Open(c.Context, storage.Options{
		GraphRoot:         c.String("root"),
		RunRoot:           c.String("runroot"),
		Driver:            c.String("storage-driver"),
		DriverOptions:     c.StringSlice("storage-opt"),
		RegistriesConf:    c.String("registries-conf"),
		IgnoreChownErrors: id.Mode == rootless.ModeSingle,
		NoMounts:          iso.Isolation == rootless.IsolationChroot,
		TempDir:           os.Getenv("TMPDIR"),
		MaxLayerSize:      maxLayerSize,
		Logger:            log,
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := s.Close(); err != nil && retErr == nil {
			retErr = fmt.Errorf("close store: %w", err)
		}
	}()
	return fn(c.Context, s)
}

// needArgs checks the number of positional arguments.
func needArgs(c *ucli.Context, min, max int, usage string) error {
	n := c.NArg()
	if n < min || (max >= 0 && n > max) {
		return fmt.Errorf("usage: forge %s %s", c.Command.Name, usage)
	}
	return nil
}

// progress returns where pull and push progress goes: stderr, or nowhere with -q.
func progress(c *ucli.Context) io.Writer {
	if c.Bool("quiet") {
		return nil
	}
	return c.App.ErrWriter
}
