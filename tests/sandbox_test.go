package tests

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The RUN sandbox (issue 3): isolation, signals and terminals. Each isolation
// check would fail if the sandbox shared the host's namespace or root.

// sandboxMarker returns a number unlikely to be in any other process's command line.
func sandboxMarker() string {
	return strconv.Itoa(700000 + rand.IntN(200000))
}

// hostPIDsWithCmdline returns the host processes whose command line (NUL
// bytes turned into spaces) contains substr.
func hostPIDsWithCmdline(substr string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), substr) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// startHostSleep starts `sleep SECONDS` on the host (a process the sandbox
// must not see) and stops it when the test ends.
func startHostSleep(t *testing.T, seconds string) {
	t.Helper()
	cmd := exec.Command("sleep", seconds)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// TestSandboxIsolation: from inside `forge run`, the host's processes, forge's
// store, the auth file and the user's home are invisible, nothing outside the
// container's root can be written, and /proc/self/fd tricks in --workingdir
// do not land in a host directory.
func TestSandboxIsolation(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	marker := sandboxMarker()
	secret := "isolation-secret-" + marker

	// An auth file at forge's default place, and a file in the user's home.
	xdg := t.TempDir()
	s.env["XDG_RUNTIME_DIR"] = xdg
	authFile := filepath.Join(xdg, "containers", "auth.json")
	if err := os.MkdirAll(filepath.Dir(authFile), 0o700); err != nil {
		t.Fatal(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("someone:" + secret))
	if err := os.WriteFile(authFile, []byte(`{"auths":{"registry.invalid":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	home := os.Getenv("HOME")
	homeFile := filepath.Join(home, ".forge-isolation-"+marker)
	if err := os.WriteFile(homeFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(homeFile) })

	ctr := s.workingContainer(t, "-q", "busybox")

	t.Run("host processes are invisible", func(t *testing.T) {
		hostSleep := "sleep " + marker
		startHostSleep(t, marker)
		if len(hostPIDsWithCmdline(hostSleep)) == 0 {
			t.Fatalf("the host's %q is not running", hostSleep)
		}
		script := fmt.Sprintf(`echo "pid $$"
n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo "count $n"
for p in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$p" 2>/dev/null; echo; done
for p in %d %d; do if [ -e /proc/$p ]; then echo "visible $p"; fi; done`, os.Getpid(), os.Getppid())
		r := s.run(t, "run", ctr, "--", "sh", "-c", script)
		if r.code != 0 {
			t.Fatalf("want exit 0, got %v", r)
		}
		if !strings.HasPrefix(r.stdout, "pid 1\n") {
			t.Errorf("the command is not PID 1 of a new PID namespace:\n%s", r.stdout)
		}
		if strings.Contains(r.stdout, hostSleep) {
			t.Errorf("the host's %q is visible in the sandbox's /proc:\n%s", hostSleep, r.stdout)
		}
		var n int
		for _, l := range lines(r.stdout) {
			if v, ok := strings.CutPrefix(l, "count "); ok {
				n, _ = strconv.Atoi(v)
			}
			if strings.HasPrefix(l, "visible ") {
				t.Errorf("a host PID (the test's %d or its parent's %d) is in the sandbox's /proc: %s", os.Getpid(), os.Getppid(), l)
			}
		}
		if n < 1 || n > 5 {
			t.Errorf("the sandbox's /proc lists %d processes, want a handful (its own):\n%s", n, r.stdout)
		}
	})

	t.Run("store, auth file and home are unreachable", func(t *testing.T) {
		paths := []string{s.root, s.runroot, authFile, xdg, homeFile, home, e2e.Bin, e2e.RegistriesConf}
		// Each path exists on the host: the checks below mean something.
		for _, p := range paths {
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("host path %s: %v", p, err)
			}
		}
		script := `for p; do for q in "$p" "/proc/1/root$p" "/proc/self/cwd/../../../../../../..$p"; do
  if ls -d "$q" >/dev/null 2>&1; then echo "REACHABLE $q"; fi
  cat "$q" 2>/dev/null
done; done; true`
		r := s.run(t, append([]string{"run", ctr, "--", "sh", "-c", script, "sh"}, paths...)...)
		if r.code != 0 {
			t.Fatalf("want exit 0, got %v", r)
		}
		for _, l := range lines(r.stdout) {
			if strings.HasPrefix(l, "REACHABLE ") {
				t.Errorf("a host path is reachable from the sandbox: %s", strings.TrimPrefix(l, "REACHABLE "))
			}
		}
		if strings.Contains(r.stdout, secret) || strings.Contains(r.stdout, auth) {
			t.Errorf("the sandbox read the auth file or the home file:\n%s", r.stdout)
		}
	})

	t.Run("no write outside the container root", func(t *testing.T) {
		hostDir := t.TempDir() // writable by the user the container's root maps to
		hostTmp := "/tmp/forge-escape-" + marker
		t.Cleanup(func() { os.Remove(hostTmp) })
		attempts := []string{
			hostDir + "/direct",
			"/proc/1/root" + hostDir + "/via-proc-root",
			"/proc/self/cwd/../../../../../.." + hostDir + "/via-cwd",
			"/etc/hosts",       // provided by forge from a host file
			"/etc/resolv.conf", // likewise
			"/etc/hostname",    // likewise
			"/sys/forge-escape",
		}
		script := `for p; do if (echo escaped >> "$p") 2>/dev/null; then echo "WROTE $p"; fi; done
echo inside > ` + hostTmp + `
mkdir -p ` + hostDir + ` && echo inside > ` + hostDir + `/inside`
		r := s.run(t, append([]string{"run", ctr, "--", "sh", "-c", script, "sh"}, attempts...)...)
		if r.code != 0 {
			t.Fatalf("want exit 0, got %v", r)
		}
		for _, l := range lines(r.stdout) {
			if p, ok := strings.CutPrefix(l, "WROTE "); ok && !strings.HasPrefix(p, hostDir) {
				// hostDir paths are checked on the host below: writing there
				// is fine as long as it stays in the container.
				t.Errorf("the sandbox could write %s", p)
			}
		}
		if names, err := dirNames(hostDir); err != nil || len(names) != 0 {
			t.Errorf("the host directory %s was written from the sandbox: %q (err %v)", hostDir, names, err)
		}
		if _, err := os.Lstat(hostTmp); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the sandbox's write to %s reached the host's /tmp (err %v)", hostTmp, err)
		}
		// The writes went into the container instead.
		got := s.must(t, "run", ctr, "--", "cat", hostTmp, hostDir+"/inside")
		if got != "inside\ninside\n" {
			t.Errorf("the files written in the sandbox are not in the container: %q", got)
		}
	})

	t.Run("no file descriptor leaks into the sandbox", func(t *testing.T) {
		// PID 1 is the shell (it does not exec ls, a child, because of
		// "; true"): its descriptors are the ones forge handed over.
		r := s.run(t, "run", ctr, "--", "sh", "-c", "ls /proc/1/fd; true")
		if r.code != 0 {
			t.Fatalf("want exit 0, got %v", r)
		}
		if fds := lines(r.stdout); !slices.Equal(fds, []string{"0", "1", "2"}) {
			detail := s.run(t, "run", ctr, "--", "sh", "-c", "ls -l /proc/1/fd; true")
			t.Errorf("the command starts with descriptors %q, want only 0 1 2 (a leaked descriptor):\n%s", fds, detail.stdout)
		}
	})

	t.Run("workingdir through /proc/self/fd stays in the container", func(t *testing.T) {
		dirs := []string{"/proc/self/cwd", "/proc/1/cwd", "/proc/self/root", "/proc/1/root/../../.."}
		for fd := 3; fd <= 9; fd++ {
			dirs = append(dirs, "/proc/self/fd/"+strconv.Itoa(fd), "/proc/1/fd/"+strconv.Itoa(fd))
		}
		for i, dir := range dirs {
			name := "cve-" + marker + "-" + strconv.Itoa(i)
			r := s.run(t, "run", "--workingdir", dir, ctr, "--", "sh", "-c", "pwd -P; echo x > ./"+name)
			if r.code != 0 {
				oneLineError(t, r) // refusing is fine, with a clear error
				continue
			}
			cwd := strings.TrimSpace(r.stdout)
			if !strings.HasPrefix(cwd, "/") {
				t.Errorf("--workingdir %s: the command's working directory %q is not in the container's tree", dir, cwd)
				continue
			}
			if got := s.run(t, "run", ctr, "--", "cat", filepath.Join(cwd, name)); got.code != 0 || got.stdout != "x\n" {
				t.Errorf("--workingdir %s: a file written in the working directory %s is not in the container: %v", dir, cwd, got)
			}
		}
	})
}

// dirNames returns the names in dir.
func dirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, err
}

// startForge starts forge on s in a process group of its own, as a shell
// starts a foreground job, with stdout and stderr collected.
func startForge(t *testing.T, s *store, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(e2e.Bin, append(s.globalArgs(), args...)...)
	cmd.Env = mergeEnv(os.Environ(), s.env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	return cmd, &stdout, &stderr
}

// waitFor polls cond every 50 ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// storeOverlayMounts returns the lines of a fresh `forge unshare`'s mountinfo
// that are overlay mounts of s's store.
func storeOverlayMounts(t *testing.T, s *store) []string {
	t.Helper()
	var out []string
	for _, l := range lines(s.must(t, "unshare", "cat", "/proc/self/mountinfo")) {
		_, after, _ := strings.Cut(l, " - ")
		if fields := strings.Fields(after); len(fields) > 0 && fields[0] == "overlay" && strings.Contains(l, s.root) {
			out = append(out, l)
		}
		if strings.Contains(l, "/merged ") && strings.Contains(l, s.root) {
			out = append(out, l)
		}
	}
	return out
}

// TestSandboxInterrupt: Ctrl-C (SIGINT to the process group, as a terminal
// sends it), SIGINT or SIGTERM to forge alone, end a long `forge run`
// quickly, kill the whole sandbox tree, and leave the container usable.
func TestSandboxInterrupt(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctr := s.workingContainer(t, "-q", "busybox")
	s.must(t, "run", ctr, "--", "sh", "-c", "echo kept > /kept")

	cases := []struct {
		name  string
		sig   syscall.Signal
		group bool
		cmd   func(n string) []string
	}{
		{"Ctrl-C to the process group", syscall.SIGINT, true, func(n string) []string { return []string{"sleep", n} }},
		{"Ctrl-C to a shell ignoring it", syscall.SIGINT, true, func(n string) []string {
			return []string{"sh", "-c", "trap '' INT TERM; sleep " + n + "; echo survived"}
		}},
		{"SIGINT to forge alone", syscall.SIGINT, false, func(n string) []string { return []string{"sleep", n} }},
		{"SIGTERM to forge alone", syscall.SIGTERM, false, func(n string) []string { return []string{"sleep", n} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := sandboxMarker()
			sleep := "sleep " + n
			cmd, stdout, stderr := startForge(t, s, append([]string{"run", ctr, "--"}, c.cmd(n)...)...)
			if !waitFor(30*time.Second, func() bool { return len(hostPIDsWithCmdline(sleep)) > 0 }) {
				t.Fatalf("%q did not start in the sandbox\nstderr:\n%s", sleep, stderr)
			}
			time.Sleep(200 * time.Millisecond)
			target := cmd.Process.Pid
			if c.group {
				target = -target
			}
			start := time.Now()
			if err := syscall.Kill(target, c.sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
				t.Fatalf("forge run did not end within 20 s of %v", c.sig)
			}
			elapsed := time.Since(start)
			t.Logf("forge ended %v after %v: %v", elapsed.Round(time.Millisecond), c.sig, err)
			if elapsed > 5*time.Second {
				t.Errorf("forge run took %v to end after %v, want well under 5 s", elapsed, c.sig)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Errorf("forge run interrupted by %v: want a non-zero exit, got %v", c.sig, err)
			}
			if strings.Contains(stdout.String(), "survived") {
				t.Errorf("the command went on after forge was interrupted: stdout %q", stdout)
			}
			if !waitFor(2*time.Second, func() bool { return len(hostPIDsWithCmdline(sleep)) == 0 }) {
				pids := hostPIDsWithCmdline(sleep)
				t.Errorf("the sandbox's %q is still running after forge ended (pids %v)", sleep, pids)
				for _, pid := range pids {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			if !waitFor(2*time.Second, func() bool { return len(hostPIDsWithCmdline(s.root)) == 0 }) {
				t.Errorf("forge processes of this store are left running: %v", hostPIDsWithCmdline(s.root))
			}
		})
	}

	if got := s.ctrNames(t); !slices.Contains(got, ctr) {
		t.Errorf("after the interrupts, containers lists %q, want %s in it", got, ctr)
	}
	if got := s.must(t, "run", ctr, "--", "cat", "/kept"); got != "kept\n" {
		t.Errorf("run after the interrupts: %q, want %q", got, "kept\n")
	}
	s.must(t, "run", ctr, "--", "true")
	if leftover := storeOverlayMounts(t, s); len(leftover) > 0 {
		t.Errorf("a fresh forge unshare sees overlay mounts of the store:\n%s", strings.Join(leftover, "\n"))
	}
	s.env["PATH"] = filepath.Dir(e2e.Bin) + string(os.PathListSeparator) + os.Getenv("PATH")
	flags := "--root " + shellQuote(s.root) + " --runroot " + shellQuote(s.runroot)
	script := "set -e; p=$(forge " + flags + " mount " + ctr + "); cat \"$p/kept\"; forge " + flags + " umount " + ctr
	if got := s.must(t, "unshare", "sh", "-c", script); got != "kept\n" {
		t.Errorf("forge mount inside unshare after the interrupts: %q, want the container's /kept", got)
	}
	onlyImageID(t, s.run(t, "commit", "-q", ctr, "localhost/after-interrupt"))
}

// openPTY opens a new pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	sl, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty slave: %v", err)
	}
	return m, sl
}

// runInPTY runs forge on s with a pseudo-terminal as its controlling
// terminal, stdin, stdout and stderr, types input, and returns what the
// terminal showed and the exit status.
func runInPTY(t *testing.T, s *store, input string, args ...string) (string, int) {
	t.Helper()
	master, slave := openPTY(t)
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2e.Bin, append(s.globalArgs(), args...)...)
	cmd.Env = mergeEnv(os.Environ(), s.env)
	cmd.Env = append(cmd.Env, "TERM=xterm")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		slave.Close()
		t.Fatal(err)
	}
	slave.Close()
	var out bytes.Buffer
	var mu sync.Mutex
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return // EIO once every slave is closed
			}
		}
	}()
	if input != "" {
		time.Sleep(500 * time.Millisecond)
		if _, err := io.WriteString(master, input); err != nil {
			t.Errorf("type into the terminal: %v", err)
		}
	}
	err := cmd.Wait()
	select {
	case <-readDone:
	case <-time.After(5 * time.Second):
	}
	mu.Lock()
	shown := out.String()
	mu.Unlock()
	if ctx.Err() != nil {
		t.Fatalf("forge %s under a pty: timed out; the terminal showed:\n%s", strings.Join(args, " "), shown)
	}
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("forge %s under a pty: exit %d, terminal:\n%s", strings.Join(args, " "), code, shown)
	return shown, code
}

// TestSandboxTTY: `run -t` gives the command a terminal, and `run -t -i sh`
// is an interactive shell.
func TestSandboxTTY(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctr := s.workingContainer(t, "-q", "busybox")

	shown, code := runInPTY(t, s, "", "run", "-t", ctr, "--", "sh", "-c", "test -t 0 && test -t 1 && test -t 2 && echo IS-A-TTY; tty")
	if code != 0 || !strings.Contains(shown, "IS-A-TTY") {
		t.Errorf("run -t: want exit 0 and IS-A-TTY, got exit %d:\n%s", code, shown)
	}
	if !strings.Contains(shown, "/dev/pts/") && !strings.Contains(shown, "/dev/console") {
		t.Errorf("run -t: tty names no terminal device:\n%s", shown)
	}

	shown, code = runInPTY(t, s, "echo $((6*7))-answer\nexit 3\n", "run", "-t", "-i", ctr, "sh")
	if code != 3 || !strings.Contains(shown, "42-answer") {
		t.Errorf("run -t -i sh: want 42-answer and exit 3, got exit %d:\n%s", code, shown)
	}

	// Without -t, the command has no terminal even when forge has one
	// (output that goes to a log must not be a terminal's).
	r := s.run(t, "run", ctr, "--", "sh", "-c", "test -t 1 || echo NO-TTY")
	if r.code != 0 || r.stdout != "NO-TTY\n" {
		t.Errorf("run without -t: want NO-TTY, got %v", r)
	}
}
