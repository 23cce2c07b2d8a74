package build

import (
	"fmt"

	"github.com/forge-build/forge/rootless"
	"github.com/forge-build/forge/rootless/sandbox"
)

// checkIsolation refuses, before any work, what the build's isolation cannot do for a
// RUN step. Under chroot isolation that is a network of its own; mounts are copied in,
// and one over files the image has fails when the step runs.
func (b *builder) checkIsolation(network string) error {
	if b.opts.Isolation == rootless.IsolationChroot && network == sandbox.NetworkNone {
		return fmt.Errorf("--network=none needs a network namespace: %w", sandbox.ErrNeedsNamespaces)
	}
	return nil
}
