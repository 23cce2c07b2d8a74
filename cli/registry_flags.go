package cli

import (
	"os"
	"path/filepath"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/storage"
)

// registryFlags are the flags of commands that talk to registries, named as in Buildah.
func registryFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.BoolFlag{Name: "tls-verify", Value: true, Usage: "require HTTPS and verify certificates"},
		&ucli.StringFlag{Name: "creds", Usage: "`USER[:PASSWORD]` for the registry"},
		&ucli.StringFlag{Name: "authfile", Usage: "auth `FILE` (default: $XDG_RUNTIME_DIR/containers/auth.json)"},
		&ucli.StringFlag{Name: "cert-dir", Usage: "`DIR` with certificates (*.crt) for the registry"},
		&ucli.IntFlag{Name: "retry", Value: 3, Usage: "try a pull or push `N` more times after a transient registry failure"},
		&ucli.DurationFlag{Name: "retry-delay", Value: 2 * time.Second, Usage: "wait `DURATION` before the first retry, twice as long before each next"},
		&ucli.DurationFlag{Name: "stall-timeout", Value: 5 * time.Minute, Usage: "give up an attempt after `DURATION` without registry traffic (0: never)"},
	}
}

func registryOptions(c *ucli.Context) storage.RegistryOptions {
	return storage.RegistryOptions{
		SkipTLSVerify: c.IsSet("tls-verify") && !c.Bool("tls-verify"),
		Creds:         c.String("creds"),
		AuthFile:      authFile(c.String("authfile")),
		CertDir:       c.String("cert-dir"),
		Retry:         max(c.Int("retry"), 0),
		RetryDelay:    c.Duration("retry-delay"),
		StallTimeout:  c.Duration("stall-timeout"),
	}
}

// authFile chooses the credentials file: --authfile, then REGISTRY_AUTH_FILE (as Buildah
// and Podman do), then the library's default ($XDG_RUNTIME_DIR/containers/auth.json). Without
// XDG_RUNTIME_DIR that default would depend on the UID, which differs inside forge's user
// namespace, so ~/.config/containers/auth.json (which is also searched) is used instead.
func authFile(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("REGISTRY_AUTH_FILE"); env != "" {
		return env
	}
	if os.Getenv("XDG_RUNTIME_DIR") == "" {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, ".config", "containers", "auth.json")
		}
	}
	return ""
}

func quietFlag(usage string) ucli.Flag {
	return &ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: usage}
}
