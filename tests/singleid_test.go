package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const singleIDWarning = "only your own UID is mapped"

// pathWithoutIDMappers returns a PATH of one directory with a link to every
// program on $PATH except newuidmap and newgidmap.
func pathWithoutIDMappers(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	seen := map[string]bool{"newuidmap": true, "newgidmap": true}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if seen[e.Name()] {
				continue
			}
			seen[e.Name()] = true
			if err := os.Symlink(filepath.Join(d, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// TestSingleIDFallback hides newuidmap and newgidmap: forge must map only the
// caller's ID, warn once per invocation, and still pull and push busybox.
func TestSingleIDFallback(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	s.env["PATH"] = pathWithoutIDMappers(t)
	warnedOnce := func(r result) {
		t.Helper()
		if n := strings.Count(r.stderr, singleIDWarning); n != 1 || strings.Contains(r.stdout, singleIDWarning) {
			t.Errorf("forge %s: want the warning %q once on stderr, got it %d times:\n%s", strings.Join(r.args, " "), singleIDWarning, n, r.stderr)
		}
	}

	r := s.run(t, "info")
	if r.code != 0 {
		t.Fatalf("info: %v", r)
	}
	warnedOnce(r)
	var info struct{ IDMap struct{ Mode, Reason string } }
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info.IDMap.Mode != "single" || info.IDMap.Reason == "" {
		t.Errorf("info: idmap %+v (err %v), want mode single and a reason", info.IDMap, err)
	}

	r = s.run(t, "pull", "busybox")
	if r.code != 0 {
		t.Fatalf("pull with a single-ID map: %v", r)
	}
	warnedOnce(r)
	id := onlyImageID(t, r)

	ref := e2e.Registry + "/" + uniqueRepo("single-id") + ":1"
	r = s.run(t, "push", "--tls-verify=false", "busybox", "docker://"+ref)
	if r.code != 0 {
		t.Fatalf("push with a single-ID map: %v", r)
	}
	warnedOnce(r)
	// With one ID mapped, uid 1000 cannot be kept (ignore_chown_errors): contents only.
	verifyImage(t, "docker://"+ref, verifyOpts{skipOwners: true})

	if entries := s.images(t); len(entries) != 1 || entries[0].ID != id {
		t.Errorf("images after pull and push: %+v, want %s", entries, id)
	}
}
