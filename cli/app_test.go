package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestAppFlags: `forge --version` prints the version as `forge version` does, and a bad
// global flag names forge once.
func TestAppFlags(t *testing.T) {
	var out bytes.Buffer
	app := App()
	app.Writer = &out
	if err := app.Run([]string{"forge", "--version"}); err != nil {
		t.Fatalf("forge --version: %v", err)
	}
	if got, want := out.String(), "forge version "+Version+"\n"; got != want {
		t.Errorf("forge --version printed %q, want %q", got, want)
	}
	err := App().Run([]string{"forge", "--no-such-flag"})
	if err == nil || !strings.HasPrefix(err.Error(), "forge: flag provided but not defined") || !strings.Contains(err.Error(), "(see 'forge --help')") {
		t.Errorf("a bad global flag: %v", err)
	}
}
