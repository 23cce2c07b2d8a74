package tests

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Build failures (issue 4): each is one `forge: FILE:LINE: ...` line naming
// the exact line, a non-zero exit, and no named image or working container
// left behind (nameless cache images of the steps that succeeded may stay).

type budErrCase struct {
	name       string
	dockerfile string            // CONTEXT/Dockerfile, unless empty
	files      map[string]string // more files in the context
	outside    map[string]string // files in the context's parent directory
	args       []string          // flags before CONTEXT; {{CTX}} is replaced
	where      string            // the error starts with "forge: " and this ({{CTX}} replaced)
	words      []string          // and contains one of these (case-insensitive)
}

func budErrCases() []budErrCase {
	notFound := []string{"no such file", "not found", "does not exist", "no match", "no file matches"}
	escapes := []string{"outside", "escape", "no such file", "not found", "does not exist"}
	notYet := []string{"not supported yet"}
	return []budErrCase{
		{name: "unknown instruction", dockerfile: "FROM busybox\nRUN true\nRUNN echo hi\n",
			where: "Dockerfile:3: ", words: []string{"unknown instruction: RUNN"}},
		{name: "malformed flag", dockerfile: "FROM busybox\nCOPY --bogus=1 a /a\n", files: map[string]string{"a": "a"},
			where: "Dockerfile:2: ", words: []string{"bogus"}},
		{name: "missing COPY source", dockerfile: "FROM busybox\n# a comment\nCOPY app.jar /app/\n",
			where: "Dockerfile:3: COPY app.jar /app/: ", words: notFound},
		{name: "glob without a match", dockerfile: "FROM busybox\nCOPY *.jar /app/\n", files: map[string]string{"a.txt": "a"},
			where: "Dockerfile:2: ", words: notFound},
		{name: "source ../x outside the context", dockerfile: "FROM busybox\nCOPY ../x /x\n", outside: map[string]string{"x": "outside\n"},
			where: "Dockerfile:2: ", words: escapes},
		{name: "symlink to a file outside the context", dockerfile: "FROM busybox\nRUN true\nCOPY link /link\n",
			files: map[string]string{"link": "-> ../outside.txt"}, outside: map[string]string{"outside.txt": "outside\n"},
			where: "Dockerfile:3: ", words: escapes},
		{name: "absolute symlink out of the context", dockerfile: "FROM busybox\nCOPY link /link\n",
			files: map[string]string{"link": "-> /etc/hostname"}, where: "Dockerfile:2: ", words: escapes},
		{name: "unknown stage in --from", dockerfile: "FROM busybox AS a\nFROM busybox\nCOPY --from=nosuchstage /x /x\n",
			args: []string{"--pull", "never"}, where: "Dockerfile:3: ", words: []string{"nosuchstage"}},
		{name: "failing RUN", dockerfile: "FROM busybox\nRUN echo before > /before\nRUN exit 7\n",
			where: "Dockerfile:3: RUN exit 7: ", words: []string{"exit status 7"}},
		{name: "empty RUN", dockerfile: "FROM busybox\nRUN\n",
			where: "Dockerfile:2: ", words: []string{"empty", "no command", "argument"}},
		{name: "empty exec-form RUN", dockerfile: "FROM busybox\n\nRUN []\n",
			where: "Dockerfile:3: ", words: []string{"empty", "no command", "argument"}},
		{name: "--target that does not exist", dockerfile: "FROM busybox AS a\nRUN true\n", args: []string{"--target", "nope"},
			words: []string{"nope"}},
		{name: "base not in the store with --pull never", dockerfile: "FROM localhost/not-here\nRUN true\n", args: []string{"--pull", "never"},
			where: "Dockerfile:1: ", words: []string{"not-here"}},
		{name: "ENV without a value", dockerfile: "FROM busybox\nENV\n", where: "Dockerfile:2: ", words: []string{"ENV"}},
		{name: "-f names the file in errors", files: map[string]string{"ci/build.Dockerfile": "FROM busybox\nRUNN x\n"},
			args: []string{"-f", "{{CTX}}/ci/build.Dockerfile"}, where: "{{CTX}}/ci/build.Dockerfile:2: ", words: []string{"unknown instruction"}},
		{name: "Containerfile names itself in errors", files: map[string]string{"Containerfile": "FROM busybox\nRUNN x\n"},
			where: "Containerfile:2: ", words: []string{"unknown instruction"}},
		{name: "RUN --mount=type=ssh", dockerfile: "FROM busybox\nRUN true\nRUN --mount=type=ssh true\n", where: "Dockerfile:3: ", words: notYet},
		{name: "RUN --device", dockerfile: "FROM busybox\nRUN --device=/dev/fuse true\n", where: "Dockerfile:2: ", words: notYet},
		{name: "ADD of a git repository", dockerfile: "FROM busybox\nADD https://github.com/moby/buildkit.git /src\n", where: "Dockerfile:2: ", words: notYet},
	}
}

// budError is oneLineError for a build: stdout may hold the STEP lines and
// the output of the steps before the failure, but no image ID.
func budError(t *testing.T, r result, words ...string) string {
	t.Helper()
	out := lines(r.stdout)
	if len(out) > 0 && imageIDRe.MatchString(out[len(out)-1]) {
		t.Errorf("a failed build printed an image ID: %v", r)
	}
	r.stdout = ""
	return oneLineError(t, r, words...)
}

// budNamedImages is a comparable form of the images that have a name.
func budNamedImages(t *testing.T, s *store) []string {
	t.Helper()
	var named []imageEntry
	for _, e := range s.images(t) {
		if len(e.Names) > 0 {
			named = append(named, e)
		}
	}
	return summary(named)
}

func TestBudErrors(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	s.pull(t, "-q", "busybox") // a base the failing builds share, pulled before
	for _, c := range budErrCases() {
		t.Run(c.name, func(t *testing.T) {
			ctx := budContext(t, c.dockerfile, c.files)
			budWriteFiles(t, filepath.Dir(ctx), c.outside)
			replace := strings.NewReplacer("{{CTX}}", ctx)
			var args []string
			for _, a := range c.args {
				args = append(args, replace.Replace(a))
			}
			before := budNamedImages(t, s)
			r := s.run(t, append(append([]string{"bud"}, args...), ctx)...)
			line := budError(t, r, c.words...)
			if where := "forge: " + replace.Replace(c.where); !strings.HasPrefix(line, where) {
				t.Errorf("the error must start with %q: %s", where, line)
			}
			if c.where == "" && !strings.Contains(strings.ToLower(line), "target") && !strings.Contains(strings.ToLower(line), "stage") {
				t.Errorf("the error must say that the target stage is unknown: %s", line)
			}
			if after := budNamedImages(t, s); !slices.Equal(before, after) {
				t.Errorf("the named images changed:\nbefore %q\nafter  %q", before, after)
			}
			if ctrs := s.ctrList(t); len(ctrs) != 0 {
				t.Errorf("working containers left behind: %+v", ctrs)
			}
		})
	}
}
