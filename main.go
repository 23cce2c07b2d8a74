// Command forge builds and moves container images without a daemon and without root.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"unicode/utf8"

	"go.podman.io/storage/pkg/reexec"

	"github.com/forge-build/forge/cli"
	"github.com/forge-build/forge/rootless"
)

func main() {
	if reexec.Init() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := cli.App().RunContext(ctx, os.Args)
	stop()
	os.Exit(exitCode(err))
}

// exitCode prints err once and chooses the process's exit status.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var exit *rootless.ExitError
	if errors.As(err, &exit) {
		// A child (the re-executed forge or a sandboxed command) already
		// reported its failure; pass its status through unchanged.
		if exit.Message != "" {
			fmt.Fprintf(os.Stderr, "forge: %s\n", oneLine(exit.Message))
		}
		return exit.Code
	}
	fmt.Fprintf(os.Stderr, "forge: %s\n", oneLine(err.Error()))
	return 1
}

// oneLine keeps an error to one printable line: a library's embedded newlines become
// "; " and control characters from hostile input (terminal escapes, NULs) are escaped.
func oneLine(msg string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(msg) {
		switch {
		case r == '\n':
			b.WriteString("; ")
		case r == '\t':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f || r == utf8.RuneError || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
