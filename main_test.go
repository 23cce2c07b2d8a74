package main

import "testing"

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
