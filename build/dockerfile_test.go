package build

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDockerfileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text, want string
		line             int
	}{
		{"unknown instruction", "FROM busybox\nRUN true\n\nRUNN make\n", "unknown instruction: RUNN", 4},
		{"no FROM", "RUN true\n", "", 1},
		{"malformed flag", "FROM busybox\nCOPY --bogus=1 a b\n", "bogus", 2},
		{"run mount ssh", "FROM busybox\nRUN true\nRUN --mount=type=ssh true\n", "type=ssh is not supported yet", 3},
		{"run device", "FROM busybox\nRUN --device=/dev/fuse true\n", "--device is not supported yet", 2},
		{"run mount option", "FROM busybox\nRUN --mount=type=tmpfs,target=/t,exec true\n", "exec", 2},
		{"add checksum", "FROM busybox\n\nADD --checksum=sha256:00 http://x/y /y\n", "--checksum", 3},
		{"add checksum not a url", "FROM busybox\nADD --checksum=sha256:00 y /y\n", "--checksum", 2},
		{"add git", "FROM busybox\nADD https://example.com/repo.git /src\n", "not supported yet", 2},
		{"env without value", "FROM busybox\nENV\n", "ENV", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDockerfile(strings.NewReader(tt.text), "ci/Dockerfile")
			var se *StepError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a StepError", err, err)
			}
			if se.File != "ci/Dockerfile" || se.Line != tt.line || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q at %s:%d, want line %d containing %q", err, se.File, se.Line, tt.line, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "ci/Dockerfile:") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line starting with the file name", err)
			}
		})
	}
}

func TestParseDockerfile(t *testing.T) {
	t.Parallel()
	text := "# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM ${BASE} AS build\nRUN echo \\\n  hi\nFROM scratch\nCOPY --from=build /bin/sh /sh\n"
	df, err := ParseDockerfile(strings.NewReader(text), "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if len(df.Stages) != 2 || df.Stages[0].Name != "build" || len(df.MetaArgs) != 1 {
		t.Fatalf("stages %d, name %q, meta args %d", len(df.Stages), df.Stages[0].Name, len(df.MetaArgs))
	}
	if len(df.Notes) != 1 || !strings.Contains(df.Notes[0], "syntax") {
		t.Errorf("notes = %q, want the ignored syntax directive", df.Notes)
	}
	run := df.Stages[0].Commands[0]
	if got := instructionText(df, run); got != "RUN echo hi" {
		t.Errorf("instructionText = %q", got)
	}
	if l := commandLine(run); l != 4 {
		t.Errorf("RUN at line %d, want 4", l)
	}
}

func TestEscapeDirective(t *testing.T) {
	t.Parallel()
	df, err := ParseDockerfile(strings.NewReader("# escape=`\nFROM busybox\nRUN echo a `\n  b\n"), "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if df.Escape != '`' || len(df.Stages[0].Commands) != 1 {
		t.Errorf("escape %q, commands %d", df.Escape, len(df.Stages[0].Commands))
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	env := newEnvGetter(map[string]string{"A": "arg", "B": ""}, []string{"A=env", "C=c"})
	x := func(w string) string {
		out, _, err := newLex('\\').ProcessWord(w, env)
		if err != nil {
			t.Fatalf("expand %q: %v", w, err)
		}
		return out
	}
	for in, want := range map[string]string{
		"$A":            "env",
		"${B:-default}": "default",
		"${B-default}":  "",
		"${C:+x}":       "x",
		"${NONE:+x}":    "",
		`\$A`:           "$A",
		"${A}_$C":       "env_c",
		"'$A'":          "$A",
	} {
		if got := x(in); got != want {
			t.Errorf("expand %q = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseDockerfile feeds arbitrary text to the parser: it may refuse it, but must not
// panic, and every error must name a place in the file.
func FuzzParseDockerfile(f *testing.F) {
	for _, seed := range []string{
		"FROM busybox\nRUN echo hi\n",
		"ARG X=1\nFROM ${X:-busybox} AS a\nCOPY --from=a / /\n",
		"# escape=`\nFROM x\nRUN a `\n b\n",
		"FROM x\nRUN <<EOF\nhi\nEOF\n",
		"FROM x\nENV A=1 B=\"2 3\" C\\ D=4\n",
		"FROM x\nHEALTHCHECK --interval=5s CMD true\n",
		"FROM x\nONBUILD RUN y\nSHELL [\"/bin/bash\", \"-c\"]\n",
		"FROM\n", "RUNN x\n", "FROM x\nCOPY --chown= a b\n", "\x00\xff", "FROM x\nEXPOSE 80/tcp 1-2\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		_, err := ParseDockerfile(strings.NewReader(text), "Dockerfile")
		if err != nil && !strings.HasPrefix(err.Error(), "Dockerfile") {
			t.Errorf("error without the file name: %v", err)
		}
	})
}
