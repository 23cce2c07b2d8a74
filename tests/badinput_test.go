package tests

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBadInputLeavesStoreUnchanged feeds forge bad references, broken
// registries and broken images: each must fail with one clear `forge: ` line,
// and the store must list afterwards exactly what it listed before.
func TestBadInputLeavesStoreUnchanged(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	id := s.pull(t, "oci-archive:"+filepath.Join(e2e.Fixtures, "busybox.tar"))
	s.must(t, "tag", id, "localhost/keep:1")
	dir := t.TempDir()
	// The broken images are a variant of busybox that is not in the store, so
	// forge has to read them.
	variant := filepath.Join(e2e.Fixtures, "variant.tar")
	truncated := truncatedCopy(t, variant, filepath.Join(dir, "truncated.tar"))
	corrupt := corruptLayout(t, variant, filepath.Join(dir, "corrupt"))
	server500 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer server500.Close()
	denied := &store{root: filepath.Join(e2e.DeniedDir, "x"), runroot: s.runroot + "-denied", env: s.env}

	cases := []struct {
		name  string
		s     *store
		args  []string
		words []string // the error names the cause with one of these
	}{
		{"malformed reference", s, []string{"pull", "UPPER/Case::x"}, []string{"invalid reference", "reference format", "invalid"}},
		{"unknown image", s, []string{"pull", "--tls-verify=false", e2e.Registry + "/no/such:img"}, []string{"manifest unknown", "not found", "unknown"}},
		{"unreachable registry", s, []string{"pull", "--tls-verify=false", "--retry-delay=10ms", closedPort(t) + "/library/busybox:latest"}, []string{"connection refused"}},
		{"registry answering 500", s, []string{"pull", "--tls-verify=false", "--retry-delay=10ms", strings.TrimPrefix(server500.URL, "http://") + "/library/busybox:latest"}, []string{"500", "internal server error"}},
		{"truncated oci-archive", s, []string{"pull", "oci-archive:" + truncated}, []string{"unexpected eof", "truncated", "eof"}},
		{"corrupted blob", s, []string{"pull", "oci:" + corrupt + ":latest"}, []string{"digest", "checksum", "corrupt", "mismatch", "invalid"}},
		{"root without permission", denied, []string{"pull", "oci-archive:" + variant}, []string{"permission denied"}},
		{"push of an image not in the store", s, []string{"push", "localhost/no-such-image:1", "oci:" + dir + "/out:x"}, []string{"not found", "unknown", "no such", "not known"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := summary(s.images(t))
			oneLineError(t, c.s.run(t, c.args...), c.words...)
			if after := summary(s.images(t)); !slices.Equal(before, after) {
				t.Errorf("the store changed:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// closedPort returns 127.0.0.1:PORT where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// truncatedCopy writes the first half of src to dst.
func truncatedCopy(t *testing.T, src, dst string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// corruptLayout unpacks the OCI archive src as an OCI layout in dir and flips
// bytes in the middle of its layer blob, keeping its size.
func corruptLayout(t *testing.T, src, dir string) string {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if hdr.Typeflag == tar.TypeDir {
			err = os.MkdirAll(path, 0o755)
		} else {
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = errors.Join(os.MkdirAll(filepath.Dir(path), 0o755), os.WriteFile(path, b, 0o644))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	blob := func(d string) string { return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")) }
	var index struct{ Manifests []struct{ Digest string } }
	var m manifest
	if err := json.Unmarshal(mustRead(t, filepath.Join(dir, "index.json")), &index); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mustRead(t, blob(index.Manifests[0].Digest)), &m); err != nil {
		t.Fatal(err)
	}
	layer := blob(m.Layers[0].Digest)
	b := mustRead(t, layer)
	for i := len(b) / 2; i < len(b)/2+64; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(layer, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
