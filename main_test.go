package main

import (
	"errors"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"syscall"
	"testing"
	"time"

	"github.com/forge-build/forge/rootless"
)

func TestOneLine(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain error":                        "plain error",
		"layer: x\nexhausting input failed":  "layer: x; exhausting input failed",
		"unknown instruction: \x1b]0;hi\x07": `unknown instruction: \x1b]0;hi\x07`,
		"nul \x00 byte":                      `nul \x00 byte`,
		"ünïcode stays":                      "ünïcode stays",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExitCodeAfterSignal(t *testing.T) {
	t.Parallel()
	failed := errors.New("pull x: context canceled")
	for _, c := range []struct {
		err, cause error
		want       int
	}{
		{nil, signalError{syscall.SIGINT}, 0},
		{failed, nil, 1},
		{failed, signalError{syscall.SIGINT}, 130},
		{failed, signalError{syscall.SIGTERM}, 143},
		{&rootless.ExitError{Code: 143}, signalError{syscall.SIGTERM}, 143},
		{&rootless.ExitError{Code: 2}, nil, 2},
	} {
		if got := exitCode(c.err, c.cause); got != c.want {
			t.Errorf("exitCode(%v, %v) = %d, want %d", c.err, c.cause, got, c.want)
		}
	}
}

// The GC percent stays Go's default while the live heap is small, and drops once a
// collection finds more than the floor live.
func TestLowerGCPercentPast(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	gogc := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	// settle runs collections (finalizers run after them, on their own goroutine) until
	// the percent is want or a second has passed, and returns the last percent seen.
	settle := func(want uint64) uint64 {
		for end := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
			runtime.GC()
			if got := gogc(); got == want || time.Now().After(end) {
				return got
			}
		}
	}
	const floor = 64 << 20
	lowerGCPercentPast(floor, 37)
	if got := settle(37); got != 100 {
		t.Fatalf("with a small live heap the GC percent became %d, want 100", got)
	}
	live := make([]byte, floor+8<<20)
	if got := settle(37); got != 37 {
		t.Errorf("with %d MB live the GC percent is %d, want 37", len(live)>>20, got)
	}
	runtime.KeepAlive(live)
}
