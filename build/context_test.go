package build

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// contextFixture is a build context with an ignore file, symlinks in and out, and an
// excluded directory with an exception inside.
func contextFixture(t *testing.T) *Context {
	t.Helper()
	dir := t.TempDir()
	ctxTree(t, dir, map[string]string{
		".dockerignore":           "*.log\n!keep.log\nsecret.txt\nnode_modules\ndir\n!dir/keep\nexcluded-link\n**/tmp\n",
		"app.txt":                 "app",
		"a.log":                   "log",
		"keep.log":                "kept",
		"secret.txt":              "secret",
		"node_modules/m/index.js": "js",
		"dir/drop":                "x",
		"dir/keep/k.txt":          "k",
		"dir/keep/tmp/t":          "t",
		"src/main.go":             "package main",
		"src/tmp/scratch":         "s",
		"src/link":                "->main.go",
		"src/empty/":              "",
		"inside-link":             "->/app.txt",            // absolute: resolved inside the context
		"escape-link":             "->../../../etc/passwd", // resolves to <context>/etc/passwd: absent
		"secret-link":             "->secret.txt",          // to an excluded file
		"excluded-link":           "->app.txt",             // the link itself is excluded
		"hostdir":                 "->/etc",                // <context>/etc: absent
	})
	c, err := OpenContext(dir, filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResolveSources(t *testing.T) {
	t.Parallel()
	c := contextFixture(t)
	tests := []struct {
		src   string
		names []string // the sources' names
		rels  []string // their resolved paths in the context
		err   error
	}{
		{src: "app.txt", names: []string{"app.txt"}, rels: []string{"app.txt"}},
		{src: "/app.txt", names: []string{"app.txt"}, rels: []string{"app.txt"}}, // absolute = context root
		{src: "/../app.txt", names: []string{"app.txt"}, rels: []string{"app.txt"}},
		{src: "src/../app.txt", names: []string{"app.txt"}, rels: []string{"app.txt"}},
		{src: ".", names: []string{"."}, rels: []string{"."}},
		{src: "*.log", names: []string{"keep.log"}, rels: []string{"keep.log"}},
		{src: "*.txt", names: []string{"app.txt"}, rels: []string{"app.txt"}},
		{src: "src/*", names: []string{"empty", "link", "main.go"}, rels: []string{"src/empty", "src/main.go", "src/main.go"}},
		{src: "inside-link", names: []string{"inside-link"}, rels: []string{"app.txt"}},
		{src: "dir", names: []string{"dir"}, rels: []string{"dir"}}, // excluded, but holds dir/keep
		{src: "dir/keep/k.txt", names: []string{"k.txt"}, rels: []string{"dir/keep/k.txt"}},
		{src: "missing", err: ErrNoSource},
		{src: "secret.txt", err: ErrNoSource},
		{src: "a.log", err: ErrNoSource},
		{src: "node_modules", err: ErrNoSource},
		{src: "node_modules/m/index.js", err: ErrNoSource},
		{src: "dir/drop", err: ErrNoSource},
		{src: "src/tmp", err: ErrNoSource},
		{src: "secret-link", err: ErrNoSource},
		{src: "excluded-link", err: ErrNoSource},
		{src: "escape-link", err: ErrNoSource},
		{src: "hostdir/passwd", err: ErrNoSource},
		{src: "*/passwd", err: ErrNoMatch},
		{src: "*.nothing", err: ErrNoMatch},
		{src: "secret*", err: ErrNoMatch}, // only excluded files match
		{src: "../x", err: ErrOutsideContext},
		{src: "src/../../x", err: ErrOutsideContext},
		{src: "..", err: ErrOutsideContext},
	}
	r := c.sources()
	for _, tt := range tests {
		got, err := r.resolve(context.Background(), tt.src)
		if tt.err != nil {
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.src) {
				t.Errorf("resolve(%q) = %+v, %v; want %v naming the source", tt.src, got, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("resolve(%q): %v", tt.src, err)
			continue
		}
		var names, rels []string
		for _, s := range got {
			names, rels = append(names, s.name), append(rels, s.rel)
		}
		if !slices.Equal(names, tt.names) || !slices.Equal(rels, tt.rels) {
			t.Errorf("resolve(%q) = names %q rels %q; want %q %q", tt.src, names, rels, tt.names, tt.rels)
		}
	}
	if !errors.Is(ErrNoMatch, ErrNoSource) {
		t.Error("ErrNoMatch is not an ErrNoSource")
	}
}

// tarNames copies sources the way Copy streams them, without a container, and lists the
// archive: name, then "->target" for a link.
func tarNames(t *testing.T, p copyPlan, sources ...string) []string {
	t.Helper()
	ctx := context.Background()
	items, cleanup, err := p.collect(ctx, sources)
	defer cleanup()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		rc := p.tarSource(ctx, it, it.name)
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := hdr.Name
			if hdr.Typeflag == tar.TypeSymlink {
				name += "->" + hdr.Linkname
			}
			out = append(out, name)
		}
		rc.Close()
	}
	return out
}

func TestCopyStreamHonoursContext(t *testing.T) {
	t.Parallel()
	c := contextFixture(t)
	withCtx, err := CopyOptions{Context: c, SourcesInContext: true}.sourceRoot()
	if err != nil {
		t.Fatal(err)
	}
	noCtx, err := CopyOptions{ContextDir: c.Dir}.sourceRoot()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		root    sourceRoot
		sources []string
		want    []string
	}{
		{"a directory skips excluded files", withCtx, []string{"src"},
			[]string{"empty/", "link->main.go", "main.go"}},
		{"an excluded directory appears with its exception", withCtx, []string{"dir"},
			[]string{"keep/", "keep/k.txt"}},
		{"the whole context", withCtx, []string{"."}, []string{
			".dockerignore", "app.txt", "dir/", "dir/keep/", "dir/keep/k.txt",
			"escape-link->../../../etc/passwd", "hostdir->/etc", "inside-link->/app.txt",
			"keep.log", "secret-link->secret.txt",
			"src/", "src/empty/", "src/link->main.go", "src/main.go",
		}},
		{"a followed link takes its own name", withCtx, []string{"inside-link"}, []string{"inside-link"}},
		{"wildcards see only what is left", withCtx, []string{"*.log", "/app.txt"}, []string{"keep.log", "app.txt"}},
		{"without a context nothing is excluded", noCtx, []string{"*.log", "secret.txt"}, []string{"a.log", "keep.log", "secret.txt"}},
		{"without a context an absolute source is a host path", noCtx, []string{filepath.Join(c.Dir, "secret.txt")}, []string{"secret.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tarNames(t, copyPlan{src: tt.root}, tt.sources...)
			if !slices.Equal(got, tt.want) {
				t.Errorf("archive = %q\nwant      %q", got, tt.want)
			}
		})
	}
}

func TestCopyStreamOwnerAndMode(t *testing.T) {
	t.Parallel()
	c := contextFixture(t)
	mode := os.FileMode(0o600)
	p := copyPlan{src: c.sources(), owner: idPair{uid: 7, gid: 8}, mode: &mode}
	items, _, err := p.collect(context.Background(), []string{"src"})
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(p.tarSource(context.Background(), items[0], ""))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 7 || hdr.Gid != 8 {
			t.Errorf("%s: owner %d:%d, want 7:8", hdr.Name, hdr.Uid, hdr.Gid)
		}
		if hdr.Typeflag != tar.TypeSymlink && hdr.Mode != 0o600 {
			t.Errorf("%s: mode %o, want 600", hdr.Name, hdr.Mode)
		}
	}
}

func TestCopyErrorsMatchDigest(t *testing.T) {
	t.Parallel()
	c := contextFixture(t)
	p := copyPlan{src: c.sources()}
	for _, src := range []string{"missing", "secret.txt", "*.nothing", "../x", "escape-link", "hostdir/passwd"} {
		_, _, copyErr := p.collect(context.Background(), []string{src})
		_, digestErr := c.Digest(context.Background(), []string{src}, DigestOptions{})
		if copyErr == nil || digestErr == nil || copyErr.Error() != digestErr.Error() {
			t.Errorf("%s: copy says %v, digest says %v", src, copyErr, digestErr)
		}
	}
}
