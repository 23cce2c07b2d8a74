package tests

import (
	"archive/tar"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// The COPY/ADD side of the BuildKit-era features (issue 6): heredocs, --link,
// --parents, --exclude, ADD --checksum, --build-context, and stages built in
// parallel. Each image is read with skopeo, umoci and archive/tar.

const featureDownload = "downloaded for the checksum\n"

// TestBudCopyFeatures builds one small image per feature, each in its own store.
func TestBudCopyFeatures(t *testing.T) {
	t.Parallel()
	needE2E(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, featureDownload)
	}))
	t.Cleanup(srv.Close)
	for _, c := range budCopyFeatureCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runBudCase(t, c, srv.URL)
		})
	}
}

func budCopyFeatureCases() []budCase {
	return []budCase{
		{
			name: "COPY and ADD heredocs",
			dockerfile: `FROM busybox
ARG NAME=world
COPY <<EOF /hello.txt
hello $NAME
EOF
COPY <<'EOF' /raw.txt
hello $NAME
EOF
COPY --chmod=0755 --chown=1000:1000 <<EOF /usr/local/bin/greet
#!/bin/sh
echo hi
EOF
COPY <<A <<B /multi/
a
A
b
B
ADD <<EOF /added.txt
added
EOF
COPY <<-EOF /tabs.txt
	indented
	EOF
RUN /usr/local/bin/greet > /greeted
`,
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "hello.txt", "hello world\n")
				b.wantFile(t, "raw.txt", "hello $NAME\n")
				b.wantFile(t, "multi/A", "a\n")
				b.wantFile(t, "multi/B", "b\n")
				b.wantFile(t, "added.txt", "added\n")
				b.wantFile(t, "tabs.txt", "indented\n")
				b.wantFile(t, "greeted", "hi\n")
				b.wantHeader(t, "hello.txt", 0, 0, 0o644)
				b.wantHeader(t, "usr/local/bin/greet", 1000, 1000, 0o755)
			},
		},
		{
			name: "COPY and ADD --exclude",
			dockerfile: `FROM busybox
COPY --exclude=**/*.tmp --exclude=secret . /app/
COPY --exclude=*.txt hom* /home-files/
ADD --exclude=*.mp3 media/ /media/
COPY --exclude=* --exclude=!keep.txt sub /kept/
`,
			files: map[string]string{"a.txt": "a\n", "b.tmp": "b\n", "secret/key": "k\n", "sub/c.tmp": "c\n",
				"sub/keep.txt": "keep\n", "home.txt": "h\n", "home.md": "h\n", "media/x.mp3": "x\n", "media/y.ogg": "y\n"},
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "/app", budTree(t, filepath.Join(b.rootfs(t), "app")),
					"Dockerfile", "a.txt", "home.md", "home.txt", "media/x.mp3", "media/y.ogg", "sub/keep.txt")
				budWantStrings(t, "/home-files", budTree(t, filepath.Join(b.rootfs(t), "home-files")), "home.md")
				budWantStrings(t, "/media", budTree(t, filepath.Join(b.rootfs(t), "media")), "y.ogg")
				budWantStrings(t, "/kept", budTree(t, filepath.Join(b.rootfs(t), "kept")), "keep.txt")
			},
		},
		{
			name: "COPY --parents",
			dockerfile: `FROM busybox
COPY --parents x/a.txt y/a.txt /p/
COPY --parents ./x/./y/*.txt /pivot/
COPY --parents --chown=1000:1000 src/**/*.go /gosrc/
`,
			files: map[string]string{"x/a.txt": "xa\n", "x/y/a.txt": "xya\n", "x/y/b.txt": "xyb\n", "y/a.txt": "ya\n",
				"src/main.go": "m\n", "src/pkg/lib.go": "l\n", "src/pkg/README": "r\n"},
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "/p", budTree(t, filepath.Join(b.rootfs(t), "p")), "x/a.txt", "y/a.txt")
				budWantStrings(t, "/pivot", budTree(t, filepath.Join(b.rootfs(t), "pivot")), "y/a.txt", "y/b.txt")
				budWantStrings(t, "/gosrc", budTree(t, filepath.Join(b.rootfs(t), "gosrc")), "src/main.go", "src/pkg/lib.go")
				b.wantFile(t, "p/x/a.txt", "xa\n")
				b.wantHeader(t, "gosrc/src/pkg", 1000, 1000, 0o755) // a parent, owned as --chown says
				b.wantHeader(t, "gosrc/src/pkg/lib.go", 1000, 1000, 0o644)
			},
		},
		{
			name: "COPY and ADD --link",
			dockerfile: `FROM busybox
RUN mkdir -p /app && echo base > /app/base
COPY --link --chown=1000:1000 f /app/f
ADD --link <<EOF /app/conf/
linked heredoc
EOF
`,
			files: map[string]string{"f": "f\n"},
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "app/base", "base\n") // the layer below is still there
				b.wantFile(t, "app/f", "f\n")
				b.wantFile(t, "app/conf/EOF", "linked heredoc\n")
				b.wantHeader(t, "app/f", 1000, 1000, 0o644)
				layers := b.layerList(t)
				n := len(layers)
				budWantStrings(t, "the COPY --link layer", layers[n-2].budNames(), "app", "app/f")
				budWantStrings(t, "the ADD --link layer", layers[n-1].budNames(), "app", "app/conf", "app/conf/EOF")
				b.wantNewLayers(t, 3)
			},
		},
		{
			name:       "ADD --checksum",
			dockerfile: "FROM busybox\nADD --checksum=" + digest.FromString(featureDownload).String() + " {{URL}}/dl.txt /dl.txt\n",
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "dl.txt", featureDownload)
			},
		},
		{
			name: "--build-context with a directory",
			dockerfile: `FROM busybox
COPY --from=extra lib/x.txt /x.txt
COPY --from=extra / /all/
`,
			prepare: func(t *testing.T, _ *store, ctx string) {
				budWriteFiles(t, filepath.Join(filepath.Dir(ctx), "extra"), map[string]string{
					"lib/x.txt": "from the named context\n", "secret.txt": "s\n", ".dockerignore": "secret.txt\n"})
			},
			args: []string{"--build-context", "extra={{CTX}}/../extra"},
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "x.txt", "from the named context\n")
				budWantStrings(t, "/all (its own .dockerignore applies)", budTree(t, filepath.Join(b.rootfs(t), "all")), ".dockerignore", "lib/x.txt")
			},
		},
		{
			name: "--build-context with an image replaces a stage",
			dockerfile: `FROM busybox AS tools
RUN echo the replaced stage ran && exit 3
FROM base
COPY --from=tools /bin/busybox /tools-busybox
`,
			args: []string{"--build-context", "tools=docker-image://busybox", "--build-context", "base=docker-image://" + "busybox"},
			check: func(t *testing.T, _ *store, b *built) {
				if h := b.hdr(t, "tools-busybox"); h == nil || h.Typeflag != tar.TypeReg {
					t.Errorf("/tools-busybox: %+v, want busybox copied from the image context", h)
				}
				if strings.Contains(b.r.stdout+b.r.stderr, "the replaced stage ran") {
					t.Errorf("the stage the build context replaces was built: %v", b.r)
				}
			},
		},
	}
}

// budDiffIDs builds in s and returns the image's diff IDs, read with skopeo.
func budDiffIDs(t *testing.T, s *store, args ...string) []string {
	t.Helper()
	id, r := s.budOK(t, "", args...)
	return exportBuilt(t, s, id, r, false).cfg.RootFS.DiffIDs
}

// TestBudLinkLayerIndependentOfBase builds the same COPY --link on two different bases:
// the layer it adds has the same digest, and so has a rebuild without the cache; the
// same COPY without --link does not. One context holds the Dockerfiles, so the copied
// files are the same files (with the same modification times).
func TestBudLinkLayerIndependentOfBase(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	const cp = "COPY --link f dir /app/\n"
	ctx := budContext(t, "", map[string]string{
		"f": "linked\n", "dir/g": "g\n",
		"one.Dockerfile": "FROM busybox\nRUN mkdir /app && echo one > /app/one\n" + cp,
		"two.Dockerfile": "FROM busybox\nRUN echo two > /two && chmod 700 /bin\n" + cp,
		"x.Dockerfile":   "FROM busybox\nRUN mkdir /app && echo one > /app/one\n" + strings.Replace(cp, "--link ", "", 1),
		"y.Dockerfile":   "FROM busybox\nRUN mkdir -m 700 /app\n" + strings.Replace(cp, "--link ", "", 1),
	})
	build := func(args ...string) []string {
		t.Helper()
		ids := budDiffIDs(t, s, append(args, ctx)...)
		if len(ids) < 2 {
			t.Fatalf("diff IDs %q: want the base's, the RUN's and the COPY's", ids)
		}
		return ids
	}
	a := build("-f", filepath.Join(ctx, "one.Dockerfile"))
	b := build("-f", filepath.Join(ctx, "two.Dockerfile"))
	c := build("--no-cache", "-f", filepath.Join(ctx, "two.Dockerfile"))
	last := func(ids []string) string { return ids[len(ids)-1] }
	if a[len(a)-2] == b[len(b)-2] {
		t.Fatalf("the bases must differ: %q and %q", a, b)
	}
	if last(a) != last(b) || last(b) != last(c) {
		t.Errorf("COPY --link layer digests: %s, %s on another base, %s without the cache; want one digest", last(a), last(b), last(c))
	}
	// Without --link the layer depends on the state below (here, the mode of /app).
	if x, y := build("-f", filepath.Join(ctx, "x.Dockerfile")), build("-f", filepath.Join(ctx, "y.Dockerfile")); last(x) == last(y) {
		t.Errorf("without --link the two layers should differ (the base's /app differs): %s", last(x))
	}
}

// TestBudCopyFeatureErrors: each failure is one `forge: Dockerfile:LINE: ...` line.
func TestBudCopyFeatureErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, featureDownload)
	}))
	t.Cleanup(srv.Close)
	s := newStore(t)
	s.pull(t, "-q", "busybox")
	wrong := digest.FromString("something else").String()
	cases := []budErrCase{
		{name: "ADD --checksum mismatch", dockerfile: "FROM busybox\nRUN true\nADD --checksum=" + wrong + " " + srv.URL + "/dl.txt /dl.txt\n",
			where: "Dockerfile:3: ADD --checksum=", words: []string{"checksum mismatch"}},
		{name: "ADD of a git repository", dockerfile: "FROM busybox\nADD https://github.com/moby/buildkit.git#v0.12 /src\n",
			where: "Dockerfile:2: ", words: []string{"git repository (https://github.com/moby/buildkit.git#v0.12) is not supported yet"}},
		{name: "COPY --link --chown by name", dockerfile: "FROM busybox\nCOPY --link --chown=user f /f\n", files: map[string]string{"f": "f"},
			where: "Dockerfile:2: ", words: []string{"numeric"}},
		{name: "COPY --parents without a match", dockerfile: "FROM busybox\nCOPY --parents src/**/*.go /d/\n", files: map[string]string{"src/a.txt": "a"},
			where: "Dockerfile:2: ", words: []string{"no file matches"}},
		{name: "COPY --from an unknown --build-context directory", dockerfile: "FROM busybox\nCOPY --from=extra x /x\n",
			args: []string{"--build-context", "extra={{CTX}}/missing"}, words: []string{"missing"}},
		{name: "FROM a --build-context directory", dockerfile: "FROM busybox\nRUN true\nFROM extra\n",
			args: []string{"--build-context", "extra={{CTX}}"}, where: "Dockerfile:3: ", words: []string{"not supported yet"}},
		{name: "a failing stage stops the others", dockerfile: "FROM busybox AS slow\nRUN sleep 60\nFROM busybox AS broken\nRUN exit 3\nFROM busybox\nCOPY --from=slow / /slow\nCOPY --from=broken / /broken\n",
			args: []string{"--jobs", "4"}, where: "Dockerfile:4: RUN exit 3: ", words: []string{"exit status 3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := budContext(t, c.dockerfile, c.files)
			replace := strings.NewReplacer("{{CTX}}", ctx)
			var args []string
			for _, a := range c.args {
				args = append(args, replace.Replace(a))
			}
			start := time.Now()
			r := s.run(t, append(append([]string{"bud"}, args...), ctx)...)
			line := budError(t, r, c.words...)
			if where := "forge: " + replace.Replace(c.where); !strings.HasPrefix(line, where) {
				t.Errorf("the error must start with %q: %s", where, line)
			}
			if took := time.Since(start); took > 45*time.Second {
				t.Errorf("the build took %v: the other stages were not stopped", took)
			}
			if ctrs := s.ctrList(t); len(ctrs) != 0 {
				t.Errorf("working containers left behind: %+v", ctrs)
			}
		})
	}
}

// meetDockerfile has two stages that each leave a marker in a shared cache mount and
// wait for the other's: run one after the other, the first would wait until its bound.
const meetDockerfile = `FROM busybox AS a
ARG WAIT=1200
RUN --mount=type=cache,id=meet,target=/meet sh -c 'touch /meet/a; i=0; while [ ! -e /meet/b ]; do i=$((i+1)); [ $i -lt $WAIT ] || exit 9; sleep 0.1; done; echo a met b'
FROM busybox AS b
ARG WAIT=1200
RUN --mount=type=cache,id=meet,target=/meet sh -c 'touch /meet/b; i=0; while [ ! -e /meet/a ]; do i=$((i+1)); [ $i -lt $WAIT ] || exit 9; sleep 0.1; done; echo b met a'
FROM scratch
COPY --from=a /bin/busybox /a
COPY --from=b /bin/busybox /b
`

// TestBudParallelStages can only pass if the two stages run at the same time; with
// --jobs 1 the same build must fail. The output of parallel stages is prefixed.
func TestBudParallelStages(t *testing.T) {
	t.Parallel()
	ctx := budContext(t, meetDockerfile, nil)
	s := newStore(t)
	id, r := s.budOK(t, "", "--jobs", "2", ctx)
	b := exportBuilt(t, s, id, r, false)
	if h := b.hdr(t, "a"); h == nil {
		t.Errorf("the image lacks /a from stage a")
	}
	out := lines(r.stdout)
	for _, want := range []string{"[a] a met b", "[b] b met a", "[a] [1/3] STEP 1/3: FROM busybox AS a", "[stage-2] [3/3] STEP 1/3: FROM scratch"} {
		if !slices.Contains(out, want) {
			t.Errorf("stdout lacks the line %q:\n%s", want, r.stdout)
		}
	}
	for _, l := range out[:len(out)-1] {
		if !strings.HasPrefix(l, "[a] ") && !strings.HasPrefix(l, "[b] ") && !strings.HasPrefix(l, "[stage-2] ") && !strings.HasPrefix(l, "COMMIT") {
			t.Errorf("a line of parallel stages without its stage: %q", l)
		}
	}
	one := newStore(t)
	r = one.run(t, "bud", "--jobs", "1", "--build-arg", "WAIT=30", ctx)
	line := budError(t, r, "exit status 9")
	if !strings.HasPrefix(line, "forge: Dockerfile:3: ") {
		t.Errorf("with --jobs 1 stage a must wait for b in vain: %s", line)
	}
	if strings.Contains(r.stdout, "[a] ") {
		t.Errorf("--jobs 1 output is prefixed:\n%s", r.stdout)
	}
}
