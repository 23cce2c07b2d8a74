package build

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestCopyInlineFiles(t *testing.T) {
	t.Parallel()
	p := copyPlan{src: sourceRoot{dir: t.TempDir()}, owner: idPair{uid: 5, gid: 6},
		opts: CopyOptions{Inline: []InlineFile{{Name: "EOF", Data: "one\n"}, {Name: "conf", Data: "two\n"}}}}
	ctx := context.Background()
	items, cleanup, err := p.collect(ctx, nil)
	defer cleanup()
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Fatalf("%d items, want 2", len(items))
	}
	for i, want := range []struct{ name, data string }{{"EOF", "one\n"}, {"conf", "two\n"}} {
		tr := tar.NewReader(p.tarSource(ctx, items[i], items[i].name))
		hdr, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if hdr.Name != want.name || string(data) != want.data || hdr.Mode != 0o644 || hdr.ModTime.Unix() != 0 || hdr.Uid != 5 || hdr.Gid != 6 {
			t.Errorf("heredoc %s: %s %q mode %o mtime %v owner %d:%d; want %q, 0644, time 0, 5:6",
				want.name, hdr.Name, data, hdr.Mode, hdr.ModTime, hdr.Uid, hdr.Gid, want.data)
		}
	}
}

func TestFetchChecksum(t *testing.T) {
	t.Parallel()
	const body = "downloaded\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) }))
	t.Cleanup(srv.Close)
	good := digest.FromString(body).String()
	tests := []struct {
		checksum string
		err      error
	}{
		{"", nil},
		{good, nil},
		{digest.SHA512.FromString(body).String(), nil},
		{digest.FromString("other").String(), ErrChecksum},
	}
	for _, tt := range tests {
		s, done, err := fetchURL(context.Background(), srv.URL+"/f.txt", tt.checksum)
		if done != nil {
			defer done()
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("--checksum=%s: %v, want %v", tt.checksum, err, tt.err)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), good) {
				t.Errorf("the mismatch error must name the digest found: %v", err)
			}
			continue
		}
		if data, _ := os.ReadFile(s.host); string(data) != body || s.name != "f.txt" {
			t.Errorf("--checksum=%s: %s %q", tt.checksum, s.name, data)
		}
	}
}

func TestParseNamedContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want NamedContext
		err  string
	}{
		{in: "lib=../lib", want: NamedContext{Name: "lib", Dir: "../lib"}},
		{in: "Base=docker-image://alpine:3.19", want: NamedContext{Name: "base", Image: "alpine:3.19"}},
		{in: "b=container-image://localhost/x@sha256:" + strings.Repeat("a", 64), want: NamedContext{Name: "b", Image: "localhost/x@sha256:" + strings.Repeat("a", 64)}},
		{in: "x=/abs/dir=with=equals", want: NamedContext{Name: "x", Dir: "/abs/dir=with=equals"}},
		{in: "noequals", err: "NAME="},
		{in: "=dir", err: "NAME="},
		{in: "x=", err: "NAME="},
		{in: "x=docker-image://", err: "no image"},
		{in: "x=https://example.com/c.tar.gz", err: "not supported yet"},
		{in: "x=git@github.com:a/b.git", err: "not supported yet"},
		{in: "x=oci-layout:///tmp/l", err: "not supported yet"},
		{in: "a b=dir", err: "not a valid name"},
	}
	for _, tt := range tests {
		got, err := ParseNamedContext(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want one saying %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestCheckCopyAndAdd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string // the second line of a Dockerfile
		err  string // "" for accepted
	}{
		{line: "COPY <<EOF /f\nhello\nEOF"},
		{line: "ADD <<EOF /f\nhello\nEOF"},
		{line: "COPY --link --parents --exclude=*.tmp --exclude=x a /d/"},
		{line: "ADD --link --exclude=*.tmp a /d/"},
		{line: "ADD --checksum=sha256:" + strings.Repeat("a", 64) + " https://example.com/f /f"},
		{line: "ADD --checksum=sha256:abc https://example.com/f /f", err: "--checksum"},
		{line: "ADD --checksum=$SUM ${URL} /f"}, // checked once expanded
		{line: "ADD --checksum=sha256:" + strings.Repeat("a", 64) + " a /f", err: "http"},
		{line: "ADD --checksum=sha256:" + strings.Repeat("a", 64) + " https://e.com/a https://e.com/b /d/", err: "one source"},
		{line: "ADD https://github.com/moby/buildkit.git /src", err: "git repository (https://github.com/moby/buildkit.git) is not supported yet"},
		{line: "ADD git@github.com:moby/buildkit.git#v0.1 /src", err: "not supported yet"},
		{line: "ADD --keep-git-dir https://github.com/moby/buildkit.git /src", err: "not supported yet"},
		{line: "ADD --unpack=true https://example.com/a.tar.gz /", err: "ADD --unpack is not supported yet"},
		{line: "ADD https://example.com/archive.tar.gz /"},
	}
	for _, tt := range tests {
		_, err := ParseDockerfile(strings.NewReader("FROM busybox\n"+tt.line+"\n"), "Dockerfile")
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v", tt.line, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "Dockerfile:2: ")):
			t.Errorf("%q: error %v, want Dockerfile:2: ... %s", tt.line, err, tt.err)
		}
	}
}

func TestChownByName(t *testing.T) {
	t.Parallel()
	for chown, want := range map[string]bool{"": false, "0": false, "1000:1000": false, "user": true,
		"1000:staff": true, "app:0": true} {
		if got := chownByName(chown); got != want {
			t.Errorf("chownByName(%q) = %v, want %v", chown, got, want)
		}
	}
}
