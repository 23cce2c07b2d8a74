package tests

import (
	"archive/tar"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Dockerfile builds (issue 4): `forge bud`, with the results read by skopeo,
// umoci and archive/tar, never by forge. The per-instruction and per-flag
// table is in bud_instructions_test.go, the cache in bud_cache_test.go, the
// error table in bud_errors_test.go, the seed's redis build in bud_redis_test.go.

// budWriteFiles creates files under dir: name -> content. A name ending in
// "/" is a directory; a content starting with "-> " makes a symlink to the rest.
func budWriteFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(content, "-> "):
			err = os.Symlink(strings.TrimPrefix(content, "-> "), p)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// budContext makes a build context holding a Dockerfile (unless empty) and files.
func budContext(t *testing.T, dockerfile string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "context")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if dockerfile != "" {
		budWriteFiles(t, dir, map[string]string{"Dockerfile": dockerfile})
	}
	budWriteFiles(t, dir, files)
	return dir
}

// budOK runs `forge bud ARGS...` with stdin and checks that it succeeded with
// the image ID as the last line of stdout; it returns the ID.
func (s *store) budOK(t *testing.T, stdin string, args ...string) (string, result) {
	t.Helper()
	r := s.runStdin(t, stdin, append([]string{"bud"}, args...)...)
	if r.code != 0 {
		t.Fatalf("forge bud failed: %v", r)
	}
	out := lines(r.stdout)
	if len(out) == 0 || !imageIDRe.MatchString(out[len(out)-1]) {
		t.Fatalf("the last line of stdout must be the image ID (64 hex digits): %v", r)
	}
	return out[len(out)-1], r
}

// budImageConfig is the part of an image config (OCI or Docker) the bud tests read.
type budImageConfig struct {
	Author       string `json:"author"`
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		User         string              `json:"User"`
		WorkingDir   string              `json:"WorkingDir"`
		StopSignal   string              `json:"StopSignal"`
		Env          []string            `json:"Env"`
		Cmd          []string            `json:"Cmd"`
		Entrypoint   []string            `json:"Entrypoint"`
		Shell        []string            `json:"Shell"`
		OnBuild      []string            `json:"OnBuild"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Volumes      map[string]struct{} `json:"Volumes"`
		Labels       map[string]string   `json:"Labels"`
		Healthcheck  *struct {
			Test        []string `json:"Test"`
			Interval    int64    `json:"Interval"`
			Timeout     int64    `json:"Timeout"`
			StartPeriod int64    `json:"StartPeriod"`
			Retries     int      `json:"Retries"`
		} `json:"Healthcheck"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []struct {
		CreatedBy  string `json:"created_by"`
		EmptyLayer bool   `json:"empty_layer"`
	} `json:"history"`
}

// env returns the value of NAME in the config's Env.
func (c budImageConfig) env(name string) (string, bool) {
	for _, kv := range c.Config.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// built is a built image, as skopeo and umoci see it at ref.
type built struct {
	id     string
	r      result
	ctx    string // the build context, when the table built it
	ref    string // a containers-transports reference skopeo reads
	raw    string // the config JSON, as skopeo prints it
	cfg    budImageConfig
	mtype  string // the manifest's media type
	config string // the manifest's config digest
	layout string // lazily: an OCI layout copy of ref (image "img")
	layers []layerFiles
	root   string // lazily: umoci's unpacked rootfs
}

// inspect reads ref's manifest and config with skopeo.
func inspectBuilt(t *testing.T, id string, r result, ref string) *built {
	t.Helper()
	b := &built{id: id, r: r, ref: ref}
	// --raw: the config as stored; without it skopeo converts a Docker config to OCI
	// and drops HEALTHCHECK, ONBUILD and SHELL.
	b.raw = skopeo(t, append(append([]string{"inspect", "--config", "--raw"}, tlsOff("--tls-verify", ref)...), ref)...)
	decodeJSON(t, "skopeo inspect --config", b.raw, &b.cfg)
	var m manifest
	decodeJSON(t, "skopeo inspect --raw", skopeo(t, append(append([]string{"inspect", "--raw"}, tlsOff("--tls-verify", ref)...), ref)...), &m)
	b.mtype, b.config = m.MediaType, m.Config.Digest
	if len(m.Layers) != len(b.cfg.RootFS.DiffIDs) {
		t.Errorf("%s: %d layers in the manifest, %d diff IDs in the config", ref, len(m.Layers), len(b.cfg.RootFS.DiffIDs))
	}
	return b
}

// exportBuilt copies the image id out of s with `forge push` (to the plain
// registry for the Docker format, whose fields an OCI layout would not keep;
// to an OCI layout otherwise) and inspects it there.
func exportBuilt(t *testing.T, s *store, id string, r result, docker bool) *built {
	t.Helper()
	ref := "oci:" + filepath.Join(t.TempDir(), "out") + ":img"
	if docker {
		ref = "docker://" + e2e.Registry + "/" + uniqueRepo("bud") + ":latest"
	}
	s.must(t, "push", "-q", id, ref)
	return inspectBuilt(t, id, r, ref)
}

// layerList returns every layer of the image, read with archive/tar, in order.
func (b *built) layerList(t *testing.T) []layerFiles {
	t.Helper()
	if b.layout == "" {
		b.layout, b.layers = layoutLayers(t, b.ref)
	}
	return b.layers
}

// rootfs unpacks the image with umoci and returns the root filesystem.
func (b *built) rootfs(t *testing.T) string {
	t.Helper()
	if b.root == "" {
		b.layerList(t)
		b.root = umociRootfs(t, b.layout)
	}
	return b.root
}

// file returns the content of path in the unpacked image ("" and a test error if missing).
func (b *built) file(t *testing.T, path string) string {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(b.rootfs(t), path))
	if err != nil {
		t.Errorf("umoci-unpacked image: %v", err)
	}
	return string(got)
}

// wantFile checks the content of path in the unpacked image.
func (b *built) wantFile(t *testing.T, path, want string) {
	t.Helper()
	if got := b.file(t, path); got != want {
		t.Errorf("/%s in the image: %q, want %q", path, got, want)
	}
}

// exists says whether path is in the unpacked image (without following a last symlink).
func (b *built) exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(filepath.Join(b.rootfs(t), path))
	return err == nil
}

// hdr returns the tar header of path (no leading /; a directory with a
// trailing /) in the topmost layer that has it, or nil.
func (b *built) hdr(t *testing.T, path string) *tar.Header {
	t.Helper()
	layers := b.layerList(t)
	for i := len(layers) - 1; i >= 0; i-- {
		for _, name := range []string{path, path + "/", strings.TrimSuffix(path, "/")} {
			if h := layers[i].hdrs[name]; h != nil {
				return h
			}
		}
	}
	return nil
}

// wantHeader checks the owner and permission bits of path in the layers.
func (b *built) wantHeader(t *testing.T, path string, uid, gid int, mode int64) {
	t.Helper()
	h := b.hdr(t, path)
	if h == nil {
		t.Errorf("no layer holds /%s", path)
		return
	}
	if h.Uid != uid || h.Gid != gid || h.Mode&0o7777 != mode {
		t.Errorf("/%s in the layer: %d:%d mode %o, want %d:%d mode %o", path, h.Uid, h.Gid, h.Mode&0o7777, uid, gid, mode)
	}
}

// layerCount checks how many layers the image has beyond the busybox base.
func (b *built) wantNewLayers(t *testing.T, n int) {
	t.Helper()
	base := len(wantFixture(t).DiffIDs)
	if got := len(b.cfg.RootFS.DiffIDs); got != base+n {
		t.Errorf("%d layers, want %d (the base's %d and %d more)", got, base+n, base, n)
	}
	if got := len(b.cfg.RootFS.DiffIDs); got >= base && !slices.Equal(b.cfg.RootFS.DiffIDs[:base], wantFixture(t).DiffIDs) {
		t.Errorf("diff IDs %v do not start with busybox's %v", b.cfg.RootFS.DiffIDs, wantFixture(t).DiffIDs)
	}
}

// names returns the sorted names in a layer, without the root entry.
func (l layerFiles) budNames() []string {
	var out []string
	for _, n := range l.names() {
		if n != "" && n != "." && n != "./" {
			out = append(out, strings.TrimSuffix(n, "/"))
		}
	}
	return out
}

// rawConfigKeys checks that the config's "config" object spells the keys exactly.
func (b *built) rawConfigKeys(t *testing.T, keys ...string) {
	t.Helper()
	var doc struct {
		Config json.RawMessage `json:"config"`
	}
	decodeJSON(t, "config", b.raw, &doc)
	checkKeys(t, "image config", doc.Config, keys...)
}

func budFlagCases() []budCase {
	const marker = "FROM busybox\nRUN echo run-output-marker\n"
	return []budCase{
		{
			name:       "--label",
			dockerfile: "FROM busybox\nLABEL a=from-file keep=yes\n",
			args:       []string{"--label", "a=from-flag", "--label", "org.example.x=y"},
			check: func(t *testing.T, _ *store, b *built) {
				for k, v := range map[string]string{"a": "from-flag", "keep": "yes", "org.example.x": "y"} {
					if b.cfg.Config.Labels[k] != v {
						t.Errorf("label %s=%q, want %q (labels %q)", k, b.cfg.Config.Labels[k], v, b.cfg.Config.Labels)
					}
				}
			},
		},
		{
			name:       "--format docker with -t docker REF",
			dockerfile: "FROM busybox\nRUN echo docker > /format\n",
			args:       []string{"--format", "docker", "-t", "docker://{{REPO}}:1"},
			ref:        "docker://{{REPO}}:1",
			check: func(t *testing.T, _ *store, b *built) {
				if b.mtype != docker2ManifestType {
					t.Errorf("manifest type %q, want %q", b.mtype, docker2ManifestType)
				}
				if b.config != "sha256:"+b.id {
					t.Errorf("the registry holds config %s, the build printed image ID %s", b.config, b.id)
				}
				b.wantFile(t, "format", "docker\n")
			},
		},
		{
			name:       "--format oci with -t docker REF and short names",
			dockerfile: "FROM busybox\nRUN echo oci > /format\n",
			args:       []string{"-t", "docker://{{REPO}}:2", "-t", "short:1", "-t", "other"},
			ref:        "docker://{{REPO}}:2",
			check: func(t *testing.T, s *store, b *built) {
				if b.mtype != ociManifestType {
					t.Errorf("manifest type %q, want %q", b.mtype, ociManifestType)
				}
				if b.config != "sha256:"+b.id {
					t.Errorf("the registry holds config %s, the build printed image ID %s", b.config, b.id)
				}
				b.wantFile(t, "format", "oci\n")
				for _, e := range s.images(t) {
					if e.ID == b.id {
						budWantStrings(t, "local names of the built image", sorted(e.Names), "localhost/other:latest", "localhost/short:1")
						return
					}
				}
				t.Errorf("forge images does not list the built image %s", b.id)
			},
		},
		{
			name:       "--network none",
			dockerfile: "FROM busybox\nRUN ip -o link | cut -d: -f2 | tr -d ' ' > /links\n",
			args:       []string{"--network", "none"},
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "links", "lo\n")
			},
		},
		{
			name:       "--iidfile",
			dockerfile: marker,
			args:       []string{"--iidfile", "{{CTX}}/../iid"},
			check: func(t *testing.T, _ *store, b *built) {
				iid := filepath.Join(filepath.Dir(b.ctx), "iid")
				got, err := os.ReadFile(iid)
				if err != nil || strings.TrimPrefix(strings.TrimSpace(string(got)), "sha256:") != b.id {
					t.Errorf("--iidfile holds %q (err %v), want the image ID %s", got, err, b.id)
				}
			},
		},
		{
			name:       "-q",
			dockerfile: marker,
			args:       []string{"-q"},
			check: func(t *testing.T, _ *store, b *built) {
				if b.r.stdout != b.id+"\n" {
					t.Errorf("-q: stdout must be only the image ID, got %q", b.r.stdout)
				}
				if !strings.Contains(b.r.stderr, "run-output-marker") {
					t.Errorf("-q: the RUN output must go to stderr: %v", b.r)
				}
				// The store was empty: the build pulled busybox, silently.
				if strings.Contains(b.r.stderr, "Copying blob") || strings.Contains(b.r.stderr, "Writing manifest") {
					t.Errorf("-q: pull progress printed: %q", b.r.stderr)
				}
			},
		},
		{
			name:       "output",
			dockerfile: marker,
			args:       []string{"-t", "out"},
			check: func(t *testing.T, _ *store, b *built) {
				checkBudOutput(t, b.r, []string{"STEP 1/2: FROM busybox", "STEP 2/2: RUN echo run-output-marker", "run-output-marker", "COMMIT"})
			},
		},
	}
}

// checkBudOutput checks that stdout has lines starting with each of want, in
// that order, and ends with the image ID; and that pull progress is not on stdout.
func checkBudOutput(t *testing.T, r result, want []string) {
	t.Helper()
	out := lines(r.stdout)
	i := 0
	for _, l := range out {
		if i < len(want) && strings.HasPrefix(strings.TrimSpace(l), want[i]) {
			i++
		}
		if strings.Contains(l, "Copying blob") {
			t.Errorf("pull progress on stdout: %q", l)
		}
	}
	if i < len(want) {
		t.Errorf("stdout lacks a line starting with %q (after the earlier %q):\n%s", want[i], want[:i], r.stdout)
	}
}
