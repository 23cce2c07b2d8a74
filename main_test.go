package main

import (
	"errors"
	"syscall"
	"testing"

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
