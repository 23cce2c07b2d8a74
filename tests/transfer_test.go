package tests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecondPullTransfersNoLayer pulls the same image twice and counts, in the
// registry's access log, the GETs of its layer blob.
func TestSecondPullTransfersNoLayer(t *testing.T) {
	t.Parallel()
	needE2E(t)
	repo := uniqueRepo("pull-twice") // a repository of its own: other tests' requests do not count
	ref := e2e.Registry + "/" + repo + ":1"
	skopeo(t, "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://"+e2e.Registry+"/library/busybox:latest", "docker://"+ref)
	m, _, _ := skopeoInspect(t, "docker://"+ref)
	layerGET := "/v2/" + repo + "/blobs/" + m.Layers[0].Digest

	s := newStore(t)
	id := s.pull(t, ref)
	first := countRequests(registryRequests(t, e2e.RegistryLog), layerGET, "GET")
	if first == 0 {
		t.Fatalf("the first pull made no GET %s: the access log %s does not show transfers", layerGET, e2e.RegistryLog)
	}
	r := s.run(t, "pull", ref)
	if r.code != 0 {
		t.Fatalf("second pull: %v", r)
	}
	if again := onlyImageID(t, r); again != id {
		t.Errorf("second pull printed %s, the first %s", again, id)
	}
	if n := countRequests(registryRequests(t, e2e.RegistryLog), layerGET, "GET") - first; n != 0 {
		t.Errorf("the second pull downloaded the layer again (%d GET %s); stderr:\n%s", n, layerGET, r.stderr)
	}
}

// waitForRequests waits (a few seconds at most) until the access log shows n requests.
func waitForRequests(t *testing.T, logPath, method, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if countRequests(registryRequests(t, logPath), path, method) >= n {
			return
		}
	}
	t.Fatalf("the registry's log never showed %d × %s %s", n, method, path)
}

// TestPushAgainUploadsNothing pushes an image twice, each time from a new
// forge process, and counts blob uploads in the registry's access log.
func TestPushAgainUploadsNothing(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	id := s.pull(t, "oci-archive:"+filepath.Join(e2e.Fixtures, "busybox.tar"))
	repo := uniqueRepo("push-twice")
	uploads := "/v2/" + repo + "/blobs/uploads/"
	// Data uploads only: a cross-repository mount (POST ...?mount=DIGEST&from=REPO, which
	// other tests' pushes of the same layer make possible) transfers nothing.
	count := func() int {
		n := 0
		for _, r := range registryRequests(t, e2e.RegistryLog) {
			if strings.HasPrefix(r.Path, uploads) && !strings.Contains(r.Path, "mount=") &&
				(r.Method == "POST" || r.Method == "PATCH" || r.Method == "PUT") {
				n++
			}
		}
		return n
	}

	s.must(t, "push", "--tls-verify=false", id, "docker://"+e2e.Registry+"/"+repo+":1")
	// The registry logs a request after answering it: wait for the push's last request
	// (its manifest) so that no late line of this push is counted against the next one.
	manifestPuts := 1
	waitForRequests(t, e2e.RegistryLog, "PUT", "/v2/"+repo+"/manifests/", manifestPuts)
	first := count()
	if all := countRequests(registryRequests(t, e2e.RegistryLog), uploads, "POST", "PATCH", "PUT"); all == 0 {
		t.Fatalf("the first push made no upload or mount to %s: the access log %s does not show transfers", uploads, e2e.RegistryLog)
	}
	for _, tag := range []string{"1", "2"} {
		r := s.run(t, "push", "--tls-verify=false", id, "docker://"+e2e.Registry+"/"+repo+":"+tag)
		if r.code != 0 {
			t.Fatalf("push again: %v", r)
		}
		manifestPuts++
		waitForRequests(t, e2e.RegistryLog, "PUT", "/v2/"+repo+"/manifests/", manifestPuts)
		if n := count() - first; n != 0 {
			t.Errorf("pushing blobs the registry already has uploaded again (%d POST/PATCH/PUT %s...); stderr:\n%s", n, uploads, r.stderr)
			first += n
		}
	}
	verifyImage(t, "docker://"+e2e.Registry+"/"+repo+":2", verifyOpts{})
}
