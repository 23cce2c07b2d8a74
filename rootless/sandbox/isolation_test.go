package sandbox_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/forge-build/forge/rootless/sandbox"
)

// Each test here would fail if the isolation it names were missing.

func TestIsolationHostProcesses(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	pid := strconv.Itoa(os.Getpid())
	got := mustRun(t, sandbox.Config{}, `ls /proc | grep -E '^[0-9]+$' | tr '\n' ' '; test -e /proc/`+pid+` && echo host-visible; true`)
	for _, p := range strings.Fields(got) {
		if p == "host-visible" || p == pid {
			t.Fatalf("host PID %s visible inside: %q", pid, got)
		}
		if n, _ := strconv.Atoi(p); n > 10 {
			t.Errorf("unexpected PID %s inside: %q", p, got)
		}
	}
}

func TestIsolationHostFiles(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	mustWrite(t, secret, "host secret\n", 0o644)
	home, _ := os.UserHomeDir()
	script := fmt.Sprintf(`cat %[1]s; ls %[2]s; echo escaped > %[2]s/written; ls -a %[3]s;
		cat /proc/1/root%[1]s; cat /proc/self/cwd/../../..%[1]s; echo done`, secret, host, home)
	r := run(t, sandbox.Config{}, script)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if strings.Contains(r.stdout, "host secret") || strings.Contains(r.stdout, "secret\n") {
		t.Errorf("host file reachable: %q", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(host, "written")); err == nil {
		t.Error("wrote outside the rootfs")
	}
	if !strings.HasSuffix(r.stdout, "done\n") {
		t.Errorf("script did not finish: %q %q", r.stdout, r.stderr)
	}
}

// CVE-2024-21626 class: a working directory through /proc/self/fd must not reach the host.
func TestIsolationWorkDirProcFD(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	root := newRootfs(t)
	host := t.TempDir()
	mustWrite(t, filepath.Join(host, "host-marker"), "x", 0o644)
	// Leak a descriptor of the host directory into the sandbox's child, as the runtime
	// in CVE-2024-21626 did (Go opens everything close-on-exec; this one is not).
	leak, err := unix.Open(host, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(leak) })
	dirs := []string{"/proc/1/cwd", "/proc/self/root/..", "/../../.."}
	for fd := 0; fd < 12; fd++ {
		dirs = append(dirs, fmt.Sprintf("/proc/self/fd/%d", fd), fmt.Sprintf("/proc/1/fd/%d", fd))
	}
	dirs = append(dirs, fmt.Sprintf("/proc/self/fd/%d", leak), fmt.Sprintf("/proc/1/fd/%d/..", leak))
	// Nor may the command itself find an inherited descriptor.
	got := mustRun(t, sandbox.Config{RootFS: root}, fmt.Sprintf(`ls /proc/self/fd/ /proc/1/fd/%d/ 2>&1; true`, leak))
	if strings.Contains(got, "host-marker") {
		t.Errorf("host directory reachable through an inherited descriptor: %q", got)
	}
	for _, wd := range dirs {
		t.Run(wd, func(t *testing.T) {
			r := run(t, sandbox.Config{RootFS: root, WorkDir: wd}, `pwd; ls -a . .. ../.. ../../..; cat ../../../etc/passwd`)
			if r.err != nil || r.status != 0 {
				t.Logf("refused: status %d, %v", r.status, r.err)
				return
			}
			if strings.Contains(r.stdout, "host-marker") || strings.Contains(r.stdout, "forgedev") ||
				!strings.HasPrefix(r.stdout, "/") {
				t.Errorf("workdir %s reached the host: %q", wd, r.stdout)
			}
		})
	}
}

// A symlink in the image must not move a mount of the sandbox onto a host path.
func TestIsolationSymlinkedMountTarget(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	root := newRootfs(t)
	secret := filepath.Join(t.TempDir(), "secret")
	mustWrite(t, secret, "host secret\n", 0o644)
	if err := os.Symlink(secret, filepath.Join(root, "etc/resolv.conf")); err != nil {
		t.Fatal(err)
	}
	vol := t.TempDir()
	mustWrite(t, filepath.Join(vol, "v"), "volume\n", 0o644)
	if err := os.Symlink("/", filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	cfg := sandbox.Config{RootFS: root, Volumes: []sandbox.Volume{{Source: vol, Dest: "/escape/" + secret + ".d"}}}
	got := mustRun(t, cfg, `cat /etc/resolv.conf | grep -c 'host secret'; ls `+secret+`.d`)
	if !strings.HasPrefix(got, "0") || !strings.Contains(got, "v") {
		t.Errorf("inside: %q", got)
	}
	if data, err := os.ReadFile(secret); err != nil || string(data) != "host secret\n" {
		t.Errorf("host file changed: %q %v", data, err)
	}
	if _, err := os.Lstat(secret + ".d"); err == nil {
		t.Error("volume mount point created on the host")
	}
	// The mount points made inside the rootfs for the run are gone again.
	if _, err := os.Lstat(filepath.Join(root, secret)); err == nil {
		t.Error("mount point left in the rootfs")
	}
}

func TestCancel(t *testing.T) {
	requireSandbox(t)
	root := newRootfs(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	type ran struct {
		status int
		err    error
		at     time.Time
	}
	done := make(chan ran, 1)
	go func() {
		status, err := sandbox.Run(ctx, sandbox.Config{RootFS: root, Args: []string{"sh", "-c", "echo ready; sleep 100 & exec sleep 100"}, Stdout: pw})
		pw.Close()
		done <- ran{status, err, time.Now()}
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("sandbox did not start: %q %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	cancelled := time.Now()
	cancel()
	var r ran
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if d := r.at.Sub(cancelled); d > time.Second {
		t.Errorf("Run returned %v after cancel, want < 1s", d)
	}
	if r.err != nil || r.status != 137 {
		t.Errorf("status %d, err %v, want 137", r.status, r.err)
	}
	if mountedUnder(t, root) {
		t.Error("mount left after cancel")
	}
	// The kernel kills and reaps the rest of the PID namespace asynchronously after its
	// PID 1 dies; give it a moment on a loaded machine.
	deadline := time.Now().Add(3 * time.Second)
	pids := sleepers(t)
	for len(pids) > 0 && time.Now().Before(deadline) {
		pids = sleepers(t)
	}
	if len(pids) > 0 {
		t.Errorf("sandbox processes left: %v", pids)
	}
}

// isZombie reports whether a process has exited and only waits to be reaped.
func isZombie(pid string) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return strings.HasPrefix(rest, "Z") || strings.HasPrefix(rest, "X")
}

// sleepers are the live processes running `sleep 100`.
func sleepers(t *testing.T) []string {
	t.Helper()
	time.Sleep(100 * time.Millisecond) // the kernel reaps the PID namespace asynchronously
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(cmdline) == "sleep\x00100\x00" && !isZombie(e.Name()) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
