package tests

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
)

// budCase is one build of the instruction and flag table: a context, a
// Dockerfile and flags, and checks of the image that skopeo and umoci read.
type budCase struct {
	name       string
	dockerfile string            // CONTEXT/Dockerfile; {{URL}} and {{FIXTURES}} are replaced
	files      map[string]string // more files in the context (see budWriteFiles)
	prepare    func(t *testing.T, s *store, ctx string)
	args       []string // flags before CONTEXT; {{CTX}} and {{REPO}} are replaced
	stdin      bool     // the Dockerfile goes to stdin, with -f -
	outside    bool     // the Dockerfile is outside the context, named with -f
	ref        string   // read the image here ({{REPO}} replaced) instead of pushing it
	docker     bool     // read the image from the registry (Docker-format fields survive)
	check      func(t *testing.T, s *store, b *built)
}

// TestBudInstructions builds one small image per instruction and flag, each
// in its own store, and checks it from the outside.
func TestBudInstructions(t *testing.T) {
	t.Parallel()
	needE2E(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/dl.txt" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "downloaded\n")
	}))
	t.Cleanup(srv.Close)
	var cases []budCase
	for _, group := range [][]budCase{budFromRunCases(), budConfigCases(), budCopyCases(), budStageCases(), budFlagCases()} {
		cases = append(cases, group...)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runBudCase(t, c, srv.URL)
		})
	}
}

func runBudCase(t *testing.T, c budCase, url string) {
	t.Helper()
	s := newStore(t)
	repo := e2e.Registry + "/" + uniqueRepo("bud")
	replace := strings.NewReplacer("{{URL}}", url, "{{FIXTURES}}", e2e.Fixtures, "{{REPO}}", repo)
	dockerfile := replace.Replace(c.dockerfile)
	ctx := budContext(t, "", c.files)
	replace = strings.NewReplacer("{{URL}}", url, "{{FIXTURES}}", e2e.Fixtures, "{{REPO}}", repo, "{{CTX}}", ctx)
	args := []string{}
	for _, a := range c.args {
		args = append(args, replace.Replace(a))
	}
	stdin := ""
	switch {
	case c.stdin:
		stdin = dockerfile
		args = append(args, "-f", "-")
	case c.outside:
		other := filepath.Join(t.TempDir(), "elsewhere", "ci.Dockerfile")
		budWriteFiles(t, filepath.Dir(other), map[string]string{filepath.Base(other): dockerfile})
		args = append(args, "-f", other)
	case dockerfile != "":
		budWriteFiles(t, ctx, map[string]string{"Dockerfile": dockerfile})
	}
	if c.prepare != nil {
		c.prepare(t, s, ctx)
	}
	id, r := s.budOK(t, stdin, append(args, ctx)...)
	var b *built
	if c.ref != "" {
		b = inspectBuilt(t, id, r, replace.Replace(c.ref))
	} else {
		b = exportBuilt(t, s, id, r, c.docker)
	}
	b.ctx = ctx
	c.check(t, s, b)
}

func budFromRunCases() []budCase {
	return []budCase{
		{
			name:       "FROM scratch",
			dockerfile: "FROM scratch\nCOPY hello /hello\n",
			files:      map[string]string{"hello": "hello\n"},
			check: func(t *testing.T, _ *store, b *built) {
				layers := b.layerList(t)
				if len(layers) != 1 || !slices.Equal(layers[0].budNames(), []string{"hello"}) {
					t.Fatalf("want one layer holding only hello, got %d layers: %q", len(layers), layers[0].budNames())
				}
				b.wantFile(t, "hello", "hello\n")
				b.wantHeader(t, "hello", 0, 0, 0o644)
			},
		},
		{
			name: "FROM AS name and COPY --from name and index",
			dockerfile: `FROM busybox AS builder
RUN echo built > /out.txt && echo second > /second.txt
FROM scratch
COPY --from=builder /out.txt /out.txt
COPY --from=0 /second.txt /second.txt
`,
			check: func(t *testing.T, _ *store, b *built) {
				if n := len(b.layerList(t)); n != 2 {
					t.Errorf("%d layers, want 2 (one per COPY onto scratch)", n)
				}
				b.wantFile(t, "out.txt", "built\n")
				b.wantFile(t, "second.txt", "second\n")
				if b.exists(t, "bin/busybox") {
					t.Errorf("the scratch stage holds the builder stage's /bin/busybox")
				}
			},
		},
		{
			name:       "COPY --from an image",
			dockerfile: "FROM scratch\nCOPY --from=busybox /bin/busybox /bb\n",
			check: func(t *testing.T, _ *store, b *built) {
				if got := b.file(t, "bb"); got != string(wantFixture(t).Busybox) {
					t.Errorf("/bb (%d bytes) is not busybox's /bin/busybox", len(got))
				}
				b.wantHeader(t, "bb", 0, 0, 0o755)
			},
		},
		{
			name:       "FROM oci-archive with --platform",
			dockerfile: "FROM --platform=$BUILDPLATFORM oci-archive:{{FIXTURES}}/busybox.tar\nRUN echo x > /x\n",
			check: func(t *testing.T, _ *store, b *built) {
				b.wantNewLayers(t, 1)
				b.wantFile(t, "x", "x\n")
				if b.cfg.Architecture != runtime.GOARCH || b.cfg.OS != "linux" {
					t.Errorf("platform %s/%s, want linux/%s", b.cfg.OS, b.cfg.Architecture, runtime.GOARCH)
				}
			},
		},
		{
			name: "RUN shell form and whiteout",
			dockerfile: `FROM busybox
RUN echo $((1+2)) > /sum && echo "$0" >> /sum
RUN rm /home/user/hello.txt
`,
			check: func(t *testing.T, _ *store, b *built) {
				b.wantNewLayers(t, 2)
				b.wantFile(t, "sum", "3\n/bin/sh\n")
				layers := b.layerList(t)
				top := layers[len(layers)-1]
				if _, ok := top.hdrs["home/user/.wh.hello.txt"]; !ok {
					t.Errorf("RUN rm: no whiteout home/user/.wh.hello.txt in the top layer: %q", top.budNames())
				}
				if b.exists(t, "home/user/hello.txt") {
					t.Errorf("RUN rm: /home/user/hello.txt is still in the image")
				}
			},
		},
		{
			name: "RUN exec form",
			dockerfile: `FROM busybox
ENV X=expanded
RUN ["/bin/sh", "-c", "echo \"$1\" > /exec", "sh", "$X"]
`,
			check: func(t *testing.T, _ *store, b *built) {
				b.wantNewLayers(t, 1)
				b.wantFile(t, "exec", "$X\n") // no shell and no Dockerfile expansion of exec-form arguments
			},
		},
		{
			name: "USER",
			dockerfile: `FROM busybox
USER user
RUN id -u > /tmp/uid && id -g >> /tmp/uid
USER 1000:65534
RUN id -g > /tmp/gid
`,
			check: func(t *testing.T, _ *store, b *built) {
				if b.cfg.Config.User != "1000:65534" {
					t.Errorf("User %q, want 1000:65534", b.cfg.Config.User)
				}
				b.wantFile(t, "tmp/uid", "1000\n1000\n")
				b.wantHeader(t, "tmp/uid", 1000, 1000, 0o644)
				b.wantFile(t, "tmp/gid", "65534\n")
				b.wantHeader(t, "tmp/gid", 1000, 65534, 0o644)
			},
		},
		{
			name: "WORKDIR created and owned",
			dockerfile: `FROM busybox
WORKDIR /app/sub
WORKDIR rel
RUN pwd > /pwd-root
WORKDIR /created-only
USER user
WORKDIR /home/user/work
RUN pwd > pwd-user
`,
			check: func(t *testing.T, _ *store, b *built) {
				if b.cfg.Config.WorkingDir != "/home/user/work" {
					t.Errorf("WorkingDir %q, want /home/user/work", b.cfg.Config.WorkingDir)
				}
				b.wantFile(t, "pwd-root", "/app/sub/rel\n")
				b.wantHeader(t, "app/sub/rel", 0, 0, 0o755)
				b.wantHeader(t, "created-only", 0, 0, 0o755)
				// BuildKit creates a WORKDIR as the current USER.
				b.wantHeader(t, "home/user/work", 1000, 1000, 0o755)
				b.wantFile(t, "home/user/work/pwd-user", "/home/user/work\n")
				b.wantHeader(t, "home/user/work/pwd-user", 1000, 1000, 0o644)
			},
		},
	}
}

func budConfigCases() []budCase {
	return []budCase{
		{
			name:       "CMD exec form",
			dockerfile: "FROM busybox\nCMD [\"redis-server\", \"--port\", \"7000\"]\n",
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "Cmd", b.cfg.Config.Cmd, "redis-server", "--port", "7000")
				budWantStrings(t, "Entrypoint", b.cfg.Config.Entrypoint)
				b.wantNewLayers(t, 0) // metadata only: no layer
				b.rawConfigKeys(t, "Cmd", "Env")
			},
		},
		{
			name:       "CMD shell form",
			dockerfile: "FROM busybox\nCMD echo \"hi there\"\n",
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "Cmd", b.cfg.Config.Cmd, "/bin/sh", "-c", `echo "hi there"`)
			},
		},
		{
			name:       "ENTRYPOINT exec form resets the base CMD",
			dockerfile: "FROM busybox\nENTRYPOINT [\"/bin/echo\", \"ep\"]\n",
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "Entrypoint", b.cfg.Config.Entrypoint, "/bin/echo", "ep")
				budWantStrings(t, "Cmd (busybox's [sh] must be reset)", b.cfg.Config.Cmd)
			},
		},
		{
			name:       "ENTRYPOINT with CMD",
			dockerfile: "FROM busybox\nENTRYPOINT [\"/bin/echo\"]\nCMD [\"a\", \"b\"]\n",
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "Entrypoint", b.cfg.Config.Entrypoint, "/bin/echo")
				budWantStrings(t, "Cmd", b.cfg.Config.Cmd, "a", "b")
			},
		},
		{
			name:       "ENTRYPOINT shell form",
			dockerfile: "FROM busybox\nENTRYPOINT exec top -b\n",
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "Entrypoint", b.cfg.Config.Entrypoint, "/bin/sh", "-c", "exec top -b")
			},
		},
		{
			name: "ENV both forms",
			dockerfile: `FROM busybox
ENV A=1 B="two words" C=with\ space
ENV LEGACY value with spaces
ENV D=${A}x
RUN echo "$A|$B|$C|$LEGACY|$D" > /env
`,
			check: func(t *testing.T, _ *store, b *built) {
				for k, want := range map[string]string{"A": "1", "B": "two words", "C": "with space", "LEGACY": "value with spaces", "D": "1x"} {
					if got, ok := b.cfg.env(k); !ok || got != want {
						t.Errorf("Env %s=%q (set %v), want %q; Env %q", k, got, ok, want, b.cfg.Config.Env)
					}
				}
				if _, ok := b.cfg.env("PATH"); !ok {
					t.Errorf("the base's PATH is gone from Env %q", b.cfg.Config.Env)
				}
				b.wantFile(t, "env", "1|two words|with space|value with spaces|1x\n")
				b.wantNewLayers(t, 1) // ENV adds no layer
				var empty int
				for _, h := range b.cfg.History {
					if h.EmptyLayer {
						empty++
					}
				}
				if empty < 3 {
					t.Errorf("history %+v: want the 3 ENV steps marked empty_layer", b.cfg.History)
				}
			},
		},
		{
			name: "ARG global per stage defaults --build-arg predefined",
			dockerfile: `ARG GLOBAL=g
ARG UNSEEN=u
FROM busybox AS first
ARG FIRSTONLY=first
FROM busybox
ARG GLOBAL
ARG D1=default1
ARG D2=default2
ARG FROMENV
ARG TARGETOS
ARG TARGETARCH
RUN echo "[$GLOBAL] [$UNSEEN] [$FIRSTONLY] [$D1] [$D2] [$FROMENV] [$TARGETOS/$TARGETARCH] [$HTTP_PROXY]" > /args
`,
			prepare: func(t *testing.T, s *store, _ string) { s.env["FROMENV"] = "from-env" },
			args:    []string{"--build-arg", "D2=cli", "--build-arg", "FROMENV", "--build-arg", "HTTP_PROXY=http://proxy.example:3128"},
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "args", "[g] [] [] [default1] [cli] [from-env] [linux/"+runtime.GOARCH+"] [http://proxy.example:3128]\n")
				for _, k := range []string{"GLOBAL", "D1", "D2", "FROMENV", "HTTP_PROXY"} {
					if _, ok := b.cfg.env(k); ok {
						t.Errorf("ARG %s leaked into the image's Env %q", k, b.cfg.Config.Env)
					}
				}
				if strings.Contains(b.raw, "proxy.example") {
					t.Errorf("the proxy build arg is recorded in the image config (Docker keeps it out): %s", b.raw)
				}
			},
		},
		{
			name: "LABEL",
			dockerfile: `FROM busybox
ARG V=2
LABEL a=1 "b c"="d e"
LABEL version=${V} multi="line \
continued"
`,
			check: func(t *testing.T, _ *store, b *built) {
				want := map[string]string{"a": "1", "b c": "d e", "version": "2", "multi": "line continued"}
				for k, v := range want {
					if b.cfg.Config.Labels[k] != v {
						t.Errorf("label %q=%q, want %q (labels %q)", k, b.cfg.Config.Labels[k], v, b.cfg.Config.Labels)
					}
				}
				b.wantNewLayers(t, 0)
			},
		},
		{
			name:       "EXPOSE",
			dockerfile: "FROM busybox\nARG P=8080\nEXPOSE 80 443/tcp 53/udp\nEXPOSE $P\n",
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "ExposedPorts", budKeys(b.cfg.Config.ExposedPorts), "443/tcp", "53/udp", "80/tcp", "8080/tcp")
			},
		},
		{
			name:       "VOLUME",
			dockerfile: "FROM busybox\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\n",
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "Volumes", budKeys(b.cfg.Config.Volumes), "/a", "/b", "/c", "/d")
			},
		},
		{
			name:       "STOPSIGNAL and MAINTAINER",
			dockerfile: "FROM busybox\nSTOPSIGNAL SIGTERM\nMAINTAINER Jane Doe <jane@example.com>\n",
			check: func(t *testing.T, _ *store, b *built) {
				if b.cfg.Config.StopSignal != "SIGTERM" {
					t.Errorf("StopSignal %q, want SIGTERM", b.cfg.Config.StopSignal)
				}
				if b.cfg.Author != "Jane Doe <jane@example.com>" {
					t.Errorf("author %q, want %q", b.cfg.Author, "Jane Doe <jane@example.com>")
				}
			},
		},
		{
			name: "HEALTHCHECK and SHELL (docker format)",
			dockerfile: `FROM busybox
SHELL ["/bin/env", "SHELLPROOF=yes", "/bin/sh", "-c"]
RUN echo "$SHELLPROOF" > /shellproof
CMD echo hi
HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=2 CMD wget -q -O- http://localhost/ || exit 1
`,
			args:   []string{"--format", "docker"},
			docker: true,
			check: func(t *testing.T, _ *store, b *built) {
				if b.mtype != docker2ManifestType {
					t.Errorf("manifest type %q, want %q", b.mtype, docker2ManifestType)
				}
				budWantStrings(t, "Shell", b.cfg.Config.Shell, "/bin/env", "SHELLPROOF=yes", "/bin/sh", "-c")
				b.wantFile(t, "shellproof", "yes\n")
				budWantStrings(t, "Cmd (shell form through SHELL)", b.cfg.Config.Cmd, "/bin/env", "SHELLPROOF=yes", "/bin/sh", "-c", "echo hi")
				h := b.cfg.Config.Healthcheck
				if h == nil {
					t.Fatalf("no Healthcheck in the config: %s", b.raw)
				}
				budWantStrings(t, "Healthcheck.Test", h.Test, "CMD-SHELL", "wget -q -O- http://localhost/ || exit 1")
				if h.Interval != 5e9 || h.Timeout != 3e9 || h.StartPeriod != 1e9 || h.Retries != 2 {
					t.Errorf("Healthcheck %+v, want interval 5s, timeout 3s, start period 1s, 2 retries", *h)
				}
			},
		},
		{
			name:       "ONBUILD triggers run in a child (docker format)",
			dockerfile: "FROM localhost/onbuild-base\nRUN cat /triggered > /seen\n",
			prepare: func(t *testing.T, s *store, _ string) {
				base := budContext(t, "FROM busybox\nONBUILD RUN echo triggered > /triggered\n", nil)
				id, r := s.budOK(t, "", "--format", "docker", "-t", "onbuild-base", base)
				parent := exportBuilt(t, s, id, r, true)
				budWantStrings(t, "the base's OnBuild", parent.cfg.Config.OnBuild, "RUN echo triggered > /triggered")
			},
			args:   []string{"--format", "docker"},
			docker: true,
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "triggered", "triggered\n")
				b.wantFile(t, "seen", "triggered\n")
				budWantStrings(t, "the child's OnBuild (triggers are not inherited)", b.cfg.Config.OnBuild)
			},
		},
		{
			name: "variable expansion",
			dockerfile: `FROM busybox
ARG SET=value
ARG EMPTY=
ENV A=${UNSET:-default} B=${SET:-default} C=${SET:+alt} D=x${UNSET:+alt}x E=\$SET F="${SET}suffix" G='$SET' H=${EMPTY:-fromempty} I=$SET.$SET
WORKDIR /w/${SET}
COPY f /${SET}.txt
`,
			files: map[string]string{"f": "f\n"},
			check: func(t *testing.T, _ *store, b *built) {
				want := map[string]string{"A": "default", "B": "value", "C": "alt", "D": "xx", "E": "$SET", "F": "valuesuffix", "G": "$SET", "H": "fromempty", "I": "value.value"}
				for k, v := range want {
					if got, _ := b.cfg.env(k); got != v {
						t.Errorf("%s=%q, want %q", k, got, v)
					}
				}
				if b.cfg.Config.WorkingDir != "/w/value" {
					t.Errorf("WorkingDir %q, want /w/value", b.cfg.Config.WorkingDir)
				}
				b.wantFile(t, "value.txt", "f\n")
			},
		},
		{
			name:       "escape directive",
			dockerfile: "# escape=`\nFROM busybox\nRUN printf '%s\\n' 'C:\\path\\to' > /bs && `\n    echo continued >> /bs\n",
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "bs", "C:\\path\\to\ncontinued\n")
			},
		},
		{
			name:       "syntax directive ignored",
			dockerfile: "# syntax=docker/dockerfile:1.7\nFROM busybox\nRUN echo ok > /ok\n",
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "ok", "ok\n")
				if !strings.Contains(b.r.stdout+b.r.stderr, "syntax") {
					t.Errorf("want a note that the syntax directive is ignored: %v", b.r)
				}
				for _, req := range registryRequests(t, e2e.RegistryLog) {
					if strings.Contains(req.Path, "docker/dockerfile") {
						t.Errorf("forge asked the registry for the syntax frontend: %+v", req)
					}
				}
			},
		},
	}
}

// budDirNames lists a directory of the unpacked image.
func budDirNames(t *testing.T, b *built, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(b.rootfs(t), dir))
	if err != nil {
		t.Errorf("/%s in the image: %v", dir, err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// budWantStrings checks a list of strings (nil and empty are the same).
func budWantStrings(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if len(got) != 0 || len(want) != 0 {
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
}

// budKeys returns the sorted keys of m.
func budKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
