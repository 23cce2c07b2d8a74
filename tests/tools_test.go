package tests

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// tool runs a program that is not forge and returns its stdout; it fails the test on error.
func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, stderr, err := toolResult(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return out
}

func toolResult(name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// skopeo runs skopeo without a signature policy check.
func skopeo(t *testing.T, args ...string) string {
	t.Helper()
	return tool(t, "skopeo", append([]string{"--insecure-policy"}, args...)...)
}

// tlsOff returns skopeo's flag that allows plain HTTP for a docker:// reference.
func tlsOff(flag, ref string) []string {
	if strings.HasPrefix(ref, "docker://") {
		return []string{flag + "=false"}
	}
	return nil
}

// manifest is the part of an OCI or Docker schema 2 manifest the tests read.
type manifest struct {
	MediaType string `json:"mediaType"`
	Config    struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	} `json:"layers"`
}

// imageConfig is the part of an image config the tests read.
type imageConfig struct {
	Config struct {
		Cmd []string `json:"Cmd"`
		Env []string `json:"Env"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func decodeJSON(t *testing.T, what, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%s: %v in %q", what, err, s)
	}
}

// skopeoInspect reads the manifest, its digest and the config of ref with skopeo.
func skopeoInspect(t *testing.T, ref string) (manifest, string, imageConfig) {
	t.Helper()
	var m manifest
	decodeJSON(t, "skopeo inspect --raw", skopeo(t, append(append([]string{"inspect", "--raw"}, tlsOff("--tls-verify", ref)...), ref)...), &m)
	var c imageConfig
	decodeJSON(t, "skopeo inspect --config", skopeo(t, append(append([]string{"inspect", "--config"}, tlsOff("--tls-verify", ref)...), ref)...), &c)
	var info struct{ Digest string }
	decodeJSON(t, "skopeo inspect", skopeo(t, append(append([]string{"inspect"}, tlsOff("--tls-verify", ref)...), ref)...), &info)
	return m, info.Digest, c
}

// fixture is what the busybox fixture holds, read with archive/tar.
type fixture struct {
	ManifestDigest string
	ConfigDigest   string
	DiffIDs        []string
	Hello, Busybox []byte
}

var busyboxFixture = sync.OnceValues(func() (fixture, error) {
	return readFixture(filepath.Join(e2e.Fixtures, "busybox.tar"))
})

func wantFixture(t *testing.T) fixture {
	t.Helper()
	f, err := busyboxFixture()
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return f
}

func readFixture(path string) (fixture, error) {
	archive, err := os.Open(path)
	if err != nil {
		return fixture{}, err
	}
	defer archive.Close()
	files, _, err := readTar(archive)
	if err != nil {
		return fixture{}, err
	}
	var index struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		return fixture{}, fmt.Errorf("index.json: %v", err)
	}
	blob := func(d string) []byte { return files["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")] }
	f := fixture{ManifestDigest: index.Manifests[0].Digest}
	var m manifest
	var c imageConfig
	if err := errors.Join(json.Unmarshal(blob(f.ManifestDigest), &m), json.Unmarshal(blob(m.Config.Digest), &c)); err != nil {
		return fixture{}, err
	}
	f.DiffIDs, f.ConfigDigest = c.RootFS.DiffIDs, m.Config.Digest
	layer, _, err := readTar(maybeGunzip(blob(m.Layers[0].Digest)))
	if err != nil {
		return fixture{}, err
	}
	f.Hello, f.Busybox = layer["home/user/hello.txt"], layer["bin/busybox"]
	if f.Hello == nil || f.Busybox == nil {
		return fixture{}, errors.New("fixture layer lacks hello.txt or busybox")
	}
	return f, nil
}

func maybeGunzip(b []byte) io.Reader {
	if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
		return zr
	}
	return bytes.NewReader(b)
}

// readTar returns the regular files and all headers of a tar stream by name
// (without a leading "./" or "/").
func readTar(r io.Reader) (map[string][]byte, map[string]*tar.Header, error) {
	files, hdrs := map[string][]byte{}, map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, hdrs, nil
		}
		if err != nil {
			return nil, nil, err
		}
		name := strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/")
		hdrs[name] = hdr
		if hdr.Typeflag == tar.TypeReg {
			if files[name], err = io.ReadAll(tr); err != nil {
				return nil, nil, err
			}
		}
	}
}

// verifyOpts says what verifyImage checks beyond manifest, config and file contents.
type verifyOpts struct {
	skipOwners bool // the single-ID mode cannot keep uid 1000
}

// verifyImage checks, with skopeo, umoci and archive/tar, that ref (any
// containers-transports reference) holds the busybox fixture: same layer
// content (diff IDs), same config, same files and owners. It returns the
// manifest and the manifest digest skopeo reports.
func verifyImage(t *testing.T, ref string, opts verifyOpts) (manifest, string) {
	t.Helper()
	want := wantFixture(t)
	m, digest, c := skopeoInspect(t, ref)
	if len(m.Layers) != 1 {
		t.Fatalf("%s: want 1 layer, manifest has %d", ref, len(m.Layers))
	}
	if !slices.Equal(c.RootFS.DiffIDs, want.DiffIDs) {
		t.Errorf("%s: diff IDs %v, fixture has %v (layer content changed)", ref, c.RootFS.DiffIDs, want.DiffIDs)
	}
	if !slices.Equal(c.Config.Cmd, []string{"sh"}) {
		t.Errorf("%s: Cmd %q, want [sh]", ref, c.Config.Cmd)
	}
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	skopeo(t, append(append([]string{"copy", "-q"}, tlsOff("--src-tls-verify", ref)...), ref, "oci:"+layout+":img")...)
	bundle := filepath.Join(dir, "bundle")
	tool(t, "umoci", "unpack", "--rootless", "--image", layout+":img", bundle)
	rootfs := filepath.Join(bundle, "rootfs")
	for path, content := range map[string][]byte{"home/user/hello.txt": want.Hello, "bin/busybox": want.Busybox} {
		got, err := os.ReadFile(filepath.Join(rootfs, path))
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("%s: umoci-unpacked /%s differs from the fixture (err %v)", ref, path, err)
		}
	}
	if target, err := os.Readlink(filepath.Join(rootfs, "bin/sh")); err != nil || target != "busybox" {
		t.Errorf("%s: /bin/sh: link to %q, err %v; want a link to busybox", ref, target, err)
	}
	if !opts.skipOwners {
		checkOwners(t, ref, bundle, layout)
	}
	return m, digest
}

// checkOwners checks that /home/user/hello.txt belongs to 1000:1000 twice:
// in the owner umoci recorded when unpacking (rootless, umoci keeps it in the
// mtree as a user.rootlesscontainers xattr), and in the layer tar's header.
func checkOwners(t *testing.T, ref, bundle, layout string) {
	t.Helper()
	uid, gid, err := mtreeOwner(bundle, "hello.txt")
	if err != nil || uid != 1000 || gid != 1000 {
		t.Errorf("%s: umoci records /home/user/hello.txt as %d:%d (err %v), want 1000:1000", ref, uid, gid, err)
	}
	hdr := layoutLayerHeader(t, layout, "home/user/hello.txt")
	if hdr.Uid != 1000 || hdr.Gid != 1000 || hdr.Mode&0o7777 != 0o640 {
		t.Errorf("%s: layer tar has home/user/hello.txt as %d:%d mode %o, want 1000:1000 mode 640", ref, hdr.Uid, hdr.Gid, hdr.Mode)
	}
}

// mtreeOwner reads the owner umoci recorded for the file called name in the
// bundle's mtree: a rootless unpack stores it as the base64 protobuf
// xattr.user.rootlesscontainers (field 1 uid, field 2 gid; absent = 0:0).
func mtreeOwner(bundle, name string) (uid, gid uint64, err error) {
	mtrees, _ := filepath.Glob(filepath.Join(bundle, "*.mtree"))
	if len(mtrees) != 1 {
		return 0, 0, fmt.Errorf("want one mtree in %s, found %v", bundle, mtrees)
	}
	f, err := os.Open(mtrees[0])
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != name {
			continue
		}
		for _, kw := range fields[1:] {
			if v, ok := strings.CutPrefix(kw, "xattr.user.rootlesscontainers="); ok {
				return decodeRootlessOwner(v)
			}
		}
		return 0, 0, nil
	}
	return 0, 0, fmt.Errorf("%s not in %s", name, mtrees[0])
}

func decodeRootlessOwner(b64 string) (uid, gid uint64, err error) {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return 0, 0, err
	}
	for len(b) > 0 {
		key, n := readUvarint(b)
		if n <= 0 {
			return 0, 0, errors.New("bad rootlesscontainers xattr")
		}
		val, m := readUvarint(b[n:])
		if m <= 0 || key&7 != 0 {
			return 0, 0, errors.New("bad rootlesscontainers xattr")
		}
		switch key >> 3 {
		case 1:
			uid = val
		case 2:
			gid = val
		}
		b = b[n+m:]
	}
	return uid, gid, nil
}

func readUvarint(b []byte) (uint64, int) {
	var v uint64
	for i, c := range b {
		if i == 10 {
			return 0, -1
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}

// layoutLayerHeader returns the tar header of path in the single layer of the
// OCI layout's image "img".
func layoutLayerHeader(t *testing.T, layout, path string) *tar.Header {
	t.Helper()
	blob := func(d string) []byte {
		b, err := os.ReadFile(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var index struct{ Manifests []struct{ Digest string } }
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	decodeJSON(t, "index.json", string(b), &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("%s: want one manifest, index.json: %s", layout, b)
	}
	var m manifest
	decodeJSON(t, "manifest", string(blob(index.Manifests[0].Digest)), &m)
	_, hdrs, err := readTar(maybeGunzip(blob(m.Layers[0].Digest)))
	if err != nil {
		t.Fatalf("read layer: %v", err)
	}
	hdr := hdrs[path]
	if hdr == nil {
		t.Fatalf("layer has no %s", path)
	}
	return hdr
}

// request is one line of a registry's access log.
type request struct {
	Method, Path string
	Status       int
}

var accessLogRe = regexp.MustCompile(`"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d{3}) `)

// registryRequests reads a registry's access log once it stops growing.
func registryRequests(t *testing.T, logPath string) []request {
	t.Helper()
	var data []byte
	for i := 0; i < 20; i++ { // the registry logs a request after answering it
		time.Sleep(150 * time.Millisecond)
		b, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && len(b) == len(data) {
			break
		}
		data = b
	}
	var reqs []request
	for _, line := range strings.Split(string(data), "\n") {
		if m := accessLogRe.FindStringSubmatch(line); m != nil {
			status, _ := strconv.Atoi(m[3])
			reqs = append(reqs, request{Method: m[1], Path: m[2], Status: status})
		}
	}
	return reqs
}

// countRequests counts the requests with one of the methods whose path starts with prefix.
func countRequests(reqs []request, prefix string, methods ...string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r.Path, prefix) && slices.Contains(methods, r.Method) {
			n++
		}
	}
	return n
}

// checkKeys checks that the JSON object doc has each key, spelled exactly
// (encoding/json matches names case-insensitively; jq and scripts do not).
func checkKeys(t *testing.T, what string, doc []byte, keys ...string) {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil {
		t.Errorf("%s: not a JSON object: %v", what, err)
		return
	}
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Errorf("%s: no key %q (keys: %v)", what, k, slices.Sorted(maps.Keys(obj)))
		}
	}
}

// imageEntry is one element of `forge images --json`.
type imageEntry struct {
	ID     string   `json:"id"`
	Names  []string `json:"names"`
	Digest string   `json:"digest"`
	Size   int64    `json:"size"`
}

// images lists the store with `forge images --json`, which must be a JSON array.
func (s *store) images(t *testing.T) []imageEntry {
	t.Helper()
	out := s.must(t, "images", "--json")
	if !strings.HasPrefix(strings.TrimSpace(out), "[") {
		t.Fatalf("images --json must print a JSON array, got %q", out)
	}
	var entries []imageEntry
	decodeJSON(t, "images --json", out, &entries)
	var raw []json.RawMessage
	decodeJSON(t, "images --json", out, &raw)
	for _, e := range raw {
		checkKeys(t, "images --json", e, "id", "names", "digest", "created", "size")
	}
	return entries
}

// summary is a comparable form of an image list: "ID name name..." sorted.
func summary(entries []imageEntry) []string {
	var out []string
	for _, e := range entries {
		names := slices.Clone(e.Names)
		sort.Strings(names)
		out = append(out, strings.Join(append([]string{e.ID}, names...), " "))
	}
	sort.Strings(out)
	return out
}

// uniqueRepo returns a repository name no other test uses.
func uniqueRepo(prefix string) string {
	return fmt.Sprintf("e2e/%s-%d", prefix, time.Now().UnixNano())
}
