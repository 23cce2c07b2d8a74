package cli

import (
	"fmt"
	"log/slog"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/rootless"
)

// isolationKey holds the isolation withStore chose, in the app's metadata.
const isolationKey = "forge.isolation"

func isolationFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "isolation", Usage: "how RUN steps are isolated: `MODE` auto, namespaces or chroot " +
		"(default: $FORGE_ISOLATION, else auto: chroot where namespaces cannot be made, as for root in an unprivileged container)"}
}

// chooseIsolation settles the isolation once per process from --isolation or
// FORGE_ISOLATION, says which one is used when it is chroot (a warning when forge chose
// it by itself), and keeps the choice for isolationOf.
func chooseIsolation(c *ucli.Context, log *slog.Logger) (rootless.IsolationChoice, error) {
	value, source := c.String("isolation"), "--isolation"
	if !c.IsSet("isolation") {
		value, source = os.Getenv("FORGE_ISOLATION"), "FORGE_ISOLATION"
	}
	requested, err := rootless.ParseIsolation(value)
	if err != nil {
		return rootless.IsolationChoice{}, fmt.Errorf("%s: %w", source, err)
	}
	choice, err := rootless.ChooseIsolation(requested, source)
	if err != nil {
		return choice, err
	}
	if choice.Isolation == rootless.IsolationChroot {
		msg := "isolation chroot: " + choice.Reason + "; RUN steps run chrooted into the container, " +
			"without namespaces or mounts, and storage uses vfs"
		if choice.Detected {
			log.Warn(msg)
		} else {
			log.Info(msg)
		}
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata[isolationKey] = choice
	return choice, nil
}

// isolationOf is the isolation chooseIsolation settled (namespaces before it ran).
func isolationOf(c *ucli.Context) rootless.IsolationChoice {
	if choice, ok := c.App.Metadata[isolationKey].(rootless.IsolationChoice); ok {
		return choice
	}
	return rootless.IsolationChoice{Isolation: rootless.IsolationNamespaces}
}
