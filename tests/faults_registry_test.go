package tests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forge-build/forge/tests/internal/faultproxy"
)

// fastRetry keeps the retries of these tests short; the backoff still doubles.
var fastRetry = []string{"--tls-verify=false", "--retry-delay", "100ms"}

// TestRegistryFaultsRetried: a pull through a registry that answers 503 or 500, resets
// connections or stalls for its first requests succeeds by retrying, and says so.
func TestRegistryFaultsRetried(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		rules []faultproxy.Rule
		args  []string
	}{
		{"503 on every request at first", []faultproxy.Rule{{Fault: faultproxy.Status503, Times: 2}}, nil},
		{"500 on a blob", []faultproxy.Rule{{Method: "GET", PathContains: "/blobs/", Fault: faultproxy.Status500, Times: 1}}, nil},
		{"reset connections", []faultproxy.Rule{{PathContains: "/manifests/", Fault: faultproxy.Reset, Times: 3}}, nil},
		{"stalled blob", []faultproxy.Rule{{Method: "GET", PathContains: "/blobs/", Fault: faultproxy.Stall, Times: 1}}, []string{"--stall-timeout", "1s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			proxy := faultproxy.Start(e2e.Registry, c.rules...)
			defer proxy.Close()
			args := append(append(append([]string{"pull"}, fastRetry...), c.args...), proxy.Addr+"/library/busybox:latest")
			r := s.run(t, args...)
			if r.code != 0 {
				t.Fatalf("want the pull to succeed by retrying, got %v", r)
			}
			onlyImageID(t, r)
			if _, broken := proxy.Count("", ""); broken == 0 {
				t.Fatalf("the proxy broke no request; requests: %v", proxy.Requests())
			}
			if !strings.Contains(r.stderr, "Retrying in") {
				t.Errorf("the pull did not say that it retried:\n%s", r.stderr)
			}
		})
	}
}

// TestRegistryFaultsGiveUp: a registry that keeps failing makes a pull or a push give up
// after --retry more attempts, with one error line naming the registry and the count,
// and leaves the store as it was.
func TestRegistryFaultsGiveUp(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	id := s.pull(t, "oci-archive:"+filepath.Join(e2e.Fixtures, "variant.tar"))
	proxy := faultproxy.Start(e2e.Registry, faultproxy.Rule{Fault: faultproxy.Status503, Times: 1000})
	defer proxy.Close()
	for _, c := range []struct {
		name string
		args []string
	}{
		{"pull", []string{"pull", proxy.Addr + "/library/busybox:latest"}},
		{"push", []string{"push", id, proxy.Addr + "/" + uniqueRepo("giveup") + ":1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := summary(s.images(t))
			seenBefore, _ := proxy.Count("", "")
			start := time.Now()
			r := s.run(t, append([]string{c.name, "--retry", "2", "--retry-delay", "200ms", "--tls-verify=false"}, c.args[1:]...)...)
			line := oneLineError(t, r, "503")
			for _, want := range []string{proxy.Addr, "3 attempts"} {
				if !strings.Contains(line, want) {
					t.Errorf("error line does not name %q: %s", want, line)
				}
			}
			// Two retries, after 200 ms and 400 ms.
			if took := time.Since(start); took < 600*time.Millisecond {
				t.Errorf("gave up after %v: the retries did not wait 200 ms, then 400 ms", took)
			}
			if seen, _ := proxy.Count("", ""); seen-seenBefore < 3 {
				t.Errorf("the registry saw %d requests, want at least 3 (one per attempt)", seen-seenBefore)
			}
			if after := summary(s.images(t)); !equalStrings(before, after) {
				t.Errorf("the store changed:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// TestRegistryPushResumes: a push whose manifest upload fails is retried without
// uploading its blobs again, and so is a second push after one that gave up.
func TestRegistryPushResumes(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	id := s.pull(t, "oci-archive:"+filepath.Join(e2e.Fixtures, "variant.tar"))
	proxy := faultproxy.Start(e2e.Registry,
		faultproxy.Rule{Method: "PUT", PathContains: "/manifests/", Fault: faultproxy.Status503, Times: 2})
	defer proxy.Close()
	uploads := func() int { n, _ := proxy.Count("POST", "/blobs/uploads/"); return n }

	// One attempt: the blobs go up, the manifest does not.
	repo := uniqueRepo("resume")
	oneLineError(t, s.run(t, "push", "--retry", "0", "--tls-verify=false", id, proxy.Addr+"/"+repo+":1"), "503")
	first := uploads()
	if first == 0 {
		t.Fatalf("the failed push uploaded no blob; requests: %v", proxy.Requests())
	}
	// The next push meets one more 503 on the manifest, retries, and uploads no blob again.
	r := s.run(t, "push", "--tls-verify=false", "--retry-delay", "100ms", id, proxy.Addr+"/"+repo+":1")
	if r.code != 0 {
		t.Fatalf("want the resumed push to succeed, got %v", r)
	}
	if !strings.Contains(r.stderr, "Retrying in") {
		t.Errorf("the push did not say that it retried:\n%s", r.stderr)
	}
	if again := uploads() - first; again != 0 {
		t.Errorf("the resumed push uploaded %d blobs again, want 0 (the registry has them); requests: %v", again, proxy.Requests())
	}
	if m, _, _ := skopeoInspect(t, "docker://"+e2e.Registry+"/"+repo+":1"); len(m.Layers) == 0 {
		t.Errorf("the registry's manifest for %s:1 lists no layer", repo)
	}
}
