package cli

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"
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

// TestEarlyUserNamespaceLists: rootless/early.c, which enters the user namespace before
// Go starts, names the commands that open the store and the global flags that take a
// value. Every command must be either in its list or one that stays outside the
// namespace, and its flags must be exactly the app's global flags: otherwise a new
// command runs as two processes, or a new flag's value is taken for the command.
func TestEarlyUserNamespaceLists(t *testing.T) {
	src, err := os.ReadFile("../rootless/early.c")
	if err != nil {
		t.Fatal(err)
	}
	commands, flags := cArray(t, src, "early_commands"), cArray(t, src, "early_valued_flags")
	outside := map[string]bool{"login": true, "logout": true, "version": true}
	for _, cmd := range App().Commands {
		for _, name := range cmd.Names() {
			if commands[name] == outside[name] {
				t.Errorf("command %q: in early.c's list %v, stays outside the namespace %v: want exactly one", name, commands[name], outside[name])
			}
			delete(commands, name)
		}
	}
	for name := range commands {
		t.Errorf("early.c lists %q, which is not a command", name)
	}
	for _, f := range App().Flags {
		name := f.Names()[0]
		if _, isBool := f.(*ucli.BoolFlag); isBool || len(f.Names()) != 1 {
			t.Errorf("global flag %q: early.c knows only global flags with a value and no alias", name)
		}
		if !flags[name] {
			t.Errorf("global flag %q is missing from early.c's early_valued_flags", name)
		}
		delete(flags, name)
	}
	for name := range flags {
		t.Errorf("early.c lists the global flag %q, which forge does not have", name)
	}
}

// cArray reads the strings of the C array name from src.
func cArray(t *testing.T, src []byte, name string) map[string]bool {
	t.Helper()
	m := regexp.MustCompile(`(?s)\b` + name + `\[\] = \{(.*?)\};`).FindSubmatch(src)
	if m == nil {
		t.Fatalf("early.c: no array %s", name)
	}
	out := map[string]bool{}
	for _, s := range regexp.MustCompile(`"([^"]*)"`).FindAllSubmatch(m[1], -1) {
		out[string(s[1])] = true
	}
	if len(out) == 0 {
		t.Fatalf("early.c: array %s is empty", name)
	}
	return out
}
