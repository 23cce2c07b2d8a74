package rootless

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestChoosePlan(t *testing.T) {
	t.Parallel()
	alice := caller{uid: 1000, gid: 1000, name: "alice"}
	tests := []planCase{
		{
			name: "full", helpers: true, subuid: "alice:100000:65536\n", subgid: "alice:100000:65536\n", who: alice,
			mode: ModeFull, reason: "newuidmap and a range in SUBUID for alice",
		},
		{
			name: "full by uid", helpers: true, subuid: "1000:100000:65536\n", subgid: "1000:100000:65536\n", who: caller{uid: 1000, gid: 1000},
			mode: ModeFull, reason: "newuidmap and a range in SUBUID for 1000",
		},
		{
			name: "no helpers", subuid: "alice:100000:65536\n", subgid: "alice:100000:65536\n", who: alice,
			mode: ModeSingle, reason: "newuidmap not found in PATH", fix: "fix: install uidmap (newuidmap, newgidmap)",
		},
		{
			name: "no helpers and no range", who: alice,
			mode: ModeSingle, reason: "newuidmap not found in PATH",
			fix: "fix: install uidmap and give alice a range with: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice",
		},
		{
			name: "no subuid range", helpers: true, subuid: "bob:100000:65536\n", subgid: "alice:100000:65536\n", who: alice,
			mode: ModeSingle, reason: "no range for alice in SUBUID",
			fix: "fix: give alice a range with: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice",
		},
		{
			name: "no subgid range", helpers: true, subuid: "alice:100000:65536\n", who: alice,
			mode: ModeSingle, reason: "no range for alice in SUBGID",
		},
		{
			name: "no passwd entry", helpers: true, who: caller{uid: 4242, gid: 4242},
			mode: ModeSingle, reason: "no range for 4242 in SUBUID",
			fix: "fix: add the line 4242:100000:65536 to /etc/subuid and /etc/subgid",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkPlan(t, tt)
		})
	}
}

type planCase struct {
	name           string
	helpers        bool
	subuid, subgid string // file contents; "" = no file
	who            caller
	mode           Mode
	reason         string // with the files' paths written SUBUID and SUBGID
	fix            string // the end of the warning, when not ""
}

func checkPlan(t *testing.T, tt planCase) {
	t.Helper()
	h := fakeHost(t, tt.helpers, tt.subuid, tt.subgid)
	p := choosePlan(h, tt.who)
	reason := strings.NewReplacer(h.subUID, "SUBUID", h.subGID, "SUBGID").Replace(p.reason)
	if p.mode != tt.mode || reason != tt.reason {
		t.Errorf("choosePlan = %s (%s), want %s (%s)", p.mode, reason, tt.mode, tt.reason)
	}
	w := p.warning()
	if !strings.HasPrefix(w, "only your own UID is mapped (") || !strings.Contains(w, "ignore_chown_errors") {
		t.Errorf("warning %q does not say what breaks", w)
	}
	if tt.fix != "" && !strings.HasSuffix(w, tt.fix) {
		t.Errorf("warning %q does not end with %q", w, tt.fix)
	}
}

// fakeHost makes subordinate ID files ("" = missing) and a PATH with or without the helpers.
func fakeHost(t *testing.T, helpers bool, subuid, subgid string) hostSetup {
	t.Helper()
	dir := t.TempDir()
	h := hostSetup{subUID: filepath.Join(dir, "subuid"), subGID: filepath.Join(dir, "subgid")}
	for path, content := range map[string]string{h.subUID: subuid, h.subGID: subgid} {
		if content == "" {
			continue
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.lookPath = func(file string) (string, error) {
		if helpers {
			return "/usr/bin/" + file, nil
		}
		return "", errors.New("not found")
	}
	return h
}

func TestChildEnv(t *testing.T) {
	t.Parallel()
	p := plan{mode: ModeSingle, reason: "newuidmap not found in PATH", caller: caller{uid: 1001, gid: 1002}}
	in := []string{"HOME=/home/x", envConfigured + "=stale", envStage1 + "=1", envParent + "=9", "_FORGE_USERNS_MODEX=kept", "PATH=/bin"}
	got := childEnv(in, p, 42)
	want := []string{
		"HOME=/home/x", "_FORGE_USERNS_MODEX=kept", "PATH=/bin",
		envConfigured + "=done", envRootlessUID + "=1001", envRootlessGID + "=1002",
		envMode + "=single", envReason + "=newuidmap not found in PATH", envParent + "=42",
	}
	if !slices.Equal(got, want) {
		t.Errorf("childEnv =\n%q\nwant\n%q", got, want)
	}
}

func TestExitErrorMessage(t *testing.T) {
	t.Parallel()
	if got := (&ExitError{Code: 3}).Error(); got != "exit status 3" {
		t.Errorf("ExitError{3}.Error() = %q", got)
	}
	if got := (&ExitError{Code: 127, Message: "x: command not found"}).Error(); got != "x: command not found" {
		t.Errorf("ExitError with message: Error() = %q", got)
	}
}
