package rootless

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const testUser = "forgedev" // created when the tests run as root

// unprivUser runs the probe (a copy of this test binary) as an unprivileged user: the
// test's own user, or testUser when the tests run as root.
type unprivUser struct {
	uid, gid int
	name     string
	asRoot   bool   // switch to the user with SysProcAttr.Credential
	dir      string // world-readable: holds the probe binary and fake PATH dirs
	bin      string // the probe
	work     string // owned by the user: the probe's working directory
}

// requireUnprivilegedUser returns the user to run the probe as, or skips the test naming
// what is missing. Full mode also needs newuidmap, newgidmap and subordinate ranges; as
// root it adds testUser's ranges when absent.
func requireUnprivilegedUser(t *testing.T, mode Mode) unprivUser {
	t.Helper()
	if missing := userNamespacesMissing(); missing != "" {
		t.Skipf("user namespaces are not available to unprivileged users: %s", missing)
	}
	u := unprivUser{uid: os.Getuid(), gid: os.Getgid(), asRoot: os.Geteuid() == 0}
	if u.asRoot {
		if err := ensureTestUser(&u, mode); err != nil {
			t.Skipf("running as root and cannot set up the unprivileged user %s: %v", testUser, err)
		}
	} else if pu, err := user.LookupId(strconv.Itoa(u.uid)); err == nil {
		u.name = pu.Username
	}
	if mode == ModeFull {
		if p := choosePlan(defaultHostSetup(), caller{uid: u.uid, gid: u.gid, name: u.name}); p.mode != ModeFull {
			t.Skipf("full mode needs uidmap (apt-get install uidmap) and subordinate ID ranges: %s", p.reason)
		}
	}
	u.setupFiles(t)
	return u
}

// userNamespacesMissing names the sysctl that forbids unprivileged user namespaces, if any.
func userNamespacesMissing() string {
	for file, bad := range map[string]string{
		"/proc/sys/user/max_user_namespaces":                     "0",
		"/proc/sys/kernel/unprivileged_userns_clone":             "0",
		"/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1",
	} {
		if b, err := os.ReadFile(file); err == nil && strings.TrimSpace(string(b)) == bad {
			return file + " is " + bad
		}
	}
	return ""
}

// ensureTestUser creates testUser when missing and, for full mode, gives it ranges.
func ensureTestUser(u *unprivUser, mode Mode) error {
	pu, err := user.Lookup(testUser)
	if err != nil {
		if out, err := exec.Command("useradd", "-m", testUser).CombinedOutput(); err != nil {
			return fmt.Errorf("useradd: %w: %s", err, out)
		}
		if pu, err = user.Lookup(testUser); err != nil {
			return err
		}
	}
	u.name = testUser
	u.uid, _ = strconv.Atoi(pu.Uid)
	u.gid, _ = strconv.Atoi(pu.Gid)
	if mode != ModeFull {
		return nil
	}
	for _, file := range []string{"/etc/subuid", "/etc/subgid"} {
		if _, found, err := readSubIDRange(file, u.name, u.uid); err != nil || found {
			continue
		}
		f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(f, "%s:200000:65536\n", u.name)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// setupFiles copies the test binary where the user can run it and makes its work dir.
func (u *unprivUser) setupFiles(t *testing.T) {
	t.Helper()
	dir, err := os.MkdirTemp("", "forge-rootless-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	u.dir, u.bin, u.work = dir, filepath.Join(dir, "probe"), filepath.Join(dir, "work")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.Chmod(dir, 0o755))
	must(t, os.WriteFile(u.bin, bin, 0o755))
	must(t, os.Mkdir(u.work, 0o755))
	if u.asRoot {
		must(t, os.Chown(u.work, u.uid, u.gid))
	}
}

// pathDir makes a directory for the probe's PATH holding the named host commands, plus
// scripts (name -> shell script body).
func (u unprivUser) pathDir(t *testing.T, commands []string, scripts map[string]string) string {
	t.Helper()
	dir, err := os.MkdirTemp(u.dir, "path-")
	must(t, err)
	must(t, os.Chmod(dir, 0o755))
	for _, name := range commands {
		target, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s is needed by the test: %v", name, err)
		}
		must(t, os.Symlink(target, filepath.Join(dir, name)))
	}
	for name, body := range scripts {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	}
	return dir
}

// probe is the command that runs the probe as the user with only PATH set.
func (u unprivUser) probe(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, u.bin, args...)
	// The Go way in: a test binary built with cgo links early.c, which would otherwise
	// take `info` for forge's command and enter the namespace before Enter runs.
	cmd.Env = []string{probeEnv + "=1", "PATH=" + path, "HOME=" + u.work, envEarly + "=0"}
	cmd.Dir = u.work
	if u.asRoot {
		cred := &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid), Groups: []uint32{}}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return cmd
}

// run runs the probe to the end and returns its exit status, stdout and stderr.
func (u unprivUser) run(t *testing.T, path string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := u.probe(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run probe %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// info runs `probe info` and decodes its report.
func (u unprivUser) info(t *testing.T, path string) (probeReport, string) {
	t.Helper()
	code, stdout, stderr := u.run(t, path, "info")
	if code != 0 {
		t.Fatalf("probe info: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var r probeReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("probe info: %v\n%s", err, stdout)
	}
	return r, stderr
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// checkInside checks what holds in both modes once Enter returned in the child.
func checkInside(t *testing.T, u unprivUser, r probeReport) {
	t.Helper()
	if r.IDU != "0" || r.Euid != 0 || r.Info.UID != u.uid || r.Info.GID != u.gid {
		t.Errorf("id -u %s, euid %d, Info.UID/GID %d/%d; want 0, 0, %d/%d", r.IDU, r.Euid, r.Info.UID, r.Info.GID, u.uid, u.gid)
	}
	if eff, _ := strconv.ParseUint(r.CapEff, 16, 64); r.CapEff != r.CapBnd || eff&(1<<21) == 0 {
		t.Errorf("CapEff %s: want the whole bounding set %s, with CAP_SYS_ADMIN", r.CapEff, r.CapBnd)
	}
	if !r.StorageRootless || r.StorageUID != u.uid || r.StorageGID != u.gid {
		t.Errorf("storage's unshare sees rootless %v, uid %d, gid %d; want true, %d, %d",
			r.StorageRootless, r.StorageUID, r.StorageGID, u.uid, u.gid)
	}
	if r.RootShared {
		t.Error("/ is still a shared mount inside the namespace")
	}
	if r.Cwd != u.work {
		t.Errorf("working directory %q, want %q", r.Cwd, u.work)
	}
	if want := []string{envMode, envReason}; !slices.Equal(r.ForgeEnv, want) {
		t.Errorf("forge variables in the final process: %v, want %v", r.ForgeEnv, want)
	}
}

// checkExitStatus checks that the child's exit status becomes the outer process's.
func checkExitStatus(t *testing.T, u unprivUser, path string) {
	t.Helper()
	for _, tt := range []struct {
		args    []string
		code    int
		message string
	}{
		{[]string{"exit", "0"}, 0, ""},
		{[]string{"exit", "3"}, 3, ""},
		{[]string{"kill-self"}, 137, "forge in the user namespace: killed"},
	} {
		code, _, stderr := u.run(t, path, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.message) {
			t.Errorf("probe %v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.message)
		}
	}
}

// startWaiting starts `probe wait-signal` and returns it with the final child's pid.
func startWaiting(t *testing.T, u unprivUser, path string) (*exec.Cmd, io.Reader, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	cmd := u.probe(ctx, path, "wait-signal")
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	rd := bufio.NewReader(out)
	line, err := rd.ReadString('\n')
	var pid int
	if _, serr := fmt.Sscanf(line, "ready %d", &pid); err != nil || serr != nil {
		t.Fatalf("probe wait-signal printed %q: %v", line, errors.Join(err, serr))
	}
	return cmd, rd, pid
}
