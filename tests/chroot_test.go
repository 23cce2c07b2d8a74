package tests

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// Chroot isolation (issue 9): forge as root in a default unprivileged container, which
// tests/internal/nons simulates (a seccomp filter refusing unshare, setns, mount and
// namespace flags to clone, and Docker's default capabilities). The TestChrootContainer
// tests need root and run in tests/run.sh's root phase; they build the same Dockerfile
// there and as the test user in rootless mode, and compare the two images with skopeo,
// umoci and archive/tar.

// chrootDockerfile exercises what a layer records: owners (COPY --chown, USER), modes
// (setuid), symlinks, hard links, a heredoc, a deleted file of the base (whiteout), a
// replaced directory (opaque), and a process a step leaves running.
const chrootDockerfile = `FROM busybox
ENV APP=/opt/app
WORKDIR /opt/app
COPY app.sh ./
COPY --chown=1000:1000 data/ ./data/
RUN chmod 4755 app.sh && ln -s app.sh run && ln app.sh hard && ln /bin/busybox bb && mkdir -p /var/log/app && chown 1000:1000 /var/log/app
RUN <<EOF
echo from a heredoc > /opt/app/heredoc.txt
EOF
RUN mkdir -p /data/old && echo 1 > /data/old/a && echo 2 > /data/keep
RUN rm /home/user/hello.txt && rm -rf /data/old && mkdir /data/old && echo 3 > /data/old/b
USER 1000
RUN echo mine > /var/log/app/owned && (sleep 1000 &) && echo started
CMD ["/opt/app/app.sh"]
`

var chrootFiles = map[string]string{
	"app.sh":         "#!/bin/sh\necho app\n",
	"data/conf.txt":  "conf\n",
	"data/sub/x.txt": "x\n",
}

// wrapped is the command line of name and args run under wrap.
func wrapped(wrap []string, name string, args ...string) (string, []string) {
	return wrap[0], append(append(append([]string{}, wrap[1:]...), name), args...)
}

// nonsStore is a store forge uses as root inside the simulated container.
func nonsStore(t *testing.T, e rootEnv) *store {
	t.Helper()
	s := newStore(t)
	s.wrap = e.nons
	return s
}

// userStore is a store forge uses as the test user (rootless), from a root test.
func userStore(t *testing.T, e rootEnv) *store {
	t.Helper()
	needE2E(t)
	name, args := wrapped(e.asUser, "mktemp", "-d")
	dir := strings.TrimSpace(tool(t, name, args...))
	return &store{root: filepath.Join(dir, "root"), runroot: filepath.Join(dir, "runroot"), env: map[string]string{}, wrap: e.asUser}
}

// TestChrootContainerSimulation shows that the simulation is real: as root, `unshare -U
// true` works on this machine and fails under nons.
func TestChrootContainerSimulation(t *testing.T) {
	e := needRootE2E(t)
	if _, stderr, err := toolResult("unshare", "-U", "true"); err != nil {
		t.Fatalf("unshare -U true fails even without nons (%v: %s): the test proves nothing here", err, stderr)
	}
	name, args := wrapped(e.nons, "unshare", "-U", "true")
	_, stderr, err := toolResult(name, args...)
	if err == nil || !strings.Contains(stderr, "Operation not permitted") {
		t.Fatalf("under nons, unshare -U true must fail with EPERM; got %v, stderr %q", err, stderr)
	}
	name, args = wrapped(e.nons, "cat", "/proc/self/status")
	status := tool(t, name, args...)
	for _, want := range []string{"CapBnd:\t00000000a80425fb", "Seccomp:\t2"} {
		if !strings.Contains(status, want) {
			t.Errorf("under nons, /proc/self/status lacks %q (Docker's default capabilities, a seccomp filter):\n%s", want, status)
		}
	}
}

// TestChrootContainerBuild: in the simulated container forge finds it cannot make
// namespaces, says so once, and pulls, builds and pushes; the image equals the rootless
// build of the same Dockerfile in files, owners, modes, whiteouts and config, and layer by
// layer in the entries each holds.
func TestChrootContainerBuild(t *testing.T) {
	e := needRootE2E(t)
	ctxDir := budContext(t, chrootDockerfile, chrootFiles)
	shareWithUser(t, ctxDir)
	cs := nonsStore(t, e)

	r := cs.run(t, "info")
	var info struct {
		Store struct {
			GraphDriverName, GraphDriverReason string
		} `json:"store"`
		Isolation struct {
			Isolation string `json:"isolation"`
			Reason    string `json:"reason"`
			Detected  bool   `json:"detected"`
		} `json:"isolation"`
	}
	decodeJSON(t, "forge info", r.stdout, &info)
	if info.Isolation.Isolation != "chroot" || !info.Isolation.Detected || !strings.Contains(info.Isolation.Reason, "operation not permitted") {
		t.Errorf("forge info: isolation %+v, want chroot, detected, with the reason", info.Isolation)
	}
	if info.Store.GraphDriverName != "vfs" || !strings.Contains(info.Store.GraphDriverReason, "chroot") {
		t.Errorf("forge info: driver %s (%s), want vfs because of chroot isolation", info.Store.GraphDriverName, info.Store.GraphDriverReason)
	}

	cs.pull(t, "busybox")
	ref := e2e.Registry + "/" + uniqueRepo("chroot/app") + ":1"
	_, r = cs.budOK(t, "", "-t", ref, ctxDir)
	if n := strings.Count(r.stderr, "isolation chroot"); n != 1 || !strings.Contains(r.stderr, "cannot be made") {
		t.Errorf("forge bud must say once that it uses chroot isolation and why; said it %d times:\n%s", n, r.stderr)
	}
	if !strings.Contains(r.stdout, "started") {
		t.Errorf("the last RUN step did not run: %v", r)
	}
	cs.must(t, "push", ref)
	if procs := sleepers(); len(procs) > 0 {
		t.Errorf("a process a RUN step left behind is still running: pids %v", procs)
	}

	us := userStore(t, e)
	userRef := e2e.Registry + "/" + uniqueRepo("rootless/app") + ":1"
	us.budOK(t, "", "-t", userRef, ctxDir)
	us.must(t, "push", userRef)

	chroot, rootless := readImage(t, "docker://"+ref), readImage(t, "docker://"+userRef)
	if c := chroot.config.Config; c.User != "1000" || c.WorkingDir != "/opt/app" || !slices.Contains(c.Env, "APP=/opt/app") {
		t.Errorf("chroot image config %+v lacks USER, WORKDIR or ENV", c)
	}
	compareImages(t, chroot, rootless)
	checkWhiteouts(t, chroot)
	compareTrees(t, chroot.rootfs, rootless.rootfs)
}

// shareWithUser lets the test user read dir, made by this (root) test under $TMPDIR.
func shareWithUser(t *testing.T, dir string) {
	t.Helper()
	for d := dir; strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// sleepers lists the processes running `sleep 1000`.
func sleepers() []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(cmdline) == "sleep\x001000\x00" {
			out = append(out, e.Name())
		}
	}
	return out
}

// pulledImage is an image copied to an OCI layout with skopeo and unpacked with umoci.
type pulledImage struct {
	ref    string
	config struct {
		Config struct {
			User       string   `json:"User"`
			WorkingDir string   `json:"WorkingDir"`
			Env        []string `json:"Env"`
			Cmd        []string `json:"Cmd"`
		} `json:"config"`
		History []struct {
			CreatedBy  string `json:"created_by"`
			EmptyLayer bool   `json:"empty_layer"`
		} `json:"history"`
	}
	layers [][]string // per layer, its entries, described
	rootfs string
}

func readImage(t *testing.T, ref string) pulledImage {
	t.Helper()
	img := pulledImage{ref: ref}
	m, _, _ := skopeoInspect(t, ref)
	decodeJSON(t, "skopeo inspect --config", skopeo(t, append(append([]string{"inspect", "--config"}, tlsOff("--tls-verify", ref)...), ref)...), &img.config)
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	skopeo(t, append(append([]string{"copy", "-q"}, tlsOff("--src-tls-verify", ref)...), ref, "oci:"+layout+":img")...)
	for _, l := range m.Layers {
		img.layers = append(img.layers, layerEntries(t, filepath.Join(layout, "blobs", strings.Replace(l.Digest, ":", "/", 1))))
	}
	bundle := filepath.Join(dir, "bundle")
	tool(t, "umoci", "unpack", "--image", layout+":img", bundle)
	img.rootfs = filepath.Join(bundle, "rootfs")
	return img
}

// layerEntries describes each entry of a (gzip) layer blob: whiteouts by name, the rest
// by name, type, mode, owner, link target and content digest.
func layerEntries(t *testing.T, blob string) []string {
	t.Helper()
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(maybeGunzip(data))
	var out []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", blob, err)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		switch {
		case hdr.Typeflag == tar.TypeDir:
			out = append(out, fmt.Sprintf("%s dir mode=%o owner=%d:%d", strings.TrimSuffix(name, "/"), hdr.Mode&0o7777, hdr.Uid, hdr.Gid))
			continue
		case strings.HasPrefix(filepath.Base(name), ".wh."):
			out = append(out, "whiteout "+name)
			continue
		}
		h := sha256.New()
		if _, err := io.Copy(h, tr); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s type=%c mode=%o owner=%d:%d link=%s sha256=%s",
			name, hdr.Typeflag, hdr.Mode&0o7777, hdr.Uid, hdr.Gid, hdr.Linkname, hex.EncodeToString(h.Sum(nil))[:12]))
	}
	slices.Sort(out)
	return out
}

// compareImages checks config, history and layers of two builds of one Dockerfile.
func compareImages(t *testing.T, chroot, rootless pulledImage) {
	t.Helper()
	a, b := chroot.config, rootless.config
	aj, _ := json.Marshal(a.Config)
	bj, _ := json.Marshal(b.Config)
	if string(aj) != string(bj) {
		t.Errorf("config differs:\nchroot   %s\nrootless %s", aj, bj)
	}
	ah, _ := json.Marshal(a.History)
	bh, _ := json.Marshal(b.History)
	if string(ah) != string(bh) {
		t.Errorf("history differs:\nchroot   %s\nrootless %s", ah, bh)
	}
	if len(chroot.layers) != len(rootless.layers) {
		t.Fatalf("chroot image has %d layers, rootless %d", len(chroot.layers), len(rootless.layers))
	}
	for i := range chroot.layers {
		// The namespace sandbox makes mount points for /etc/hosts, /etc/resolv.conf and
		// /etc/hostname in an image without them and removes them afterwards; overlay has
		// copied /etc up by then, so each rootless RUN layer lists /etc.
		if !slices.ContainsFunc(chroot.layers[i], func(e string) bool { return strings.HasPrefix(e, "etc ") }) {
			rootless.layers[i] = slices.DeleteFunc(rootless.layers[i], func(e string) bool { return strings.HasPrefix(e, "etc dir ") })
		}
		if !slices.Equal(chroot.layers[i], rootless.layers[i]) {
			t.Errorf("layer %d differs:\nchroot:\n  %s\nrootless:\n  %s", i,
				strings.Join(chroot.layers[i], "\n  "), strings.Join(rootless.layers[i], "\n  "))
		}
	}
}

// checkWhiteouts checks the layer of the step that deletes a file of the base and
// replaces a directory, and that nothing chroot isolation put into the root filesystem
// for a step (device nodes, /etc/resolv.conf, /etc/hosts, the heredoc's directory)
// reached a layer.
func checkWhiteouts(t *testing.T, img pulledImage) {
	t.Helper()
	found := false
	for i, layer := range img.layers[1:] {
		for _, e := range layer {
			if strings.HasPrefix(strings.TrimPrefix(e, "whiteout "), "dev/") || strings.HasPrefix(strings.TrimPrefix(e, "whiteout "), "etc/") {
				t.Errorf("layer %d of %s holds %q, which no step wrote", i+1, img.ref, e)
			}
		}
		if !slices.Contains(layer, "whiteout home/user/.wh.hello.txt") {
			continue
		}
		found = true
		hasB := slices.ContainsFunc(layer, func(e string) bool { return strings.HasPrefix(e, "data/old/b ") })
		hasA := slices.ContainsFunc(layer, func(e string) bool { return strings.Contains(e, "data/old/a") })
		if !slices.Contains(layer, "whiteout data/old/.wh..wh..opq") || !hasB || hasA {
			t.Errorf("layer %d: want data/old opaque, holding data/old/b and nothing of data/old/a:\n  %s", i+1, strings.Join(layer, "\n  "))
		}
	}
	if !found {
		t.Errorf("%s: no layer has the whiteout of /home/user/hello.txt", img.ref)
	}
}

// compareTrees compares two unpacked root filesystems: the same paths, types, modes,
// owners, link targets and contents.
func compareTrees(t *testing.T, a, b string) {
	t.Helper()
	ta, tb := describeTree(t, a), describeTree(t, b)
	var diff []string
	for _, x := range ta {
		if !slices.Contains(tb, x) {
			diff = append(diff, "chroot only:   "+x)
		}
	}
	for _, x := range tb {
		if !slices.Contains(ta, x) {
			diff = append(diff, "rootless only: "+x)
		}
	}
	if len(diff) > 0 {
		t.Errorf("the unpacked images differ:\n  %s", strings.Join(diff, "\n  "))
	}
	if !slices.ContainsFunc(ta, func(e string) bool {
		return strings.HasPrefix(e, "/var/log/app/owned ") && strings.Contains(e, "owner=1000:1000")
	}) {
		t.Errorf("/var/log/app/owned, written by USER 1000, is missing or not owned by 1000:1000")
	}
}

func describeTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%s mode=%v owner=%d:%d", strings.TrimPrefix(p, root), fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			link, _ := os.Readlink(p)
			desc += " -> " + link
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			desc += " sha256=" + hex.EncodeToString(sum[:6])
		}
		out = append(out, desc)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestChrootContainerErrors: what chroot isolation cannot do fails with the Dockerfile
// line and the reason.
func TestChrootContainerErrors(t *testing.T) {
	e := needRootE2E(t)
	cs := nonsStore(t, e)
	cs.pull(t, "busybox")
	for _, tc := range []struct {
		name, dockerfile string
		words            []string
	}{
		{"network none", "FROM busybox\nRUN --network=none true\n", []string{"network namespace"}},
		{"tmpfs over the image's files", "FROM busybox\nRUN --mount=type=tmpfs,target=/etc true\n", []string{"needs a mount"}},
		{"bind over the image's files", "FROM busybox\nRUN --mount=type=bind,target=/bin true\n", []string{"needs a mount"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cs.run(t, "--log-level", "error", "bud", budContext(t, tc.dockerfile, nil))
			line := budError(t, r, tc.words...)
			if !strings.HasPrefix(line, "forge: Dockerfile:2: RUN") || !strings.Contains(line, "chroot isolation") {
				t.Errorf("the error must name the line and chroot isolation: %s", line)
			}
			if ctrs := cs.ctrList(t); len(ctrs) != 0 {
				t.Errorf("working containers left behind: %+v", ctrs)
			}
		})
	}
}

// TestChrootNeedsRoot: an ordinary user asking for chroot isolation is told that it
// needs root; a bad value is named with the ones allowed.
func TestChrootNeedsRoot(t *testing.T) {
	s := newStore(t)
	if os.Geteuid() != 0 {
		oneLineError(t, s.run(t, "--isolation", "chroot", "images"), "needs root")
		oneLineError(t, s.run(t, "--isolation=chroot", "images"), "needs root")
		s.env["FORGE_ISOLATION"] = "chroot"
		oneLineError(t, s.run(t, "images"), "needs root")
	}
	s.env["FORGE_ISOLATION"] = "sandbox"
	line := oneLineError(t, s.run(t, "images"), "FORGE_ISOLATION")
	if !strings.Contains(line, "want auto, namespaces or chroot") {
		t.Errorf("the error must list the values: %s", line)
	}
}

// TestChrootContainerScripted: the scripted verbs under chroot isolation, each its own
// process: the container's record made by `forge from` tells `forge commit` what `forge
// run` changed; a file rewritten with the same size and times is found by its inode
// change time and content, one rewritten with the same content is not in the layer.
func TestChrootContainerScripted(t *testing.T) {
	e := needRootE2E(t)
	cs := nonsStore(t, e)
	cs.pull(t, "-q", "busybox")
	ctr := cs.workingContainer(t, "busybox")
	cs.must(t, "run", ctr, "--", "sh", "-c", "rm /bin/vi && echo new > /new && "+
		"cp -p /etc/passwd /tmp/p && sed -i s/root:x/ROOT:x/ /etc/passwd && touch -r /tmp/p /etc/passwd && rm /tmp/p && "+
		"cp -p /etc/group /tmp/g && cat /tmp/g > /etc/group && touch -r /tmp/g /etc/group && rm /tmp/g")
	r := cs.run(t, "--log-level", "error", "run", "--network", "none", ctr, "--", "true")
	if line := oneLineError(t, r, "network namespace"); !strings.Contains(line, "chroot isolation") {
		t.Errorf("forge run --network none must say why chroot isolation cannot: %s", line)
	}
	onlyImageID(t, cs.run(t, "commit", "-q", ctr, "localhost/scripted"))
	dir := t.TempDir()
	cs.must(t, "push", "-q", "localhost/scripted", "oci:"+dir+"/layout:img")
	img := readImage(t, "oci:"+dir+"/layout:img")
	top := img.layers[len(img.layers)-1]
	var names []string
	for _, entry := range top {
		if !strings.Contains(entry, " dir ") {
			names = append(names, strings.Fields(strings.TrimPrefix(entry, "whiteout "))[0])
		}
	}
	slices.Sort(names)
	if want := []string{"bin/.wh.vi", "etc/passwd", "new"}; !slices.Equal(names, want) {
		t.Errorf("the committed layer holds %q; want (besides directories) the whiteout of /bin/vi, /etc/passwd and /new only:\n  %s", names, strings.Join(top, "\n  "))
	}
}

// TestChrootContainerRedisSeed: the seed's example (apt-get on Debian) builds in the
// simulated container, and its image serves redis under forge run there; SIGINT ends it.
func TestChrootContainerRedisSeed(t *testing.T) {
	e := needRootE2E(t)
	checkRedisSeed(t, nonsStore(t, e))
}

// TestChrootContainerCacheMount: a cache mount is a copy under chroot isolation, and
// what a step writes there is kept for the next step.
func TestChrootContainerCacheMount(t *testing.T) {
	e := needRootE2E(t)
	cs := nonsStore(t, e)
	cs.pull(t, "-q", "busybox")
	dockerfile := "FROM busybox\n" +
		"RUN --mount=type=cache,target=/root/.cache echo c4che-hit > /root/.cache/f\n" +
		"RUN --mount=type=cache,target=/root/.cache tr a-z A-Z < /root/.cache/f\n"
	_, r := cs.budOK(t, "", budContext(t, dockerfile, nil))
	if !strings.Contains(r.stdout, "C4CHE-HIT") {
		t.Errorf("the second step did not see what the first wrote to the cache: %v", r)
	}
}

// TestChrootContainerExplicit: root on this machine, where namespaces work, gets chroot
// isolation when it asks for it, and forge says why; --isolation wins over
// FORGE_ISOLATION.
func TestChrootContainerExplicit(t *testing.T) {
	needRootE2E(t)
	s := newStore(t)
	s.env["FORGE_ISOLATION"] = "chroot"
	info := strings.TrimSpace(s.must(t, "info", "--format", "{{.Isolation.Isolation}}|{{.Isolation.Reason}}|{{.Isolation.Detected}}|{{.Store.GraphDriverName}}"))
	if info != "chroot|chosen with FORGE_ISOLATION|false|vfs" {
		t.Errorf("FORGE_ISOLATION=chroot: forge info says %q", info)
	}
	s.pull(t, "-q", "busybox")
	r := s.run(t, "--log-level", "info", "bud", budContext(t, "FROM busybox\nRUN echo ran-in-chroot\n", nil))
	if r.code != 0 || !strings.Contains(r.stdout, "ran-in-chroot") || strings.Count(r.stderr, "isolation chroot: chosen with FORGE_ISOLATION") != 1 {
		t.Errorf("want the step's output and one note of the isolation: %v", r)
	}
	s.env["FORGE_ISOLATION"] = "namespaces"
	info = strings.TrimSpace(s.must(t, "--isolation", "chroot", "info", "--format", "{{.Isolation.Isolation}}: {{.Isolation.Reason}}"))
	if info != "chroot: chosen with --isolation" {
		t.Errorf("--isolation chroot with FORGE_ISOLATION=namespaces: forge info says %q", info)
	}
}

// chrootReproDockerfile gives the image its own /etc/hosts, /etc/resolv.conf and
// /etc/hostname first: the namespace sandbox then binds over them instead of making mount
// points in /etc, and rootless layers are free of that trace too.
const chrootReproDockerfile = `FROM busybox
COPY hosts resolv.conf hostname /etc/
COPY app.sh /opt/app/
RUN chmod 4755 /opt/app/app.sh && ln -s app.sh /opt/app/run && ln /opt/app/app.sh /opt/app/hard && mkdir -p /data/old && echo 1 > /data/old/a && echo 2 > /data/keep
RUN rm /home/user/hello.txt && rm -rf /data/old && mkdir /data/old && echo 3 > /data/old/b && chown 1000:1000 /data/old/b
USER 1000
RUN mkdir /tmp/u && echo mine > /tmp/u/owned
`

// TestChrootContainerReproducible: with a fixed timestamp, the chroot build in the
// simulated container and the rootless build give the same image ID: the same layers
// byte for byte, the same config and history.
func TestChrootContainerReproducible(t *testing.T) {
	e := needRootE2E(t)
	ctxDir := budContext(t, chrootReproDockerfile, map[string]string{
		"hosts": "127.0.0.1 localhost\n", "resolv.conf": "nameserver 192.0.2.53\n", "hostname": "app\n",
		"app.sh": "#!/bin/sh\necho app\n",
	})
	shareWithUser(t, ctxDir)
	cs, us := nonsStore(t, e), userStore(t, e)
	cs.pull(t, "-q", "busybox")
	us.pull(t, "-q", "busybox")
	chrootID, _ := cs.budOK(t, "", "--timestamp", sourceDateEpoch, ctxDir)
	rootlessID, _ := us.budOK(t, "", "--timestamp", sourceDateEpoch, ctxDir)
	if chrootID == rootlessID {
		return
	}
	t.Errorf("with --timestamp, the chroot build gave image %s and the rootless build %s", chrootID, rootlessID)
	refs := []string{e2e.Registry + "/" + uniqueRepo("chroot/repro") + ":1", e2e.Registry + "/" + uniqueRepo("rootless/repro") + ":1"}
	cs.must(t, "push", chrootID, refs[0])
	us.must(t, "push", rootlessID, refs[1])
	compareImages(t, readImage(t, "docker://"+refs[0]), readImage(t, "docker://"+refs[1]))
}
