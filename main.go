// Command forge builds and moves container images without a daemon and without root.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"syscall"
	"unicode/utf8"

	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"

	"github.com/forge-build/forge/cli"
	"github.com/forge-build/forge/rootless"
)

// gcPercent is forge's GOGC once its heap holds more than gcLiveFloor bytes: a build
// allocates in bursts (the store's compressors and tar streams, a few MB a step) around a
// small live heap, and with Go's default of 100 those bursts set the peak resident size.
// Collecting at 50% growth keeps a 20-step build at about 34 MB instead of 50 for a few
// milliseconds of CPU. Below the floor forge keeps Go's default, whose smallest heap goal
// is 4 MB: set from the start, 50% halves that to 2 MB, which the packages' initialisation
// alone fills, and a cached build or a listing (and the process that only waits for its
// child in the user namespace) paid for two or three collections that freed nothing worth
// having. GOGC set by the user wins.
const (
	gcPercent   = 50
	gcLiveFloor = 4 << 20
)

func main() {
	if os.Getenv("GOGC") == "" {
		lowerGCPercentPast(gcLiveFloor, gcPercent)
	}
	if reexec.Init() {
		return
	}
	ctx, stop := signalContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	err := cli.App().RunContext(ctx, os.Args)
	stop()
	os.Exit(exitCode(err, context.Cause(ctx)))
}

// lowerGCPercentPast sets the GC percent to percent after the first collection that
// leaves more than floor bytes of live heap. It watches through a finalizer: an object
// that nothing references is finalized by the next collection, and each finalizer run
// allocates the next such object, so the check runs once after every collection.
func lowerGCPercentPast(floor uint64, percent int) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var arm func()
	arm = func() {
		runtime.SetFinalizer(new([16]byte), func(*[16]byte) {
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 && sample[0].Value.Uint64() > floor {
				debug.SetGCPercent(percent)
				return
			}
			arm()
		})
	}
	arm()
}

// signalError is the cause of the root context's cancellation when a signal arrived.
type signalError struct{ sig syscall.Signal }

func (e signalError) Error() string { return "interrupted by " + unix.SignalName(e.sig) }

// signalContext is signal.NotifyContext with the signal kept: the first of sigs to
// arrive cancels ctx with a signalError, so that forge can exit with 128+N as a shell
// expects of a process a signal stopped. Later signals are swallowed until stop.
func signalContext(parent context.Context, sigs ...os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			if sig, ok := s.(syscall.Signal); ok {
				cancel(signalError{sig})
			}
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// exitCode prints err once and chooses the process's exit status. cause is the root
// context's cancellation cause: a signalError when a signal stopped the work.
func exitCode(err, cause error) int {
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
	var sig signalError
	if errors.As(cause, &sig) {
		msg := err.Error()
		if !errors.Is(err, cause) {
			msg += " (" + sig.Error() + ")"
		}
		fmt.Fprintf(os.Stderr, "forge: %s\n", oneLine(msg))
		return 128 + int(sig.sig)
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
