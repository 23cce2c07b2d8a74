package rootless

import (
	"fmt"
	"os"
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
