package build

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/patternmatcher/ignorefile"
)

// ctxTree builds files under root: "p": "text" is a file, "p/": "" a directory, and
// "p": "->target" a symlink.
func ctxTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		host := filepath.Join(root, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(host, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, host)
		} else {
			err = os.WriteFile(host, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestIgnoreFilePrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		dockerfile string   // relative to the context
		present    []string // ignore files that exist, each excluding a file of its own name
		want       string   // the one that is read; "" for none
	}{
		{"none", "Dockerfile", nil, ""},
		{"dockerignore", "Dockerfile", []string{".dockerignore"}, ".dockerignore"},
		{"containerignore before dockerignore", "Dockerfile", []string{".dockerignore", ".containerignore"}, ".containerignore"},
		{"per-Dockerfile first", "ci/Dockerfile", []string{".dockerignore", ".containerignore", "ci/Dockerfile.dockerignore"}, "ci/Dockerfile.dockerignore"},
		{"per-Containerfile containerignore", "Containerfile", []string{".dockerignore", "Containerfile.containerignore"}, "Containerfile.containerignore"},
		{"per-Dockerfile dockerignore before its containerignore", "Dockerfile", []string{"Dockerfile.containerignore", "Dockerfile.dockerignore"}, "Dockerfile.dockerignore"},
		{"another Dockerfile's file is not read", "Dockerfile", []string{"ci/Dockerfile.dockerignore", ".dockerignore"}, ".dockerignore"},
		{"stdin has no file of its own", "-", []string{"-.dockerignore", ".dockerignore"}, ".dockerignore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			files := map[string]string{}
			for _, p := range tt.present {
				files[p] = "marker-" + filepath.Base(p) + "\n"
				files["marker-"+filepath.Base(p)] = "x"
			}
			ctxTree(t, dir, files)
			df := tt.dockerfile
			if df != "-" {
				df = filepath.Join(dir, df)
			}
			c, err := OpenContext(dir, df)
			if err != nil {
				t.Fatal(err)
			}
			want := ""
			if tt.want != "" {
				want = filepath.Join(dir, tt.want)
			}
			if c.IgnoreFile != want {
				t.Errorf("IgnoreFile = %q, want %q", c.IgnoreFile, want)
			}
			for _, p := range tt.present {
				got, err := c.Excluded("marker-"+filepath.Base(p), false)
				if err != nil || got != (p == tt.want) {
					t.Errorf("Excluded(marker of %s) = %v, %v; want %v", p, got, err, p == tt.want)
				}
			}
		})
	}
}

func TestExcluded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctxTree(t, dir, map[string]string{".dockerignore": `
# a comment, then a blank line

*.log
!keep.log
**/tmp
/abs
./rel
dir
!dir/keep
docs/*/draft
!docs/*/draft/final.md
  spaced  
`})
	c, err := OpenContext(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path  string
		isDir bool
		want  bool
	}{
		{"a.log", false, true},
		{"keep.log", false, false},
		{"sub/a.log", false, false}, // * does not cross /
		{"tmp", true, true},         // ** matches no directory too
		{"tmp/x", false, true},
		{"a/b/tmp", true, true},
		{"a/b/tmp/c", false, true},
		{"abs", false, true},
		{"/abs", false, true}, // a leading / is the context root
		{"sub/abs", false, false},
		{"rel", false, true},
		{"rel/inner", false, true}, // below an excluded directory
		{"dir", false, true},       // as a file: excluded
		{"dir", true, false},       // as a directory: !dir/keep needs it walked
		{"dir/other", false, true},
		{"dir/keep", false, false},
		{"dir/keep/deep", false, false},
		{"docs/en/draft", true, false}, // the wildcard exception may re-include below
		{"docs/en/draft/x.md", false, true},
		{"docs/en/draft/final.md", false, false},
		{"spaced", false, true},
		{"# a comment, then a blank line", false, false},
		{"other", false, false},
		{".", true, false},
		{"", true, false},
	}
	for _, tt := range tests {
		got, err := c.Excluded(tt.path, tt.isDir)
		if err != nil || got != tt.want {
			t.Errorf("Excluded(%q, %v) = %v, %v; want %v", tt.path, tt.isDir, got, err, tt.want)
		}
	}
}

func TestMayReinclude(t *testing.T) {
	t.Parallel()
	tests := []struct {
		patterns []string
		dir      string
		want     bool
	}{
		{[]string{"dir"}, "dir", false},
		{[]string{"dir", "!dir/keep"}, "dir", true},
		{[]string{"dir", "!dir/keep"}, "other", false},
		{[]string{"a", "!a/b/c"}, "a/b", true},
		{[]string{"a", "!a/bc"}, "a/b", false},
		{[]string{"*", "!**/keep"}, "anything", true},
		{[]string{"*", "!*/keep"}, "x", true},
		{[]string{"*", "!*/keep"}, "x/y", false},
		{[]string{"*", "!*.md"}, "node_modules", false},
		{[]string{"*", "!src"}, "src", false}, // src itself matched: decided by its own match
		// The matcher's regular expression reads these differently from path.Match.
		{[]string{"*", "!*\xff/*e*"}, "\xb0", true}, // invalid UTF-8: any such byte is U+FFFD
		{[]string{"[b]x", "![/b]x/y"}, "bx", true},  // a class holding "/"
		{[]string{"*", "!a[.-0]b"}, "a", true},      // a range across "/"
		{[]string{"*", "!a[!-0]b/c"}, "a/b", true},
		{[]string{"*", "!d[[:alpha:]]/x"}, "dx", true}, // POSIX classes
		{[]string{"*", "!a[[:punct:]]b"}, "a", true},
	}
	for _, tt := range tests {
		r, err := newIgnoreRules(tt.patterns)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.mayReinclude(tt.dir); got != tt.want {
			t.Errorf("%q: mayReinclude(%q) = %v, want %v", tt.patterns, tt.dir, got, tt.want)
		}
	}
}

func TestOpenContextErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctxTree(t, dir, map[string]string{".dockerignore": "ok\n!\n", "file": "x"})
	if _, err := OpenContext(dir, ""); err == nil || !strings.Contains(err.Error(), ".dockerignore") {
		t.Errorf("a bad pattern: err = %v, want one naming the file", err)
	}
	if _, err := OpenContext(filepath.Join(dir, "file"), ""); err == nil {
		t.Error("a file as the context: no error")
	}
	if _, err := OpenContext(filepath.Join(dir, "missing"), ""); err == nil {
		t.Error("a missing context: no error")
	}
}

// FuzzIgnoreRules checks what the context walk relies on for any ignore file and path: a
// directory that is excluded while something below it is included again is one
// mayReinclude says must still be walked (otherwise those files would silently be left
// out of the build). Matching goes segment by segment from the root, as BuildKit's does;
// the matcher's whole-path function differs from it for exceptions that match a parent
// (["0/0/0", "!0"] and "0/0/0/1"), so the two are not compared.
func FuzzIgnoreRules(f *testing.F) {
	for _, s := range []struct{ patterns, path string }{
		{"*.log\n!keep.log\n", "keep.log"},
		{"dir\n!dir/keep\n", "dir/keep/deep"},
		{"docs/*/draft\n!docs/*/draft/final.md\n", "docs/en/draft/final.md"},
		{"**/tmp\n", "a/b/tmp/c"},
		{"*\n!**/keep\n", "x/y/keep"},
		{"*\n!*/keep\n", "x/keep"},
		{"a\n!a/b/c\n", "a/b/c"},
		{"/abs\n./rel\n", "rel/inner"},
		{"[a-c]*\n![b]x/*\n", "bx/y"},
		{"a?c\n!a?c/d\\*\n", "abc/d*"},
	} {
		f.Add(s.patterns, s.path)
	}
	f.Fuzz(func(t *testing.T, patterns, rel string) {
		if len(patterns) > 400 || len(rel) > 120 {
			return
		}
		lines, err := ignorefile.ReadAll(strings.NewReader(patterns))
		if err != nil || len(lines) > 12 {
			return
		}
		r, err := newIgnoreRules(lines)
		if err != nil || r == nil {
			return
		}
		rel = path.Clean(strings.TrimLeft(rel, "/"))
		if rel == "." || strings.HasPrefix(rel, "../") || rel == ".." || strings.Count(rel, "/") > 6 {
			return
		}
		excluded, _, err := r.matchPath(rel)
		if err != nil {
			return
		}
		if excluded {
			return
		}
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			if dirExcluded, _, err := r.matchPath(d); err == nil && dirExcluded && !r.mayReinclude(d) {
				t.Fatalf("patterns %q: %q is included, but its excluded parent %q would not be walked", lines, rel, d)
			}
		}
	})
}
