package tests

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Scripted builds (issue 3): forge from / run / copy / config / commit, seen
// from the outside with skopeo, umoci and archive/tar.

// workingContainer runs `forge from ARGS...` and returns the container name,
// which must be all that stdout holds.
func (s *store) workingContainer(t *testing.T, args ...string) string {
	t.Helper()
	r := s.run(t, append([]string{"from"}, args...)...)
	if r.code != 0 {
		t.Fatalf("want exit 0, got %v", r)
	}
	out := lines(r.stdout)
	if len(out) != 1 || strings.TrimSpace(out[0]) != out[0] {
		t.Fatalf("from: stdout must be just the container name, got %v", r)
	}
	return out[0]
}

// ctrEntry is one element of `forge containers --json`.
type ctrEntry struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	ImageID   string `json:"imageid"`
	ImageName string `json:"imagename"`
}

// ctrList lists the working containers with `forge containers --json`.
func (s *store) ctrList(t *testing.T) []ctrEntry {
	t.Helper()
	out := s.must(t, "containers", "--json")
	var entries []ctrEntry
	decodeJSON(t, "containers --json", out, &entries)
	var raw []json.RawMessage
	decodeJSON(t, "containers --json", out, &raw)
	for _, e := range raw {
		checkKeys(t, "containers --json", e, "id", "name", "imageid", "imagename")
	}
	return entries
}

// ctrNames returns the sorted names of the working containers.
func (s *store) ctrNames(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, c := range s.ctrList(t) {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	return names
}

// historyConfig is the image config's history, which imageConfig leaves out.
type historyConfig struct {
	Config struct {
		Entrypoint []string `json:"Entrypoint"`
	} `json:"config"`
	History []struct {
		CreatedBy  string `json:"created_by"`
		EmptyLayer bool   `json:"empty_layer"`
	} `json:"history"`
}

// layoutLayers copies ref into an OCI layout with skopeo and returns the
// layout's path and every layer of image "img", read with archive/tar, in
// manifest order.
func layoutLayers(t *testing.T, ref string) (string, []layerFiles) {
	t.Helper()
	layout := filepath.Join(t.TempDir(), "layout")
	skopeo(t, append(append([]string{"copy", "-q"}, tlsOff("--src-tls-verify", ref)...), ref, "oci:"+layout+":img")...)
	blob := func(d string) []byte {
		return mustReadFile(t, filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
	}
	var index struct{ Manifests []struct{ Digest string } }
	decodeJSON(t, "index.json", string(mustReadFile(t, filepath.Join(layout, "index.json"))), &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("%s: want one manifest in index.json, got %d", layout, len(index.Manifests))
	}
	var m manifest
	decodeJSON(t, "manifest", string(blob(index.Manifests[0].Digest)), &m)
	var out []layerFiles
	for _, l := range m.Layers {
		files, hdrs, err := readTar(maybeGunzip(blob(l.Digest)))
		if err != nil {
			t.Fatalf("read layer %s: %v", l.Digest, err)
		}
		out = append(out, layerFiles{files: files, hdrs: hdrs})
	}
	return layout, out
}

// layerFiles is one layer tar: regular files' contents and all headers by name.
type layerFiles struct {
	files map[string][]byte
	hdrs  map[string]*tar.Header
}

func (l layerFiles) names() []string {
	var names []string
	for n := range l.hdrs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// umociRootfs unpacks image "img" of an OCI layout with umoci and returns the rootfs.
func umociRootfs(t *testing.T, layout string) string {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle")
	tool(t, "umoci", "unpack", "--rootless", "--image", layout+":img", bundle)
	return filepath.Join(bundle, "rootfs")
}

// TestScriptedSeedFlow is the seed's manual flow: from busybox (a short name,
// through the registry mirror), run a command that creates a file and deletes
// one of the base's, commit with -c "CMD ...", push, and look at the pushed
// image with skopeo, umoci and archive/tar.
func TestScriptedSeedFlow(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctr := s.workingContainer(t, "busybox")
	if ctr != "busybox-working-container" {
		t.Errorf("from busybox: container name %q, want busybox-working-container", ctr)
	}
	if again := s.workingContainer(t, "-q", "busybox"); again != "busybox-working-container-1" {
		t.Errorf("second from busybox: container name %q, want busybox-working-container-1", again)
	}
	s.must(t, "run", ctr, "--", "sh", "-c", "echo hi > /hello; rm /bin/vi")

	r := s.run(t, "commit", "-c", "CMD ['redis-server']", ctr, "localhost/seed")
	if r.code != 0 {
		t.Fatalf("commit: %v", r)
	}
	id := onlyImageID(t, r)
	if got := s.images(t); !slices.ContainsFunc(got, func(e imageEntry) bool {
		return e.ID == id && slices.Contains(e.Names, "localhost/seed:latest")
	}) {
		t.Errorf("images does not list %s as localhost/seed:latest: %+v", id, got)
	}

	ref := "docker://" + e2e.Registry + "/" + uniqueRepo("seed") + ":latest"
	s.must(t, "push", "-q", "--tls-verify=false", "localhost/seed", ref)

	m, _, c := skopeoInspect(t, ref)
	base := wantFixture(t)
	if want := []string{"/bin/sh", "-c", "['redis-server']"}; !slices.Equal(c.Config.Cmd, want) {
		t.Errorf("Cmd %q, want %q (CMD with a non-JSON argument is shell form)", c.Config.Cmd, want)
	}
	if len(m.Layers) != len(base.DiffIDs)+1 {
		t.Fatalf("want %d layers (the base's and one more), manifest has %d", len(base.DiffIDs)+1, len(m.Layers))
	}
	if !slices.Equal(c.RootFS.DiffIDs[:len(base.DiffIDs)], base.DiffIDs) {
		t.Errorf("diff IDs %v do not start with the base's %v", c.RootFS.DiffIDs, base.DiffIDs)
	}
	var h historyConfig
	decodeJSON(t, "skopeo inspect --config", skopeo(t, "inspect", "--config", "--tls-verify=false", ref), &h)
	var nonEmpty int
	for _, e := range h.History {
		if !e.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != len(m.Layers) || h.History[len(h.History)-1].CreatedBy == "" {
		t.Errorf("history %+v: want one non-empty entry per layer (%d), the last with created_by", h.History, len(m.Layers))
	}

	layout, layers := layoutLayers(t, ref)
	top := layers[len(layers)-1]
	if _, ok := top.hdrs["bin/.wh.vi"]; !ok {
		t.Errorf("the new layer has no whiteout bin/.wh.vi; it holds %q", top.names())
	}
	if got := string(top.files["hello"]); got != "hi\n" {
		t.Errorf("the new layer's /hello is %q, want %q", got, "hi\n")
	}
	if _, ok := top.hdrs["bin/busybox"]; ok {
		t.Errorf("the new layer holds bin/busybox, an unchanged file of the base: %q", top.names())
	}

	rootfs := umociRootfs(t, layout)
	if got, err := os.ReadFile(filepath.Join(rootfs, "hello")); err != nil || string(got) != "hi\n" {
		t.Errorf("umoci-unpacked /hello: %q, %v; want %q", got, err, "hi\n")
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "bin/vi")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("umoci-unpacked image still has /bin/vi (err %v)", err)
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "bin/sh")); err != nil {
		t.Errorf("umoci-unpacked image lost /bin/sh: %v", err)
	}
}

// TestScriptedRunBehaviour: the default command of a committed image, exit
// codes, --network none, --user, --env, --workingdir, --hostname, --volume, -i.
func TestScriptedRunBehaviour(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	base := s.workingContainer(t, "-q", "busybox")
	s.must(t, "run", base, "--", "sh", "-c", "echo hi > /hello")
	s.must(t, "config", "--cmd", "cat /hello", base)
	onlyImageID(t, s.run(t, "commit", "-q", base, "localhost/cat-hello"))
	ctr := s.workingContainer(t, "--pull", "never", "localhost/cat-hello")

	if got := s.must(t, "run", ctr); got != "hi\n" {
		t.Errorf("run with no command (CMD cat /hello): stdout %q, want %q", got, "hi\n")
	}
	s.must(t, "config", "--entrypoint", `["/bin/echo","ep"]`, "--cmd", "a b", ctr)
	if got := s.must(t, "run", ctr); got != "ep a b\n" {
		t.Errorf("run with ENTRYPOINT [/bin/echo ep] and CMD [a b]: stdout %q, want %q", got, "ep a b\n")
	}

	for _, code := range []int{0, 1, 42} {
		if r := s.run(t, "run", ctr, "--", "sh", "-c", "exit "+strconv.Itoa(code)); r.code != code {
			t.Errorf("exit %d in the container: forge exited %d\n%v", code, r.code, r)
		}
	}
	r := s.run(t, "run", ctr, "--", "no-such-command")
	if r.code != 127 || !strings.Contains(strings.ToLower(r.stderr), "not found") {
		t.Errorf("a missing command: want exit 127 and \"not found\" on stderr, got %v", r)
	}

	volume := t.TempDir()
	if err := os.WriteFile(filepath.Join(volume, "in"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"network none has only lo", []string{"--network", "none", ctr, "--", "sh", "-c", "ls /sys/class/net; sed 1,2d /proc/net/dev | cut -d: -f1 | tr -d ' '; ip -o link | cut -d: -f2 | tr -d ' '"}, "lo\nlo\nlo\n"},
		{"user 1000", []string{"--user", "1000", ctr, "--", "sh", "-c", "id -u; id -g"}, "1000\n1000\n"},
		{"user by name", []string{"--user", "user", ctr, "--", "id", "-un"}, "user\n"},
		{"user uid:gid", []string{"-u", "1000:65534", ctr, "--", "sh", "-c", "id -u; id -g"}, "1000\n65534\n"},
		{"root by default", []string{ctr, "--", "id", "-u"}, "0\n"},
		{"env", []string{"-e", "FOO=bar baz", ctr, "--", "sh", "-c", `echo "$FOO"`}, "bar baz\n"},
		{"workingdir", []string{"--workingdir", "/home/user", ctr, "--", "pwd"}, "/home/user\n"},
		{"hostname", []string{"--hostname", "forge-test-host", ctr, "--", "hostname"}, "forge-test-host\n"},
		{"volume", []string{"-v", volume + ":/data", ctr, "--", "sh", "-c", "cat /data/in; echo back > /data/out"}, "from the host\n"},
		{"volume ro", []string{"-v", volume + ":/data:ro", ctr, "--", "sh", "-c", "cat /data/in; if echo x > /data/ro; then echo WROTE; fi"}, "from the host\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.run(t, append([]string{"run"}, c.args...)...)
			if r.code != 0 || r.stdout != c.want {
				t.Errorf("want exit 0 and stdout %q, got %v", c.want, r)
			}
		})
	}
	if got, err := os.ReadFile(filepath.Join(volume, "out")); err != nil || string(got) != "back\n" {
		t.Errorf("a write to a --volume must reach the host: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(volume, "ro")); err == nil {
		t.Errorf("a write to a read-only --volume reached the host")
	}

	// A commit of configuration changes only adds no layer.
	meta := s.workingContainer(t, "--pull", "never", "localhost/cat-hello")
	s.must(t, "config", "--label", "forge.test=meta", "--env", "A=1", meta)
	metaRef := "oci:" + filepath.Join(t.TempDir(), "meta") + ":img"
	s.must(t, "push", "-q", onlyImageID(t, s.run(t, "commit", "-q", meta)), metaRef)
	if _, layers := layoutLayers(t, metaRef); len(layers) != 2 {
		t.Errorf("a commit of config changes only: %d layers, want 2 (busybox's and the /hello one)", len(layers))
	}
	var metaCfg struct {
		Config struct {
			Env    []string          `json:"Env"`
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
	}
	decodeJSON(t, "skopeo inspect --config", skopeo(t, "inspect", "--config", metaRef), &metaCfg)
	if metaCfg.Config.Labels["forge.test"] != "meta" || !slices.Contains(metaCfg.Config.Env, "A=1") {
		t.Errorf("config --label/--env not in the committed config: %+v", metaCfg.Config)
	}

	if r := s.runStdin(t, "through stdin\n", "run", "-i", ctr, "--", "cat"); r.code != 0 || r.stdout != "through stdin\n" {
		t.Errorf("run -i cat: want the input back, got %v", r)
	}
	// The sandbox's /etc/hosts, /etc/resolv.conf and /etc/hostname are not committed.
	id := onlyImageID(t, s.run(t, "commit", "-q", ctr, "localhost/no-etc"))
	ref := "oci:" + filepath.Join(t.TempDir(), "out") + ":img"
	s.must(t, "push", "-q", id, ref)
	_, layers := layoutLayers(t, ref)
	for _, name := range []string{"etc/hosts", "etc/resolv.conf", "etc/hostname"} {
		for i, l := range layers {
			if _, ok := l.hdrs[name]; ok {
				t.Errorf("layer %d of the committed image holds /%s, which the sandbox provides", i, name)
			}
		}
	}
}

// TestScriptedFromScratchCopyMount: from scratch + copy + commit is a
// one-layer image holding only the copied file; mount works only inside
// unshare, where it gives a path holding the container's files.
func TestScriptedFromScratchCopyMount(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctr := s.workingContainer(t, "scratch")
	if ctr != "working-container" {
		t.Errorf("from scratch: container name %q, want working-container", ctr)
	}
	ctx := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctx, "hello"), []byte("hello from the host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.must(t, "copy", "--contextdir", ctx, "--chmod", "0644", ctr, "hello", "/hello")

	oneLineError(t, s.run(t, "mount", ctr), "unshare")

	s.env["PATH"] = filepath.Dir(e2e.Bin) + string(os.PathListSeparator) + os.Getenv("PATH")
	flags := "--root " + shellQuote(s.root) + " --runroot " + shellQuote(s.runroot)
	script := "set -e; p=$(forge " + flags + " mount " + ctr + "); cat \"$p/hello\"; forge " + flags + " umount " + ctr
	if got := s.must(t, "unshare", "sh", "-c", script); got != "hello from the host\n" {
		t.Errorf("unshare: cat $(forge mount)/hello: %q, want the copied file", got)
	}

	id := onlyImageID(t, s.run(t, "commit", "-q", ctr, "localhost/scratch-hello"))
	ref := "oci:" + filepath.Join(t.TempDir(), "out") + ":img"
	s.must(t, "push", "-q", id, ref)
	_, layers := layoutLayers(t, ref)
	if len(layers) != 1 {
		t.Fatalf("want a one-layer image, got %d layers", len(layers))
	}
	var names []string
	for _, n := range layers[0].names() {
		if n != "" && n != "." {
			names = append(names, n)
		}
	}
	if !slices.Equal(names, []string{"hello"}) {
		t.Errorf("the layer holds %q, want only hello", names)
	}
	hdr := layers[0].hdrs["hello"]
	if got := string(layers[0].files["hello"]); hdr == nil || got != "hello from the host\n" || hdr.Mode&0o7777 != 0o644 || hdr.Uid != 0 || hdr.Gid != 0 {
		t.Errorf("hello in the layer: %q, header %+v; want the copied content, 0:0, mode 644", got, hdr)
	}
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// TestScriptedRmAll: rm removes one container, rm --all the rest, and the
// images they came from stay.
func TestScriptedRmAll(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	a := s.workingContainer(t, "-q", "busybox")
	b := s.workingContainer(t, "-q", "busybox")
	c := s.workingContainer(t, "--name", "third", "busybox")
	d := s.workingContainer(t, "scratch")
	if want := []string{a, b, c, d}; !slices.Equal(s.ctrNames(t), sorted(want)) {
		t.Fatalf("containers: %q, want %q", s.ctrNames(t), want)
	}
	imagesBefore := summary(s.images(t))
	s.must(t, "rm", b)
	if got, want := s.ctrNames(t), sorted([]string{a, c, d}); !slices.Equal(got, want) {
		t.Errorf("after rm %s: containers %q, want %q", b, got, want)
	}
	s.must(t, "rm", "--all")
	if got := s.ctrList(t); len(got) != 0 {
		t.Errorf("after rm --all: containers --json lists %+v", got)
	}
	if out := s.must(t, "containers", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("after rm --all: containers -q prints %q", out)
	}
	if after := summary(s.images(t)); !slices.Equal(imagesBefore, after) {
		t.Errorf("rm --all changed the images: before %q, after %q", imagesBefore, after)
	}
	// The names are free again.
	if got := s.workingContainer(t, "-q", "busybox"); got != "busybox-working-container" {
		t.Errorf("from busybox after rm --all: %q, want busybox-working-container", got)
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}
