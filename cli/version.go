package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	ucli "github.com/urfave/cli/v2"
)

type versionInfo struct {
	Forge   string `json:"forge"`
	Go      string `json:"go"`
	Storage string `json:"storage"`
	Image   string `json:"image"`
}

// versions reports forge's version and those of the libraries that shape its behaviour.
func versions() versionInfo {
	v := versionInfo{Forge: Version, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			switch dep.Path {
			case "go.podman.io/storage":
				v.Storage = dep.Version
			case "go.podman.io/image/v5":
				v.Image = dep.Version
			}
		}
	}
	return v
}

func versionCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "version",
		Usage: "print forge's version and those of its main libraries",
		Action: func(c *ucli.Context) error {
			v := versions()
			_, err := fmt.Fprintf(c.App.Writer, "forge version %s\nGo:      %s\nstorage: %s\nimage:   %s\n",
				v.Forge, v.Go, v.Storage, v.Image)
			return err
		},
	}
}
