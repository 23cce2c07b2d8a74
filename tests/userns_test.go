package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// earlyEnv=0 makes forge enter its user namespace the way it does where the early entry
// does not apply: an outer forge process starts a second one in the namespace and waits.
const earlyEnv = "_FORGE_USERNS_EARLY"

// TestUserNamespaceOneProcess: with newuidmap and subordinate ranges, the forge process a
// caller starts is itself the one in the user namespace (no second forge waits for it), and
// it reports the same mapping as the two-process way.
func TestUserNamespaceOneProcess(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root needs no user namespace")
	}
	t.Parallel()
	s := newStore(t)
	// The shell prints its pid and becomes forge; forge's child prints its parent's pid.
	s.wrap = []string{"sh", "-c", `echo $$; exec "$0" "$@"`}
	pids := func(env string) (caller, parent string) {
		t.Helper()
		s.env[earlyEnv] = env
		r := s.run(t, "unshare", "sh", "-c", "echo $PPID")
		lines := strings.Fields(r.stdout)
		if r.code != 0 || len(lines) != 2 {
			t.Fatalf("want two pids: %v", r)
		}
		return lines[0], lines[1]
	}
	if caller, parent := pids(""); caller != parent {
		t.Errorf("forge started as pid %s, but the command in its namespace has the parent %s: two forge processes", caller, parent)
	}
	// ps, pgrep and top still show it by its name.
	if r := s.run(t, "unshare", "sh", "-c", "cat /proc/$PPID/comm"); !strings.HasSuffix(r.stdout, filepath.Base(e2e.Bin)+"\n") {
		t.Errorf("forge's process name, seen from its namespace: want %q: %v", filepath.Base(e2e.Bin), r)
	}
	if caller, parent := pids("0"); caller == parent {
		t.Errorf("with %s=0 forge must still start a second process (pid %s)", earlyEnv, caller)
	}

	s.wrap = nil
	idmap := func(env string) string {
		t.Helper()
		s.env[earlyEnv] = env
		var info struct{ IDMap json.RawMessage }
		r := s.run(t, "info")
		if err := json.Unmarshal([]byte(r.stdout), &info); r.code != 0 || err != nil {
			t.Fatalf("info: %v (%v)", r, err)
		}
		return string(info.IDMap)
	}
	early, late := idmap(""), idmap("0")
	if early != late || !strings.Contains(early, `"mode": "full"`) {
		t.Errorf("forge info's idmap: one process\n%s\ntwo processes\n%s\nwant the same, in full mode", early, late)
	}
}

// TestUserNamespaceHelperFails: when newuidmap refuses, forge says which command failed,
// how, and what it printed, on one line, and exits 1, whichever way it entered; the pid
// in the message is the forge the caller started when it enters early. A caller that
// ignores SIGCHLD (kept across exec) does not hide the failure, and --help needs no
// namespace.
func TestUserNamespaceHelperFails(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root needs no user namespace")
	}
	t.Parallel()
	dir := t.TempDir()
	fake := filepath.Join(dir, "newuidmap")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'newuidmap: range refused' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	s.env["PATH"] = dir + string(filepath.ListSeparator) + os.Getenv("PATH")
	// (A shell's trap '' CHLD does not reach the program it executes; perl's does.)
	s.wrap = []string{"perl", "-e", `$SIG{CHLD} = "IGNORE"; print STDERR "$$\n"; exec(@ARGV) or die`}
	for _, env := range []string{"", "0"} {
		s.env[earlyEnv] = env
		r := s.run(t, "images")
		line := oneLineError(t, r, fake+" ")
		if want := ": exit status 3: newuidmap: range refused"; !strings.Contains(line, want) || r.code != 1 {
			t.Errorf("%s=%q: want exit 1 and %q in the error: %v", earlyEnv, env, want, r)
		}
		caller := strings.Fields(r.stderr)[0]
		if early := strings.Contains(line, fake+" "+caller+" "); early != (env == "") {
			t.Errorf("%s=%q: the map was written for the caller's pid %s: %v, want %v", earlyEnv, env, caller, early, env == "")
		}
		for _, help := range []string{"--help", "-h", "-help", "--help=true"} {
			if r := s.run(t, "images", help); r.code != 0 || !strings.Contains(r.stdout, "forge images") {
				t.Errorf("%s=%q: forge images %s: %v", earlyEnv, env, help, r)
			}
		}
	}
}
