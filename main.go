// Command forge builds and moves container images without a daemon and without root.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

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
			fmt.Fprintf(os.Stderr, "forge: %s\n", exit.Message)
		}
		return exit.Code
	}
	fmt.Fprintf(os.Stderr, "forge: %v\n", err)
	return 1
}
