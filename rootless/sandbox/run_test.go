package sandbox_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/forge-build/forge/rootless/sandbox"
)

func TestRunStatus(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	root := newRootfs(t)
	mustWrite(t, filepath.Join(root, "bin/notexec"), "#!/bin/sh\necho hi\n", 0o644)
	mustWrite(t, filepath.Join(root, "bin/badinterp"), "#!/nonexistent/sh\n", 0o755)
	tests := []struct {
		name    string
		args    []string
		status  int
		inError string // expected on stderr
	}{
		{"exit 0", []string{"sh", "-c", "exit 0"}, 0, ""},
		{"exit 1", []string{"sh", "-c", "exit 1"}, 1, ""},
		{"exit 42", []string{"sh", "-c", "exit 42"}, 42, ""},
		{"child killed by a signal", []string{"sh", "-c", "sleep 5 & kill -TERM $!; wait $!"}, 128 + 15, ""},
		{"command not found", []string{"nosuchcmd", "arg"}, 127, "forge: run: nosuchcmd: command not found\n"},
		{"missing path", []string{"/no/such/file"}, 127, "forge: run: /no/such/file: no such file or directory\n"},
		{"not executable", []string{"notexec"}, 126, "forge: run: notexec: permission denied\n"},
		{"not executable by path", []string{"/bin/notexec"}, 126, "forge: run: /bin/notexec: permission denied\n"},
		{"missing interpreter", []string{"badinterp"}, 127, ""},
		{"a directory", []string{"/bin"}, 126, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, sandbox.Config{RootFS: root, Args: tt.args}, "")
			if r.err != nil || r.status != tt.status {
				t.Fatalf("status %d, err %v, want %d (stderr %q)", r.status, r.err, tt.status, r.stderr)
			}
			if tt.inError != "" && r.stderr != tt.inError {
				t.Errorf("stderr %q, want %q", r.stderr, tt.inError)
			}
		})
	}
}

func TestRunEnvironment(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	tests := []struct {
		name   string
		cfg    sandbox.Config
		script string
		want   string
	}{
		{"env and default PATH", sandbox.Config{Env: []string{"FOO=bar"}}, `echo "$FOO $PATH $HOME"`,
			"bar /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /root"},
		{"PATH from env", sandbox.Config{Env: []string{"PATH=/opt:/bin"}}, `echo $PATH`, "/opt:/bin"},
		{"hostname", sandbox.Config{Hostname: "forgetest"},
			`hostname; cat /etc/hostname; grep -c forgetest /etc/hosts`, "forgetest\nforgetest\n1"},
		{"workdir created", sandbox.Config{WorkDir: "/work/dir"}, `pwd; test -d /work/dir && echo ok`, "/work/dir\nok"},
		{"relative workdir", sandbox.Config{WorkDir: "rel"}, `pwd`, "/rel"},
		{"root capabilities", sandbox.Config{}, `grep -E '^Cap(Eff|Bnd)' /proc/self/status`,
			"CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb"},
		{"pid 1", sandbox.Config{}, `echo $$`, "1"},
		{"proc shows only the sandbox", sandbox.Config{}, `echo /proc/[0-9]*`, "/proc/1"},
		{"dev", sandbox.Config{}, `ls /dev | sort | tr '\n' ' '`,
			"fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero"},
		{"dev null works", sandbox.Config{}, `echo x > /dev/null && head -c 3 /dev/zero | wc -c`, "3"},
		{"sys read-only", sandbox.Config{}, `test -d /sys/kernel && ! touch /sys/x 2>/dev/null && echo ro`, "ro"},
		{"kernel interfaces hidden", sandbox.Config{}, `cat /proc/kcore | wc -c; echo 1 > /proc/sys/kernel/domainname || echo ro`, "0\nro"},
		{"resolv.conf present", sandbox.Config{}, `test -f /etc/resolv.conf && echo ok`, "ok"},
		{"stdin is /dev/null", sandbox.Config{}, `cat; echo end`, "end"},
		{"stdin", sandbox.Config{Stdin: strings.NewReader("hello\n")}, `cat`, "hello"},
		{"no tty", sandbox.Config{}, `test -t 0 || echo notty`, "notty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := mustRun(t, tt.cfg, tt.script); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRunNetworkNone(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	got := mustRun(t, sandbox.Config{Network: "none"},
		`tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; ip link show lo | grep -c UP`)
	if got != "lo\n1" {
		t.Errorf("interfaces and lo up: %q, want %q", got, "lo\n1")
	}
}

func TestRunUser(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	root := newRootfs(t)
	r := run(t, sandbox.Config{RootFS: root, User: "1000"}, `id -u; id -G; grep CapEff /proc/self/status; echo $HOME`)
	if errors.Is(r.err, sandbox.ErrUnmappedID) {
		// Only forge's own ID is mapped: the error must say so, and nothing ran.
		t.Logf("single-ID user namespace: %v", r.err)
		return
	}
	if r.err != nil || r.status != 0 {
		t.Fatalf("status %d, err %v, stderr %q", r.status, r.err, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || lines[0] != "1000" || !slices.Contains(strings.Fields(lines[1]), "2000") ||
		lines[2] != "CapEff:\t0000000000000000" || lines[3] != "/home/user" {
		t.Errorf("id as 1000: %q", r.stdout)
	}
	if got := mustRun(t, sandbox.Config{RootFS: root, User: "user:extra"}, `id -u; id -g`); got != "1000\n2000" {
		t.Errorf("user:extra: %q", got)
	}
	if got := mustRun(t, sandbox.Config{RootFS: root, User: "user", WorkDir: "/tmp"}, `touch f && stat -c %u f`); got != "1000" {
		t.Errorf("file made by user: owner %q", got)
	}
}

func TestRunUnknownUser(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	r := run(t, sandbox.Config{User: "nosuch"}, "true")
	if r.err == nil {
		t.Fatalf("unknown user: status %d, no error", r.status)
	}
}

func TestRunVolumes(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	root := newRootfs(t)
	ro, rw := t.TempDir(), t.TempDir()
	mustWrite(t, filepath.Join(ro, "file"), "from host\n", 0o644)
	cfg := sandbox.Config{RootFS: root, Volumes: []sandbox.Volume{
		{Source: ro, Dest: "/mnt/ro", ReadOnly: true},
		{Source: rw, Dest: "/mnt/rw"},
		{Source: filepath.Join(ro, "file"), Dest: "/etc/single"},
	}}
	got := mustRun(t, cfg, `cat /mnt/ro/file; touch /mnt/ro/x 2>/dev/null || echo ro; echo w > /mnt/rw/out; cat /etc/single`)
	if got != "from host\nro\nfrom host" {
		t.Errorf("got %q", got)
	}
	if data, err := os.ReadFile(filepath.Join(rw, "out")); err != nil || string(data) != "w\n" {
		t.Errorf("rw volume: %q, %v", data, err)
	}
	cfg.Volumes = []sandbox.Volume{{Source: filepath.Join(ro, "missing"), Dest: "/m"}}
	if r := run(t, cfg, "true"); r.err == nil {
		t.Errorf("missing volume source: status %d, no error", r.status)
	}
}

// Mount points the sandbox had to create are gone afterwards: nothing to commit.
func TestRunLeavesNoMountpoints(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	root := newRootfs(t)
	vol := t.TempDir()
	cfg := sandbox.Config{RootFS: root, Volumes: []sandbox.Volume{{Source: vol, Dest: "/a/b/c"}}}
	mustRun(t, cfg, `test -f /etc/hosts && test -d /a/b/c && mkdir -p /made && echo x > /made/kept`)
	for _, p := range []string{"proc", "dev", "sys", "etc/hosts", "etc/resolv.conf", "etc/hostname", "a"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("/%s left in the rootfs", p)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "made/kept")); err != nil {
		t.Errorf("the command's own file is gone: %v", err)
	}
	if mountedUnder(t, root) {
		t.Errorf("a mount under %s is left", root)
	}
	// What the image already has stays.
	mustMkdir(t, filepath.Join(root, "proc"))
	mustWrite(t, filepath.Join(root, "etc/hosts"), "", 0o644)
	mustRun(t, sandbox.Config{RootFS: root}, "true")
	for _, p := range []string{"proc", "etc/hosts"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("/%s of the image removed: %v", p, err)
		}
	}
}
