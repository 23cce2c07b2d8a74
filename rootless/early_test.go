package rootless

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEarlyEnvNames: early.c gives the process it starts in the namespace the variables
// Enter's child gets, under the same names.
func TestEarlyEnvNames(t *testing.T) {
	src, err := os.ReadFile("early.c")
	if err != nil {
		t.Fatal(err)
	}
	defs := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^#define (ENV_\w+) "([^"]+)"`).FindAllSubmatch(src, -1) {
		defs[string(m[1])] = string(m[2])
	}
	want := map[string]string{
		"ENV_CONFIGURED": envConfigured, "ENV_ROOTLESS_UID": envRootlessUID, "ENV_ROOTLESS_GID": envRootlessGID,
		"ENV_MODE": envMode, "ENV_REASON": envReason, "ENV_STAGE1": envStage1, "ENV_PARENT": envParent,
	}
	for name, value := range want {
		if defs[name] != value {
			t.Errorf("early.c: %s is %q, want %q", name, defs[name], value)
		}
	}
	// The values early.c gives the variables are the ones childEnv gives in full mode.
	child := map[string]string{}
	for _, kv := range childEnv(nil, plan{mode: ModeFull}, 1) {
		k, v, _ := strings.Cut(kv, "=")
		child[k] = v
	}
	for _, m := range regexp.MustCompile(`"%s=(\w+)", (ENV_\w+)\)`).FindAllSubmatch(src, -1) {
		name, value := defs[string(m[2])], string(m[1])
		if child[name] != value {
			t.Errorf("early.c sets %s=%s; Enter's child gets %q", name, value, child[name])
		}
		delete(child, name)
	}
	for _, name := range []string{envConfigured, envMode} {
		if _, left := child[name]; left {
			t.Errorf("early.c does not set %s to a fixed value", name)
		}
	}
	// The reason full mode gives, as early.c formats it with its path and the user's name.
	m := regexp.MustCompile(`"%s=([^"]+)", ENV_REASON, SUBUID, who\)`).FindSubmatch(src)
	if m == nil {
		t.Fatal("early.c: no format for ENV_REASON")
	}
	dir := t.TempDir()
	h := hostSetup{subUID: dir + "/subuid", subGID: dir + "/subgid", lookPath: func(f string) (string, error) { return "/bin/" + f, nil }}
	for _, path := range []string{h.subUID, h.subGID} {
		if err := os.WriteFile(path, []byte("NAME:100000:65536\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := choosePlan(h, caller{uid: 1000, gid: 1000, name: "NAME"})
	if want := fmt.Sprintf(string(m[1]), h.subUID, "NAME"); p.mode != ModeFull || p.reason != want {
		t.Errorf("Go's plan: mode %s, reason %q; early.c would say %q", p.mode, p.reason, want)
	}
}

// TestEarlyPlanMatchesGo builds early.c's planning on its own (FORGE_EARLY_TEST gives it a
// main) and holds it against choosePlan on awkward /etc/passwd and /etc/subuid files:
// where early.c would enter the namespace itself, it must be in full mode with the name
// and ranges the Go code finds; where it is unsure, it must leave the case to Go.
func TestEarlyPlanMatchesGo(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "early-test")
	if out, err := exec.Command(cc, "-DFORGE_EARLY_TEST", "-Wno-unused-function", "-o", bin, "early.c").CombinedOutput(); err != nil {
		t.Fatalf("build early.c: %v\n%s", err, out)
	}
	helpers := filepath.Join(dir, "helpers") // for early.c's PATH lookup
	if err := os.Mkdir(helpers, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"newuidmap", "newgidmap"} {
		if err := os.WriteFile(filepath.Join(helpers, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const me = "me:x:1000:1000::/home/me:/bin/sh\n"
	tests := []struct {
		name           string
		passwd, subids string
		goName         string // the name Go's os/user gives uid 1000 from passwd
		early          bool   // early.c takes the case itself
	}{
		{"plain", me, "me:100000:65536\n", "me", true},
		{"the first match wins", me, "1000:200000:10\nme:100000:65536\n", "me", true},
		{"comments, blank lines, spaces, CRLF", "# x\n\n  " + strings.TrimSuffix(me, "\n") + " \r\n",
			"# me:1:2\n\n   me:100000:65536  \r\n", "me", true},
		{"malformed ranges are skipped", me, "me:1:0\nme:4294967295:2\nme:+5:10\nme:a:1\nme:1:2:3\n:1:2\nme:100000:65536\n", "me", true},
		{"NIS and malformed passwd lines are skipped",
			"+me:x:1000:1000::/h:/bin/sh\nme:x:1000\nyou:x:1000:g::/h:/bin/sh\n" + me, "me:5:6\n", "me", true},
		{"the uid's range without a name", "other:x:1:1::/h:/bin/sh\n" + me, "1000:7:8\n", "me", true},
		{"no passwd entry: Go takes $USER", "other:x:1:1::/h:/bin/sh\n", "1000:100000:65536\n", "", false},
		{"no range", me, "other:1:2\n", "me", false},
		{"a space Go trims and C does not know", me, "me:100000:65536\u00a0\n", "me", false},
		{"a line too long for Go", me, strings.Repeat("x", 70000) + "\nme:1:2\n", "me", false},
	}
	for _, tt := range tests {
		passwd, subids := filepath.Join(dir, "passwd"), filepath.Join(dir, "subids")
		if err := os.WriteFile(passwd, []byte(tt.passwd), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(subids, []byte(tt.subids), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, passwd, subids, subids, "1000", "1000")
		cmd.Env = []string{"PATH=" + helpers}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: early-test: %v", tt.name, err)
		}
		got := strings.TrimSpace(string(out))
		h := hostSetup{subUID: subids, subGID: subids, lookPath: func(f string) (string, error) { return filepath.Join(helpers, f), nil }}
		p := choosePlan(h, caller{uid: 1000, gid: 1000, name: tt.goName})
		goSays := fmt.Sprintf("full %s %d %d %d %d", tt.goName, p.uidRange.Start, p.uidRange.Count, p.gidRange.Start, p.gidRange.Count)
		switch {
		case got == "go" && tt.early:
			t.Errorf("%s: early.c leaves it to Go; want it to enter as Go would: %s", tt.name, goSays)
		case got != "go" && (!tt.early || p.mode != ModeFull || got != goSays):
			t.Errorf("%s: early.c says %q; Go says mode %s, %q", tt.name, got, p.mode, goSays)
		}
	}
}
