package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// featureFixture is BuildKit's --exclude test tree, with more for --parents and the
// ignore file.
func featureFixture(t *testing.T) *Context {
	t.Helper()
	dir := t.TempDir()
	ctxTree(t, dir, map[string]string{
		".dockerignore":      "ignored.txt\nx/y/ignored.txt\n",
		"dir1/file-101.png":  "2",
		"dir1/file-102.txt":  "3",
		"dir1/file-103.jpeg": "4",
		"dir2/file-201.pdf":  "6",
		"dir2/file-202.jpeg": "7",
		"dir2/file-203.png":  "8",
		"dir3/file-301.mp3":  "9",
		"dir3/file-302.mpeg": "10",
		"dir4/file-401.txt":  "11",
		"dir4/file-402.txt":  "->file-401.txt",
		"dir4/file-403.txt":  "->file-404.txt",
		"home.txt":           "h",
		"home.md":            "h",
		"homer/a.txt":        "a",
		"ignored.txt":        "i",
		"x/a.txt":            "xa",
		"x/y/a.txt":          "xya",
		"x/y/b.txt":          "xyb",
		"x/y/ignored.txt":    "i",
		"y/a.txt":            "ya",
		"src/a.txt":          "a",
		"src/x/b.txt":        "b",
		"src/x/y/c.txt":      "c",
		"src/x/y/d.md":       "d",
	})
	c, err := OpenContext(dir, filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCopyExclude(t *testing.T) {
	t.Parallel()
	c := featureFixture(t)
	tests := []struct {
		name    string
		exclude []string
		sources []string
		want    []string
	}{
		{"below a directory source", []string{"*.mp3"}, []string{"dir3/"}, []string{"file-302.mpeg"}},
		{"below wildcard matches", []string{"*.mp3", "*.jpeg", "*.png", "*.pdf", "*.txt"}, []string{"dir*"}, []string{"file-302.mpeg"}},
		{"everything", []string{"*"}, []string{"dir*"}, nil},
		{"wildcard matches themselves", []string{"*.txt"}, []string{"hom*"}, []string{"home.md"}},
		{"several patterns", []string{"*.png", "*.jpeg"}, []string{"dir1"}, []string{"file-102.txt"}},
		{"an exception", []string{"*", "!file-102.txt"}, []string{"dir1"}, []string{"file-102.txt"}},
		{"a directory", []string{"y"}, []string{"x"}, []string{"a.txt"}},
		{"double star", []string{"**/*.md"}, []string{"src"}, []string{"a.txt", "x/", "x/b.txt", "x/y/", "x/y/c.txt"}},
		{"a path from the source", []string{"x/y"}, []string{"src"}, []string{"a.txt", "x/", "x/b.txt"}},
		{"symlinks by their own name", []string{"file-40[23].txt"}, []string{"dir4"}, []string{"file-401.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := CopyOptions{Context: c, SourcesInContext: true, Exclude: tt.exclude}.sourceRoot()
			if err != nil {
				t.Fatal(err)
			}
			if got := tarNames(t, copyPlan{src: root}, tt.sources...); !slices.Equal(got, tt.want) {
				t.Errorf("archive = %q\nwant      %q", got, tt.want)
			}
		})
	}
}

func TestCopyParents(t *testing.T) {
	t.Parallel()
	c := featureFixture(t)
	tests := []struct {
		name    string
		exclude []string
		sources []string
		want    []string
	}{
		{"files keep their directories", nil, []string{"./x/a.txt", "./y/a.txt"}, []string{"x/", "x/a.txt", "y/", "y/a.txt"}},
		{"a pivot", nil, []string{"./x/./y/*.txt"}, []string{"y/", "y/a.txt", "y/b.txt"}},
		{"double star", nil, []string{"./src/**/*.txt"}, []string{"src/", "src/a.txt", "src/x/", "src/x/b.txt", "src/x/y/", "src/x/y/c.txt"}},
		{"a directory", nil, []string{"x/y"}, []string{"x/", "x/y/", "x/y/a.txt", "x/y/b.txt"}},
		{"an absolute path with a pivot", nil, []string{"/x/./y"}, []string{"y/", "y/a.txt", "y/b.txt"}},
		{"with --exclude", []string{"**/b.txt"}, []string{"x"}, []string{"x/", "x/a.txt", "x/y/", "x/y/a.txt"}},
		{"a wildcard directory level", nil, []string{"*/a.txt"}, []string{"homer/", "homer/a.txt", "src/", "src/a.txt", "x/", "x/a.txt", "y/", "y/a.txt"}},
		{"dot dot stays in the context", nil, []string{"x/../../y/a.txt"}, []string{"y/", "y/a.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := CopyOptions{Context: c, SourcesInContext: true, Parents: true, Exclude: tt.exclude}.sourceRoot()
			if err != nil {
				t.Fatal(err)
			}
			if got := tarNames(t, copyPlan{src: root, opts: CopyOptions{Parents: true}}, tt.sources...); !slices.Equal(got, tt.want) {
				t.Errorf("archive = %q\nwant      %q", got, tt.want)
			}
		})
	}
	for src, want := range map[string]error{"nope/a.txt": ErrNoSource, "*.nothing": ErrNoMatch, "ignored.txt": ErrNoSource,
		"x/y/ignored.txt": ErrNoSource, "../x/./a.txt": ErrOutsideContext} {
		root, _ := CopyOptions{Context: c, SourcesInContext: true, Parents: true}.sourceRoot()
		_, _, copyErr := copyPlan{src: root}.collect(context.Background(), []string{src})
		_, digestErr := c.Digest(context.Background(), []string{src}, DigestOptions{Parents: true})
		if !errors.Is(copyErr, want) || digestErr == nil || copyErr.Error() != digestErr.Error() {
			t.Errorf("--parents %s: copy says %v, digest says %v; want %v from both", src, copyErr, digestErr, want)
		}
	}
}

// The cache key of a COPY with --exclude or --parents covers the files it copies: a
// change to one it leaves out does not change it.
func TestDigestSeesExcludeAndParents(t *testing.T) {
	t.Parallel()
	c := featureFixture(t)
	sum := func(opts DigestOptions, sources ...string) string {
		t.Helper()
		d, err := c.Digest(context.Background(), sources, opts)
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	exclude := DigestOptions{Exclude: []string{"**/*.md"}}
	parents := DigestOptions{Parents: true}
	beforeEx, beforePa := sum(exclude, "src"), sum(parents, "./src/**/*.txt")
	if beforeEx == sum(DigestOptions{}, "src") {
		t.Error("--exclude does not change the digest")
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "src/x/y/d.md"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sum(exclude, "src") != beforeEx || sum(parents, "./src/**/*.txt") != beforePa {
		t.Error("a change to a file the copy leaves out changed the digest")
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "src/x/b.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sum(exclude, "src") == beforeEx || sum(parents, "./src/**/*.txt") == beforePa {
		t.Error("a change to a copied file did not change the digest")
	}
}
