package tests

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/forge-build/forge/tests/internal/evil"
)

// Hostile build contexts and Dockerfiles (issue 7, items 11-15), through `forge bud`.
// As for hostile images, a case passes when nothing changed on the host (an
// evil.Guard's sentinel files, target directory and marker scan) and the build either
// failed with one clear `forge: ` line or gave an image whose files are where the case
// says; Dockerfiles that try to exhaust forge must also stay within time and memory.

// buildCase is one hostile build.
type buildCase struct {
	name       string
	dockerfile func(h *hostile) string
	files      map[string]string            // more files of the context
	links      func(h *hostile) [][2]string // symlinks of the context: name, target
	archives   func(h *hostile) map[string][]byte
	// build: must succeed ("ok"), must fail ("fail"), or may do either ("").
	build string
	words []string // a failure names its cause with one of these
	// inside is a shell script run in a container of the built image; it must exit 0.
	inside func(h *hostile) string
	// stdoutLacks are strings the build's output must not hold (what a step saw).
	stdoutLacks func(h *hostile) []string
	lim         runLimits
}

// context writes the case's build context and returns its directory.
func (h *hostile) context(t *testing.T, c buildCase) string {
	t.Helper()
	dir, err := os.MkdirTemp(h.dir, "context-")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"Dockerfile": c.dockerfile(h), "f": "payload\n", "dir/inner": "inner\n"}
	for name, content := range c.files {
		files[name] = content
	}
	if c.archives != nil {
		for name, content := range c.archives(h) {
			files[name] = string(content)
		}
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if c.links != nil {
		for _, l := range c.links(h) {
			if err := os.Symlink(l[1], filepath.Join(dir, l[0])); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// buildCase builds the case's context, checks the guard and the store, and looks inside.
func (h *hostile) buildCase(t *testing.T, c buildCase) {
	t.Helper()
	h.count++
	tag := fmt.Sprintf("localhost/hostile-%d", h.count)
	r, u := h.s.runMeasured(t, c.lim, "bud", "-t", tag, h.context(t, c))
	h.check(t)
	h.s.images(t) // the store is still usable
	if u.timedOut {
		t.Fatalf("the build did not end within %v: %s", c.lim.timeout, outputTail(r.stderr))
	}
	if c.lim.memory > 0 && u.maxRSS > c.lim.memory/4 {
		t.Errorf("the build took %d MiB of memory", u.maxRSS>>20)
	}
	if c.stdoutLacks != nil {
		t.Logf("what the steps printed:\n%s", outputTail(r.stdout))
		for _, s := range c.stdoutLacks(h) {
			if strings.Contains(r.stdout, s) {
				t.Errorf("a step saw %q", s)
			}
		}
	}
	out := lines(r.stdout)
	if r.code != 0 {
		if c.build == "ok" {
			t.Fatalf("the build must succeed: %v", r)
		}
		if len(out) > 0 && imageIDRe.MatchString(out[len(out)-1]) {
			t.Errorf("a failed build printed an image ID: %v", r)
		}
		r.stdout = "" // the STEP lines before the failure
		printableLine(t, oneLineError(t, r, c.words...))
		return
	}
	if c.build == "fail" {
		t.Fatalf("the build must fail: %s", outputTail(r.stdout+r.stderr))
	}
	if len(out) == 0 || !imageIDRe.MatchString(out[len(out)-1]) {
		t.Fatalf("the last line of stdout must be the image ID: %v", r)
	}
	if c.inside == nil {
		return
	}
	ctr := h.s.workingContainer(t, "-q", out[len(out)-1])
	defer h.s.run(t, "rm", ctr)
	script := c.inside(h)
	if got := h.s.run(t, "run", ctr, "--", "sh", "-c", "set -e\n"+script); got.code != 0 {
		t.Errorf("inside the image, the check failed:\n%s\n%v", script, got)
	}
	h.check(t)
}

// tail is the end of a long output, for messages.
func outputTail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

// noHostData is a script that fails when any of paths holds the guard's secret or
// the host's /etc/passwd (which names the test user; busybox's does not).
func noHostData(h *hostile, paths ...string) string {
	user := os.Getenv("USER")
	if user == "" {
		user = "forgetest"
	}
	return fmt.Sprintf("! grep -rqs -e %q -e %q %s", strings.TrimSpace(h.g.Secret), user+":x:", strings.Join(paths, " "))
}

// TestHostileContextSymlinks: symlinks in the build context that point outside it
// (item 11), used as COPY and ADD sources, directly, as a parent, by wildcard.
//
// What protects it: build.sourceRoot resolves every source inside the context
// (securejoin: a link to /etc means <context>/etc, as in Docker) and copies symlinks
// below a source directory as links. Without it, the host's /etc/passwd or the guard's
// secret ends up in the image.
func TestHostileContextSymlinks(t *testing.T) {
	t.Parallel()
	h := newHostile(t)
	links := func(h *hostile) [][2]string {
		return [][2]string{
			{"etc", "/etc"}, {"secret", h.g.Sentinel + "/secret"}, {"hostdir", h.g.Sentinel},
			{"up", climbToRoot()}, {"dir/link", "/etc"}, {"dir/hostlink", h.g.Sentinel},
		}
	}
	from := func(steps string) func(h *hostile) string {
		return func(*hostile) string { return "FROM busybox\n" + steps + "\n" }
	}
	clean := func(h *hostile) string { return noHostData(h, "/x") }
	notFound := []string{"no such file", "not found", "does not exist", "outside", "too many levels", "symbolic links", "no file matches"}
	for _, c := range []buildCase{
		{name: "COPY etc/passwd (etc -> /etc)", dockerfile: from("COPY etc/passwd /x"), words: notFound, inside: clean},
		{name: "COPY etc (etc -> /etc)", dockerfile: from("COPY etc /x/"), words: notFound, inside: clean},
		{name: "COPY secret (a link to a host file)", dockerfile: from("COPY secret /x"), words: notFound, inside: clean},
		{name: "COPY hostdir/secret (a link to a host dir)", dockerfile: from("COPY hostdir/secret /x"), words: notFound, inside: clean},
		{name: "COPY hostdir", dockerfile: from("COPY hostdir /x/"), words: notFound, inside: clean},
		{name: "COPY up/ (a link to ../../..)", dockerfile: from("COPY up/ /x/"), words: notFound, inside: clean},
		{name: "COPY h* (wildcard over links)", dockerfile: from("COPY h* /x/"), words: notFound, inside: clean},
		{name: "COPY dir keeps inner links as links", dockerfile: from("COPY dir /x/"), build: "ok",
			inside: func(h *hostile) string {
				return "test -L /x/link && test -L /x/hostlink && " + noHostData(h, "/x/inner")
			}},
		{name: "ADD secret", dockerfile: from("ADD secret /x"), words: notFound, inside: clean},
		{name: "ADD hostdir", dockerfile: from("ADD hostdir /x/"), words: notFound, inside: clean},
		{name: "COPY ../", dockerfile: from("COPY ../ /x/"), build: "fail", words: notFound},
		{name: "COPY ../../../etc/passwd", dockerfile: from("COPY ../../../../etc/passwd /x"), build: "fail", words: notFound},
	} {
		c.links = links
		t.Run(c.name, func(t *testing.T) { h.buildCase(t, c) })
	}
}

// TestHostileDestinations: COPY and ADD destinations through symlinks in the image
// (item 12), ADD of hostile local archives (items 1-3 and 9 for ADD), and COPY --from a
// stage whose links point out.
//
// What protects it: build.Copy resolves destinations inside the container's root
// (securejoin, pathrs MkdirAll) and unpacks chrooted into the root
// (chrootarchive.UntarWithRoot); COPY --from reads the stage's root with the same
// resolution as the context. `/lib -> usr/lib` must keep working. Without these, files
// land in the guard's escape-target.
func TestHostileDestinations(t *testing.T) {
	t.Parallel()
	h := newHostile(t)
	// The image has links out of its root; /hostlink's target also exists inside the
	// image, so that a link resolved inside the root leads somewhere (Docker's semantics)
	// and one followed on the host would reach the guard's target.
	base := func(h *hostile) string {
		return fmt.Sprintf("FROM busybox\nRUN mkdir -p /usr/lib %[2]s && ln -s usr/lib /lib2 && ln -s / /x && ln -s %[1]s /y && ln -s %[2]s /hostlink && ln -s %[3]s /hostfile && ln -s %[2]s-missing /dangling\n",
			climbToRoot(), h.g.Target, h.g.Target+"/"+h.g.Name("file"))
	}
	// format's %[1]s is the guard's target, %[2]s, %[3]s... the marked names.
	args := func(h *hostile, names []string) []any {
		out := []any{h.g.Target}
		for _, n := range names {
			out = append(out, h.g.Name(n))
		}
		return out
	}
	step := func(format string, names ...string) func(h *hostile) string {
		return func(h *hostile) string { return base(h) + fmt.Sprintf(format, args(h, names)...) + "\n" }
	}
	has := func(format string, names ...string) func(h *hostile) string {
		return func(h *hostile) string { return fmt.Sprintf(format, args(h, names)...) }
	}
	tarOf := func(name string, gz bool, entries func(h *hostile) []evil.Entry) func(h *hostile) map[string][]byte {
		return func(h *hostile) map[string][]byte {
			b := evil.MustTar(entries(h)...)
			if gz {
				b = evil.Gzip(b)
			}
			return map[string][]byte{name: b}
		}
	}
	for _, c := range []buildCase{
		{name: "COPY to /lib2/f (/lib2 -> usr/lib)", build: "ok", dockerfile: step("COPY f /lib2/f%.0[1]s"),
			inside: has("grep -q payload /usr/lib/f%.0[1]s")},
		{name: "COPY to /x/HOST (/x -> /)", dockerfile: step("COPY f /x%[1]s/%[2]s", "x"), inside: has("grep -q payload %[1]s/%[2]s", "x")},
		{name: "COPY to /y/HOST (/y -> ../../..)", dockerfile: step("COPY f /y%[1]s/%[2]s", "y"), inside: has("grep -q payload %[1]s/%[2]s", "y")},
		{name: "COPY into /hostlink/ (-> a host dir)", dockerfile: step("COPY f /hostlink/%[2]s", "hl"), inside: has("grep -q payload %[1]s/%[2]s", "hl")},
		{name: "COPY onto /hostfile (-> a host file)", dockerfile: step("COPY f /hostfile%.0[1]s"),
			inside: has("grep -q payload %[1]s/%[2]s || grep -q payload /hostfile", "file")},
		{name: "WORKDIR /hostlink, COPY to a relative path", dockerfile: step("WORKDIR /hostlink\nCOPY f %[2]s", "wd"),
			inside: has("grep -q payload %[1]s/%[2]s", "wd")},
		{name: "ADD of a tar climbing out", dockerfile: step("ADD evil.tar /%.0[1]s"), inside: has("grep -q payload %[1]s/%[2]s", "add-up"),
			archives: tarOf("evil.tar", false, func(h *hostile) []evil.Entry {
				return []evil.Entry{evil.File(climbToRoot()+hostRel(h.g.Target)+"/"+h.g.Name("add-up"), "payload\n")}
			})},
		{name: "ADD of a tar.gz through its own symlink", dockerfile: step("ADD evil.tar.gz /%.0[1]s"), inside: has("grep -q payload %[1]s/%[2]s", "add-link"),
			archives: tarOf("evil.tar.gz", true, func(h *hostile) []evil.Entry {
				return []evil.Entry{evil.Symlink("evil", "/"), evil.File("evil/"+hostRel(h.g.Target)+"/"+h.g.Name("add-link"), "payload\n")}
			})},
		{name: "ADD of a tar into /hostlink/", dockerfile: step("ADD evil.tar /hostlink/%.0[1]s"), inside: has("grep -q payload %[1]s/%[2]s", "add-into"),
			archives: tarOf("evil.tar", false, func(h *hostile) []evil.Entry {
				return []evil.Entry{evil.File(h.g.Name("add-into"), "payload\n")}
			})},
		{name: "ADD of a tar with a hard link to a host file", dockerfile: step("ADD evil.tar /%.0[1]s"),
			inside: func(h *hostile) string { return noHostData(h, "/hl") },
			archives: tarOf("evil.tar", false, func(h *hostile) []evil.Entry {
				return []evil.Entry{evil.Hardlink("hl", "/"+hostRel(h.g.Sentinel)+"/secret")}
			})},
		{name: "ADD of a tar replacing its root with a symlink", dockerfile: step("ADD evil.tar /d/%.0[1]s"),
			inside: has("test -L /d || test -f /d/%[2]s || test -f %[1]s/%[2]s", "add-root"),
			archives: tarOf("evil.tar", false, func(h *hostile) []evil.Entry {
				return []evil.Entry{evil.Symlink(".", h.g.Target), evil.File(h.g.Name("add-root"), "payload\n")}
			})},
		{name: "COPY into a dangling link (-> a host path missing in the image)", dockerfile: step("COPY f /dangling/%[2]s", "dangling"),
			inside: has("grep -q payload %[1]s-missing/%[2]s", "dangling")},
		{name: "COPY --from a stage's link to /", words: []string{"no such file", "not found", "does not exist"},
			dockerfile: func(h *hostile) string {
				return fmt.Sprintf("FROM busybox AS src\nRUN ln -s / /evil && ln -s %[1]s /hostdir\nFROM busybox\nCOPY --from=src /evil%[1]s/secret /s\n", h.g.Sentinel)
			},
			inside: func(h *hostile) string { return noHostData(h, "/s") }},
		{name: "COPY --from a stage's link to a host dir", words: []string{"no such file", "not found", "does not exist"},
			dockerfile: func(h *hostile) string {
				return fmt.Sprintf("FROM busybox AS src\nRUN ln -s %[1]s /hostdir\nFROM busybox\nCOPY --from=src /hostdir/ /s/\n", h.g.Sentinel)
			},
			inside: func(h *hostile) string { return noHostData(h, "/s") }},
	} {
		t.Run(c.name, func(t *testing.T) { h.buildCase(t, c) })
	}
	t.Run("ADD of a gzip bomb", func(t *testing.T) {
		const size = 128 << 20
		bomb, err := evil.GzipBomb("zeros", size)
		if err != nil {
			t.Fatal(err)
		}
		// Under --max-layer-size (TestLayerSizeLimit has it refused), the protection
		// checked here is that the archive is streamed, not held in memory.
		h.buildCase(t, buildCase{build: "", dockerfile: step("ADD bomb.tar.gz /%.0[1]s"),
			archives: func(*hostile) map[string][]byte { return map[string][]byte{"bomb.tar.gz": bomb} },
			lim:      runLimits{memory: 2 << 30}, inside: func(*hostile) string { return fmt.Sprintf(`test "$(stat -c %%s /zeros)" = %d`, size) }})
	})
}

// TestHostileWorkdir: WORKDIR /proc/self/fd/N and WORKDIR through a symlink to a host
// directory (item 13, the CVE-2024-21626 class).
//
// What protects it: the sandbox closes every inherited descriptor but 0-2 before the
// command starts and opens the working directory inside the container's root
// (RESOLVE_IN_ROOT-style resolution, docs/sandbox.md), after pivot_root; forge creates a
// missing working directory inside the root too. Without this, a leaked descriptor to a
// host directory becomes the command's working directory, and `cd ..` from it reaches the
// host's /, where the step writes into the guard's escape-target.
func TestHostileWorkdir(t *testing.T) {
	t.Parallel()
	h := newHostile(t)
	// escape writes a marker in the working directory, then climbs and writes in the
	// guard's target: both land on the host if the working directory is a host one.
	escape := func(n string) func(h *hostile) string {
		return func(h *hostile) string {
			return fmt.Sprintf("touch %[1]s; cd %[2]s; touch .%[3]s/%[1]s 2>/dev/null; pwd", h.g.Name(n), climbToRoot(), h.g.Target)
		}
	}
	var cases []buildCase
	for fd := 3; fd <= 12; fd++ {
		n := fmt.Sprintf("fd-%d", fd)
		cases = append(cases, buildCase{name: "WORKDIR /proc/self/fd/" + fmt.Sprint(fd),
			dockerfile: func(h *hostile) string {
				return fmt.Sprintf("FROM busybox\nWORKDIR /proc/self/fd/%d\nRUN %s\n", fd, escape(n)(h))
			}})
	}
	// /hostlink's target exists in the image too: resolved inside the root it is that
	// directory; followed on the host, it is the guard's target.
	link := func(h *hostile) string {
		return "FROM busybox\nRUN mkdir -p " + h.g.Target + " && ln -s " + h.g.Target + " /hostlink\n"
	}
	cases = append(cases,
		buildCase{name: "WORKDIR /proc/self/cwd", dockerfile: func(h *hostile) string {
			return "FROM busybox\nWORKDIR /proc/self/cwd\nRUN " + escape("cwd")(h) + "\n"
		}},
		buildCase{name: "WORKDIR /proc/1/root/tmp", dockerfile: func(h *hostile) string {
			return "FROM busybox\nWORKDIR /proc/1/root/tmp\nRUN " + escape("root")(h) + "\n"
		}},
		buildCase{name: "WORKDIR a symlink to a host dir", dockerfile: func(h *hostile) string {
			return link(h) + "WORKDIR /hostlink\nRUN " + escape("wl")(h) + "\n"
		}, inside: func(h *hostile) string { return "test -f " + h.g.Target + "/" + h.g.Name("wl") }},
		buildCase{name: "WORKDIR a new directory below a symlink to a host dir", dockerfile: func(h *hostile) string {
			return link(h) + "WORKDIR /hostlink/" + h.g.Name("sub") + "\nRUN touch f\n"
		}, inside: func(h *hostile) string { return "test -f " + h.g.Target + "/" + h.g.Name("sub") + "/f" }},
		buildCase{name: "WORKDIR climbing out with ..", dockerfile: func(h *hostile) string {
			return "FROM busybox\nWORKDIR /" + climbToRoot() + hostRel(h.g.Target) + "/" + h.g.Name("up") + "\nRUN touch f\n"
		}, inside: func(h *hostile) string { return "test -f " + h.g.Target + "/" + h.g.Name("up") + "/f" }},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { h.buildCase(t, c) })
	}
}

// TestHostileBuildReach: steps aimed at forge's own store, its binary, the user's auth
// file and forge's environment, also through ONBUILD in a base image (item 14).
//
// What protects it: COPY/ADD sources are resolved inside the context (an absolute source
// is relative to the context root); RUN runs after pivot_root into the container's root
// with only descriptors 0-2 and the image's environment, so no host path, descriptor or
// variable of forge reaches it. Without these, the probes below print REACHABLE or LEAKED,
// or the auth file's content lands in the image.
func TestHostileBuildReach(t *testing.T) {
	t.Parallel()
	s := authStore(t)
	h := newHostile(t, s)
	s.runStdin(t, authPassword+"\n", "login", "--tls-verify=false", "-u", authUser, "--password-stdin", e2e.AuthRegistry)
	auth := s.defaultAuthFile()
	if _, err := os.Stat(auth); err != nil {
		t.Fatalf("login left no auth file: %v", err)
	}
	secrets := []string{s.root, s.runroot, e2e.Bin, auth, s.env["HOME"], s.env["XDG_RUNTIME_DIR"], h.g.Sentinel, os.TempDir()}
	probe := "RUN for p in " + strings.Join(secrets, " ") + `; do if test -e "$p"; then echo "REACHABLE $p"; fi; done; ` +
		`for f in /proc/self/fd/* /proc/1/fd/*; do echo "fd $f -> $(readlink $f)"; done; env; ls /proc`
	leaks := func(h *hostile) []string {
		return append([]string{"REACHABLE", "LEAKED", "auths"}, s.root, s.runroot, auth, s.env["XDG_RUNTIME_DIR"], s.env["HOME"], h.g.Sentinel)
	}
	notFound := []string{"no such file", "not found", "does not exist", "outside"}
	from := func(steps string) func(h *hostile) string {
		return func(*hostile) string { return "FROM busybox\n" + steps + "\n" }
	}
	for _, c := range []buildCase{
		{name: "RUN probes the host paths, descriptors and environment", build: "ok", dockerfile: from(probe), stdoutLacks: leaks},
		{name: "COPY the auth file", dockerfile: from("COPY " + auth + " /stolen"), words: notFound,
			inside: func(h *hostile) string { return "! grep -qs auths /stolen" }},
		{name: "COPY the store", dockerfile: from("COPY " + s.root + "/ /stolen/"), words: notFound,
			inside: func(h *hostile) string { return "! test -e /stolen/overlay-images" }},
		{name: "ADD the forge binary", dockerfile: from("ADD " + e2e.Bin + " /forge"), words: notFound,
			inside: func(h *hostile) string { return "! test -s /forge" }},
		{name: "RUN --mount a bind of the auth file", stdoutLacks: leaks,
			dockerfile: from("RUN --mount=type=bind,source=" + filepath.Dir(auth) + ",target=/m if grep -rqs auths /m; then echo LEAKED; fi")},
	} {
		t.Run(c.name, func(t *testing.T) { h.buildCase(t, c) })
	}
	t.Run("ONBUILD in a base image", func(t *testing.T) {
		h.buildCase(t, buildCase{build: "ok", dockerfile: from("ONBUILD COPY " + auth + " /stolen\nONBUILD " + probe)})
		base := fmt.Sprintf("localhost/hostile-%d", h.count)
		h.buildCase(t, buildCase{dockerfile: func(*hostile) string { return "FROM " + base + "\nRUN true\n" },
			words: notFound, stdoutLacks: leaks, inside: func(*hostile) string { return "! grep -qs auths /stolen" }})
	})
}

// TestHostileDockerfiles: extremely long lines, ARG expansions that double at each
// level or nest deeply, a 10,000-step Dockerfile, and binary garbage (item 15). Each
// ends within a time bound and a memory bound (forge runs under a 2 GiB address-space
// limit, and its peak memory must stay under 512 MiB), with a clear error or an image.
//
// What protects it: BuildKit's parser refuses lines over 64 KiB; an ARG or ENV value
// must stay bounded after expansion; error messages quote what they show, so a
// Dockerfile cannot write terminal escapes to the user's terminal or CI log. Without
// these, forge dies of memory exhaustion (a Go runtime crash, not a `forge:` line) or
// prints the escapes.
func TestHostileDockerfiles(t *testing.T) {
	t.Parallel()
	h := newHostile(t)
	lim := runLimits{memory: 2 << 30, timeout: 2 * time.Minute}
	text := func(s string) func(*hostile) string { return func(*hostile) string { return s } }
	var doubling, nested, steps, stepsThenError strings.Builder
	doubling.WriteString("FROM busybox\nARG A0=xxxxxxxxxxxxxxxx\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&doubling, "ARG A%d=${A%d}${A%d}\n", i, i-1, i-1)
	}
	doubling.WriteString("RUN echo ${#A40}\n")
	nested.WriteString("FROM busybox\nARG X=" + strings.Repeat("${X:-", 10000) + "x" + strings.Repeat("}", 10000) + "\nRUN test \"$X\" = x\n")
	steps.WriteString("FROM busybox\n")
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&steps, "ENV V%d=%d\n", i, i)
	}
	stepsThenError.WriteString(steps.String() + "RUN touch /ran\nNOSUCHINSTRUCTION x\n")
	garbage := make([]byte, 1<<20)
	rand.New(rand.NewSource(7)).Read(garbage)
	// The first line carries terminal escapes: an OSC that sets the window title and a
	// CSI that clears the screen.
	escapes := "\x1b]0;forge-pwned\x07\x1b[2J\x1b[31mRUN\x1b[0m x\n"
	for _, c := range []buildCase{
		{name: "RUN line of 16 MiB", build: "fail", words: []string{"max allowed size", "too long", "line"},
			dockerfile: text("FROM busybox\nRUN echo " + strings.Repeat("a", 16<<20) + "\n")},
		{name: "ARG doubling 40 times", build: "fail", words: []string{"limit", "too long", "too large", "exceed"},
			dockerfile: text(doubling.String())},
		{name: "ARG nested 10,000 deep", dockerfile: text(nested.String())},
		{name: "10,000 ENV steps", build: "ok", dockerfile: text(steps.String()), lim: runLimits{memory: 2 << 30, timeout: 4 * time.Minute},
			inside: func(*hostile) string { return `test "$V9999" = 9999` }},
		{name: "10,000 steps, then an unknown instruction", build: "fail", words: []string{"Dockerfile:10003", "unknown instruction"},
			dockerfile: text(stepsThenError.String())},
		{name: "1 MiB of binary garbage", build: "fail", words: []string{"unknown instruction", "invalid", "syntax"},
			dockerfile: text(string(garbage))},
		{name: "NUL bytes", build: "fail", words: []string{"unknown instruction", "invalid", "no instructions", "FROM"},
			dockerfile: text(strings.Repeat("\x00", 4096) + "\n")},
		{name: "terminal escapes", build: "fail", words: []string{"unknown instruction", "invalid"},
			dockerfile: text(escapes + "FROM busybox\n")},
	} {
		if c.lim.memory == 0 {
			c.lim = lim
		}
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			h.buildCase(t, c)
			t.Logf("%s: %v", c.name, time.Since(start).Round(time.Millisecond))
			if strings.Contains(c.name, "then an unknown instruction") && time.Since(start) > 20*time.Second {
				t.Errorf("the parse error came after %v: the steps ran before the whole file was parsed", time.Since(start))
			}
		})
	}
}

// printable fails when an error line holds control characters or invalid UTF-8: what a
// hostile Dockerfile puts in an error must reach the terminal quoted.
func printableLine(t *testing.T, line string) {
	t.Helper()
	if !utf8.ValidString(line) {
		t.Errorf("the error line is not valid UTF-8: %q", line)
	}
	for _, r := range line {
		if r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			t.Errorf("the error line holds the control character %U: %q", r, line)
			return
		}
	}
}
