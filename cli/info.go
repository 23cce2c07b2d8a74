package cli

import (
	"context"
	"os"
	"runtime"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/forge-build/forge/rootless"
	"github.com/forge-build/forge/storage"
)

func infoCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "info",
		Usage: "show the storage driver and why, the store's locations, the ID mapping, the isolation of RUN steps and versions",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "Go `TEMPLATE` applied to the result, e.g. '{{.Store.GraphDriverName}}'"},
		},
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 0, 0, "[flags]"); err != nil {
				return err
			}
			tmpl, err := parseFormat(c.String("format"))
			if err != nil {
				return err
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				store, err := s.Info()
				if err != nil {
					return err
				}
				idmap, err := rootless.Current()
				if err != nil {
					return err
				}
				return render(c.App.Writer, tmpl, systemInfo{
					Host: hostInfo(), Store: store, IDMap: idmap, Isolation: isolationOf(c), Version: versions(),
				})
			})
		},
	}
}

type systemInfo struct {
	Host  host               `json:"host"`
	Store storage.DriverInfo `json:"store"`
	IDMap rootless.Info      `json:"idmap"`
	// Isolation is how RUN steps are isolated, and why.
	Isolation rootless.IsolationChoice `json:"isolation"`
	Version   versionInfo              `json:"version"`
}

type host struct {
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Kernel   string `json:"kernel"`
	CPUs     int    `json:"cpus"`
	Hostname string `json:"hostname"`
}

func hostInfo() host {
	h := host{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Kernel = strings.TrimRight(string(u.Release[:]), "\x00")
	}
	h.Hostname, _ = os.Hostname()
	return h
}
