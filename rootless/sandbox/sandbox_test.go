package sandbox_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"

	"github.com/forge-build/forge/rootless/sandbox"
)

func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

// skipUnless is the one place a test skips: it names what is missing.
func skipUnless(t *testing.T, ok bool, missing string) {
	t.Helper()
	if !ok {
		t.Skipf("needs %s", missing)
	}
}

// requireSandbox skips unless the test runs as root in its user namespace, as forge does
// when it calls Run (real root, or `unshare --user --map-root-user --mount`).
func requireSandbox(t *testing.T) {
	t.Helper()
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	ok := os.Geteuid() == 0 && unix.Capget(&hdr, &data[0]) == nil && data[0].Effective&(1<<unix.CAP_SYS_ADMIN) != 0
	skipUnless(t, ok, "root with CAP_SYS_ADMIN in a user namespace (run under `unshare --user --map-root-user --mount`)")
}

// busybox is the host's static busybox.
func busybox(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	skipUnless(t, false, "/bin/busybox (apt-get install busybox-static)")
	return ""
}

var applets = []string{
	"sh", "ls", "id", "cat", "echo", "test", "sleep", "hostname", "env", "pwd", "touch",
	"mkdir", "grep", "stty", "tty", "readlink", "wc", "true", "false", "stat", "ip",
	"sort", "tr", "head", "tail", "cut", "kill", "ps",
}

// newRootfs builds a one-binary root filesystem: busybox and its applets, /etc/passwd
// and /etc/group with root, user (1000) and group extra (2000, user a member).
func newRootfs(t *testing.T) string {
	t.Helper()
	bb := busybox(t)
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "tmp", "home/user"} {
		mustMkdir(t, filepath.Join(root, d))
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(root, "bin/busybox"), string(data), 0o755)
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(root, "etc/passwd"),
		"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n", 0o644)
	mustWrite(t, filepath.Join(root, "etc/group"), "root:x:0:\nuser:x:1000:\nextra:x:2000:user\n", 0o644)
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	return root
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// result is what one Run gave.
type result struct {
	status         int
	err            error
	stdout, stderr string
}

// run runs a shell script in the sandbox described by cfg (RootFS filled in when empty).
func run(t *testing.T, cfg sandbox.Config, script string) result {
	t.Helper()
	if cfg.RootFS == "" {
		cfg.RootFS = newRootfs(t)
	}
	if cfg.Args == nil {
		cfg.Args = []string{"sh", "-c", script}
	}
	var out, errOut bytes.Buffer
	if cfg.Stdout == nil {
		cfg.Stdout = &out
	}
	cfg.Stderr = &errOut
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, err := sandbox.Run(ctx, cfg)
	return result{status: status, err: err, stdout: out.String(), stderr: errOut.String()}
}

// mustRun is run that fails the test unless the script exits 0.
func mustRun(t *testing.T, cfg sandbox.Config, script string) string {
	t.Helper()
	r := run(t, cfg, script)
	if r.err != nil || r.status != 0 {
		t.Fatalf("run %q: status %d, err %v, stderr %q", script, r.status, r.err, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// mountedUnder reports whether /proc/self/mountinfo lists a mount at or below dir.
func mountedUnder(t *testing.T, dir string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			return true
		}
	}
	return false
}

func TestRootlessSelf(t *testing.T) {
	// Documents how this run of the tests was privileged, for the log.
	uidMap, _ := os.ReadFile("/proc/self/uid_map")
	t.Logf("euid %d, uid_map %q", os.Geteuid(), strings.TrimSpace(string(uidMap)))
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Log("unshare not found")
	}
}
