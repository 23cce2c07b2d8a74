package rootless

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const warningPrefix = "only your own UID is mapped ("

func TestEnterFull(t *testing.T) {
	u := requireUnprivilegedUser(t, ModeFull)
	path := u.pathDir(t, []string{"id", "newuidmap", "newgidmap"}, nil)
	uidRange, _, err := readSubIDRange("/etc/subuid", u.name, u.uid)
	must(t, err)
	gidRange, _, err := readSubIDRange("/etc/subgid", u.name, u.uid)
	must(t, err)

	t.Run("info", func(t *testing.T) {
		t.Parallel()
		r, stderr := u.info(t, path)
		checkInside(t, u, r)
		if r.Info.Mode != ModeFull || !strings.HasPrefix(r.Info.Reason, "newuidmap and a range in /etc/subuid for ") {
			t.Errorf("mode %s (%s), want full", r.Info.Mode, r.Info.Reason)
		}
		wantUID := []IDMap{{0, uint32(u.uid), 1}, {1, uidRange.Start, uidRange.Count}}
		wantGID := []IDMap{{0, uint32(u.gid), 1}, {1, gidRange.Start, gidRange.Count}}
		if !reflect.DeepEqual(r.Info.UIDMap, wantUID) || !reflect.DeepEqual(r.Info.GIDMap, wantGID) {
			t.Errorf("maps %+v / %+v, want %+v / %+v", r.Info.UIDMap, r.Info.GIDMap, wantUID, wantGID)
		}
		if strings.Contains(stderr, warningPrefix) {
			t.Errorf("full mode warned: %s", stderr)
		}
	})
	t.Run("nested", func(t *testing.T) {
		t.Parallel()
		checkNested(t, u, path)
	})
	t.Run("chown to another user", func(t *testing.T) {
		t.Parallel()
		if code, _, stderr := u.run(t, path, "chown", "owned-by-1000"); code != 0 {
			t.Fatalf("probe chown: exit %d: %s", code, stderr)
		}
		fi, err := os.Lstat(filepath.Join(u.work, "owned-by-1000"))
		must(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		if want := uidRange.Start + 999; st.Uid != want || st.Gid != gidRange.Start+999 {
			t.Errorf("on the host the file is owned by %d:%d, want %d:%d", st.Uid, st.Gid, want, gidRange.Start+999)
		}
	})
	t.Run("exit status", func(t *testing.T) {
		t.Parallel()
		checkExitStatus(t, u, path)
	})
	t.Run("signals", func(t *testing.T) {
		t.Parallel()
		checkSignals(t, u, path)
	})
	t.Run("newuidmap fails", func(t *testing.T) {
		t.Parallel()
		checkHelperFails(t, u)
	})
}

func TestEnterSingle(t *testing.T) {
	u := requireUnprivilegedUser(t, ModeSingle)
	path := u.pathDir(t, []string{"id"}, nil) // no newuidmap

	t.Run("info", func(t *testing.T) {
		t.Parallel()
		r, stderr := u.info(t, path)
		checkInside(t, u, r)
		if r.Info.Mode != ModeSingle || r.Info.Reason != "newuidmap not found in PATH" {
			t.Errorf("mode %s (%s), want single (newuidmap not found in PATH)", r.Info.Mode, r.Info.Reason)
		}
		if want := []IDMap{{0, uint32(u.uid), 1}}; !reflect.DeepEqual(r.Info.UIDMap, want) {
			t.Errorf("uid map %+v, want %+v", r.Info.UIDMap, want)
		}
		if want := []IDMap{{0, uint32(u.gid), 1}}; !reflect.DeepEqual(r.Info.GIDMap, want) {
			t.Errorf("gid map %+v, want %+v", r.Info.GIDMap, want)
		}
		if n := strings.Count(stderr, warningPrefix); n != 1 || !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, "fix: install uidmap") {
			t.Errorf("want one warning naming the fix, got %d in:\n%s", n, stderr)
		}
	})
	t.Run("chown to another user fails", func(t *testing.T) {
		t.Parallel()
		code, _, stderr := u.run(t, path, "chown", "owned-by-1000")
		if code != 1 || !strings.Contains(stderr, "invalid argument") {
			t.Errorf("probe chown: exit %d, stderr %q; want 1 and EINVAL", code, stderr)
		}
	})
	t.Run("exit status", func(t *testing.T) {
		t.Parallel()
		checkExitStatus(t, u, path)
	})
	t.Run("signals", func(t *testing.T) {
		t.Parallel()
		checkSignals(t, u, path)
	})
}

// checkNested checks a forge started from inside the namespace (as by forge unshare): it
// must not re-execute, and sees the same mapping.
func checkNested(t *testing.T, u unprivUser, path string) {
	t.Helper()
	code, stdout, stderr := u.run(t, path, "nested")
	var r probeReport
	if err := json.Unmarshal([]byte(stdout), &r); code != 0 || err != nil {
		t.Fatalf("probe nested: exit %d, %v\nstdout: %s\nstderr: %s", code, err, stdout, stderr)
	}
	checkInside(t, u, r)
	if r.Info.Mode != ModeFull || len(r.Info.UIDMap) != 2 {
		t.Errorf("nested forge sees mode %s and map %+v, want full with two ranges", r.Info.Mode, r.Info.UIDMap)
	}
}

// checkHelperFails checks that a failing newuidmap is reported with its command line and
// its stderr.
func checkHelperFails(t *testing.T, u unprivUser) {
	t.Helper()
	bad := u.pathDir(t, []string{"id"}, map[string]string{
		"newuidmap": "echo 'newuidmap: range not allowed' >&2; exit 1",
		"newgidmap": "exit 0",
	})
	code, _, stderr := u.run(t, bad, "info")
	want := filepath.Join(bad, "newuidmap") + " "
	if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "exit status 1: newuidmap: range not allowed") {
		t.Errorf("exit %d, stderr %q; want 1 and an error naming %q with its stderr", code, stderr, want)
	}
}

// checkSignals checks that signals to the outer process reach the child, and that the
// child dies with the outer process.
func checkSignals(t *testing.T, u unprivUser, path string) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run("forward "+sig.String(), func(t *testing.T) {
			t.Parallel()
			cmd, out, _ := startWaiting(t, u, path)
			must(t, cmd.Process.Signal(sig)) // to the outer process only
			rest, _ := io.ReadAll(out)
			_ = cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != 7 || !strings.Contains(string(rest), "child got the signal") {
				t.Errorf("exit %d, stdout %q; want the child to see the signal and exit 7", code, rest)
			}
		})
	}
	t.Run("child dies with the outer process", func(t *testing.T) {
		t.Parallel()
		cmd, _, child := startWaiting(t, u, path)
		must(t, cmd.Process.Kill())
		_ = cmd.Wait()
		for deadline := time.Now().Add(10 * time.Second); processAlive(child); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(child, syscall.SIGKILL)
				t.Fatalf("child %d outlived its killed outer process", child)
			}
		}
	})
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(after, "Z") && !strings.HasPrefix(after, "X")
}
