package build

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// runCommand parses a one-stage Dockerfile with BuildKit's parser alone (none of forge's
// checks) and returns its first RUN.
func runCommand(t *testing.T, text string) *instructions.RunCommand {
	t.Helper()
	res, err := parser.Parse(strings.NewReader("FROM busybox\n" + text))
	if err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	for _, cmd := range stages[0].Commands {
		if c, ok := cmd.(*instructions.RunCommand); ok {
			return c
		}
	}
	t.Fatalf("no RUN in %q", text)
	return nil
}

// BuildKit's rules (dockerfile2llb dispatchRun): a lone heredoc is the script (tabs
// stripped for <<-), one with #! is run as a file; otherwise the shell gets line and
// heredocs as written and does the expansion, tab stripping and quoting itself.
func TestRunArgs(t *testing.T) {
	t.Parallel()
	sh := []string{"/bin/sh", "-c"}
	tests := []struct {
		name, text string
		shell      []string
		want       []string
		script     *runScript
	}{
		{"shell form", "RUN echo hi\n", nil, []string{"/bin/sh", "-c", "echo hi"}, nil},
		{"exec form", `RUN ["echo", "$X"]` + "\n", nil, []string{"echo", "$X"}, nil},
		{"SHELL", "RUN echo hi\n", []string{"/bin/bash", "-ec"}, []string{"/bin/bash", "-ec", "echo hi"}, nil},
		{"lone heredoc", "RUN <<EOF\necho $HOME\n\techo tab\nEOF\n", nil,
			append(slices.Clone(sh), "echo $HOME\n\techo tab\n"), nil},
		{"<<- strips tabs", "RUN <<-EOF\n\techo a\n\t\techo b\n\tEOF\n", nil,
			append(slices.Clone(sh), "echo a\necho b\n"), nil},
		{"quoted delimiter, lone", "RUN <<'EOF'\necho $HOME\nEOF\n", nil,
			append(slices.Clone(sh), "echo $HOME\n"), nil},
		{"shebang", "RUN <<EOF\n#!/usr/bin/env python3\nprint('hi')\nEOF\n", nil,
			append(slices.Clone(sh), "/dev/pipes/EOF"), &runScript{name: "EOF", data: "#!/usr/bin/env python3\nprint('hi')\n"}},
		{"shebang after <<- tabs", "RUN <<-PY\n\t#!/bin/sh\n\techo x\n\tPY\n", nil,
			append(slices.Clone(sh), "/dev/pipes/PY"), &runScript{name: "PY", data: "#!/bin/sh\necho x\n"}},
		{"several heredocs", "RUN <<A cat > /a && <<-'B' cat > /b\none $X\nA\n\ttwo $X\n\tB\n", nil,
			append(slices.Clone(sh), "<<A cat > /a && <<-'B' cat > /b\none $X\nA\n\ttwo $X\nB"), nil},
		{"heredoc as a command's input", "RUN python3 <<EOF\nprint(1)\nEOF\n", nil,
			append(slices.Clone(sh), "python3 <<EOF\nprint(1)\nEOF"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args, script, err := runArgs(runCommand(t, tt.text), tt.shell)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(args, tt.want) {
				t.Errorf("args %q, want %q", args, tt.want)
			}
			if (script == nil) != (tt.script == nil) || script != nil && *script != *tt.script {
				t.Errorf("script %+v, want %+v", script, tt.script)
			}
		})
	}
}

func TestRunArgsErrors(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"RUN []\n", "RUN <<EOF\n#!/bin/sh\nEOF\n"} {
		c := runCommand(t, text)
		if text == "RUN <<EOF\n#!/bin/sh\nEOF\n" {
			c.Files[0].Name = "../x" // a delimiter that would name a path
		}
		if _, _, err := runArgs(c, nil); err == nil {
			t.Errorf("%q: no error", text)
		}
	}
}

func TestRunScriptWrite(t *testing.T) {
	t.Parallel()
	s := &runScript{name: "EOF", data: "#!/bin/sh\necho hi\n"}
	dir, err := s.write()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	fi, err := os.Stat(filepath.Join(dir, "EOF"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("script: %v, %v", fi, err)
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o755 {
		t.Errorf("directory: %v, %v (the container's users must reach the script)", di, err)
	}
}

// The key holds the whole command: two RUNs that differ after the 80 characters of their
// one-line text do not share a cache entry.
func TestRunKeyHoldsTheWholeCommand(t *testing.T) {
	t.Parallel()
	long := "RUN echo " + strings.Repeat("x", 100)
	a, _, _ := runArgs(runCommand(t, long+" a\n"), nil)
	b, _, _ := runArgs(runCommand(t, long+" b\n"), nil)
	if runKeyText(a, nil) == runKeyText(b, nil) {
		t.Error("the key text ignores the end of a long command")
	}
	s1 := &runScript{name: "EOF", data: "#!/bin/sh\necho 1\n"}
	s2 := &runScript{name: "EOF", data: "#!/bin/sh\necho 2\n"}
	if runKeyText(a, s1) == runKeyText(a, s2) {
		t.Error("the key text ignores the script")
	}
}
