package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// env is what tests/run.sh sets up; it is read once by TestMain.
type env struct {
	Bin             string // FORGE_BIN: the forge binary
	Registry        string // FORGE_REGISTRY: host:port of a registry without auth, holding library/busybox:latest
	AuthRegistry    string // FORGE_AUTH_REGISTRY: host:port of a registry with htpasswd auth (forge / s3cret)
	RegistryLog     string // FORGE_REGISTRY_LOG: Registry's access log
	AuthRegistryLog string // FORGE_AUTH_REGISTRY_LOG: AuthRegistry's access log
	RegistriesConf  string // FORGE_REGISTRIES_CONF: docker.io mirrored to Registry; both registries insecure
	Fixtures        string // FORGE_FIXTURES: busybox.tar and variant.tar (OCI archives from mkbase)
	DeniedDir       string // FORGE_DENIED_DIR: a root-owned 0700 directory
	SmallFS         string // FORGE_SMALL_FS: a 64 MiB filesystem of the test user's own, for full-disk tests
}

const (
	authUser     = "forge"
	authPassword = "s3cret"
	forgeTimeout = 5 * time.Minute
)

var (
	// e2e and e2eMissing are set once by TestMain and only read afterwards.
	e2e        env
	e2eMissing []string
	imageIDRe  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func TestMain(m *testing.M) {
	e2e, e2eMissing = loadEnv()
	os.Exit(m.Run())
}

func loadEnv() (env, []string) {
	var e env
	var missing []string
	for _, v := range []struct {
		name string
		dst  *string
	}{
		{"FORGE_BIN", &e.Bin},
		{"FORGE_REGISTRY", &e.Registry},
		{"FORGE_AUTH_REGISTRY", &e.AuthRegistry},
		{"FORGE_REGISTRY_LOG", &e.RegistryLog},
		{"FORGE_AUTH_REGISTRY_LOG", &e.AuthRegistryLog},
		{"FORGE_REGISTRIES_CONF", &e.RegistriesConf},
		{"FORGE_FIXTURES", &e.Fixtures},
		{"FORGE_DENIED_DIR", &e.DeniedDir},
		{"FORGE_SMALL_FS", &e.SmallFS},
	} {
		*v.dst = os.Getenv(v.name)
		if *v.dst == "" {
			missing = append(missing, v.name)
		}
	}
	return e, missing
}

// needE2E skips the test when the end-to-end environment is not set up.
// It and needRootE2E are the only places a test skips.
func needE2E(t *testing.T) {
	t.Helper()
	if len(e2eMissing) > 0 {
		t.Skipf("end-to-end environment not set up (missing %s): run `sudo make test`",
			strings.Join(e2eMissing, ", "))
	}
}

// rootEnv is what the tests that run forge as root get from tests/run.sh's root phase.
type rootEnv struct {
	nons   []string // FORGE_NONS: the command that simulates a default unprivileged container
	asUser []string // FORGE_AS_USER: the command prefix that runs a program as the test user
}

// needRootE2E skips the test unless it runs as root in tests/run.sh's root phase (the
// tests named TestChrootContainer*), and returns that phase's environment.
func needRootE2E(t *testing.T) rootEnv {
	t.Helper()
	needE2E(t)
	e := rootEnv{nons: strings.Fields(os.Getenv("FORGE_NONS")), asUser: strings.Fields(os.Getenv("FORGE_AS_USER"))}
	if os.Geteuid() != 0 || len(e.nons) == 0 || len(e.asUser) == 0 {
		t.Skipf("needs root, FORGE_NONS and FORGE_AS_USER (uid %d): tests/run.sh runs it in its root phase", os.Geteuid())
	}
	return e
}

// store is one forge store (--root and --runroot) and the environment forge runs in.
type store struct {
	root, runroot string
	env           map[string]string // overrides of the test process's environment
	// wrap, when set, is the command forge runs under (e.g. nons, or setpriv as the
	// test user): forge's path and arguments follow it.
	wrap []string
}

// newStore makes a store under $TMPDIR. It is not removed by the test: overlay
// leaves files owned by subordinate IDs there; run.sh removes $TMPDIR as root.
func newStore(t *testing.T) *store {
	t.Helper()
	needE2E(t)
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	dir, err := os.MkdirTemp(os.TempDir(), "store-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	return &store{root: filepath.Join(dir, "root"), runroot: filepath.Join(dir, "runroot"), env: map[string]string{}}
}

// result is what one forge invocation printed and its exit status.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("forge %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// globalArgs are the flags that put forge on this store.
func (s *store) globalArgs() []string {
	return []string{"--root", s.root, "--runroot", s.runroot, "--registries-conf", e2e.RegistriesConf}
}

// run runs forge with this store's global flags, then args.
func (s *store) run(t *testing.T, args ...string) result {
	t.Helper()
	return s.runStdin(t, "", args...)
}

func (s *store) runStdin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), forgeTimeout)
	defer cancel()
	all := append(s.globalArgs(), args...)
	cmd := exec.CommandContext(ctx, e2e.Bin, all...)
	if len(s.wrap) > 0 {
		cmd = exec.CommandContext(ctx, s.wrap[0], append(append(append([]string{}, s.wrap[1:]...), e2e.Bin), all...)...)
	}
	cmd.Env = mergeEnv(os.Environ(), s.env)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	r := result{args: all, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("forge %s: timed out after %v\nstderr:\n%s", strings.Join(all, " "), forgeTimeout, r.stderr)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run forge: %v", err)
	}
	t.Logf("forge %s: exit %d", strings.Join(args, " "), r.code)
	return r
}

// must runs forge and fails the test unless it exits 0; it returns stdout.
func (s *store) must(t *testing.T, args ...string) string {
	t.Helper()
	r := s.run(t, args...)
	if r.code != 0 {
		t.Fatalf("want exit 0, got %v", r)
	}
	return r.stdout
}

// pull pulls ref and returns the image ID, which must be all that stdout holds.
func (s *store) pull(t *testing.T, args ...string) string {
	t.Helper()
	r := s.run(t, append([]string{"pull"}, args...)...)
	if r.code != 0 {
		t.Fatalf("want exit 0, got %v", r)
	}
	return onlyImageID(t, r)
}

// onlyImageID checks that stdout is exactly one image ID and returns it.
func onlyImageID(t *testing.T, r result) string {
	t.Helper()
	id := strings.TrimSpace(r.stdout)
	if !imageIDRe.MatchString(id) {
		t.Fatalf("stdout must be just the image ID (64 hex digits), got %v", r)
	}
	return id
}

func mergeEnv(base []string, over map[string]string) []string {
	var out []string
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := over[name]; !ok {
			out = append(out, kv)
		}
	}
	for k, v := range over {
		out = append(out, k+"="+v)
	}
	return out
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// oneLineError checks that r failed with exactly one `forge: ...` error line,
// the last line of stderr, that mentions one of the words (case-insensitive),
// and nothing on stdout. It returns the error line.
func oneLineError(t *testing.T, r result, words ...string) string {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("want a non-zero exit, got %v", r)
	}
	errLines := lines(r.stderr)
	var forgeLines []string
	for _, l := range errLines {
		if strings.HasPrefix(l, "forge: ") {
			forgeLines = append(forgeLines, l)
		}
		if strings.Contains(l, "panic:") || strings.HasPrefix(l, "goroutine ") {
			t.Fatalf("forge crashed: %v", r)
		}
	}
	if len(errLines) == 0 || len(forgeLines) != 1 || forgeLines[0] != errLines[len(errLines)-1] {
		t.Fatalf("want exactly one `forge: ...` line, last on stderr, got %v", r)
	}
	if strings.TrimSpace(r.stdout) != "" {
		t.Errorf("want nothing on stdout after a failure, got %q", r.stdout)
	}
	line := forgeLines[0]
	t.Logf("error: %s", line)
	lower := strings.ToLower(line)
	for _, w := range words {
		if strings.Contains(lower, strings.ToLower(w)) {
			return line
		}
	}
	if len(words) > 0 {
		t.Errorf("error does not say what went wrong (want one of %q): %s", words, line)
	}
	return line
}
