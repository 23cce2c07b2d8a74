package tests

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
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

// TestPullManifestList pulls a tag that names an image index of two platforms: forge
// takes the entry for this machine's architecture, and records the index's digest with
// the image, so a pull by the index's digest with --policy missing finds it without
// asking the registry.
func TestPullManifestList(t *testing.T) {
	t.Parallel()
	needE2E(t)
	repo := uniqueRepo("index")
	for tag, src := range map[string]string{"busybox": "library/busybox:latest", "debian": "library/debian:bookworm-slim"} {
		skopeo(t, "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false",
			"docker://"+e2e.Registry+"/"+src, "docker://"+e2e.Registry+"/"+repo+":"+tag)
	}
	entry := func(tag, arch string) map[string]any {
		raw := skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+e2e.Registry+"/"+repo+":"+tag)
		var m struct {
			MediaType string `json:"mediaType"`
		}
		decodeJSON(t, "skopeo inspect --raw", raw, &m)
		return map[string]any{"mediaType": m.MediaType, "digest": digestOf(raw), "size": len(raw),
			"platform": map[string]string{"os": "linux", "architecture": arch}}
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	const mediaType = "application/vnd.oci.image.index.v1+json"
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaType,
		"manifests": []any{entry("debian", other), entry("busybox", runtime.GOARCH)}})
	if err != nil {
		t.Fatal(err)
	}
	registryRequest(t, http.MethodPut, "/v2/"+repo+"/manifests/multi", mediaType, index, http.StatusCreated)
	want := wantFixture(t)

	s := newStore(t)
	id := s.pull(t, "--tls-verify=false", e2e.Registry+"/"+repo+":multi")
	if "sha256:"+id != want.ConfigDigest {
		t.Fatalf("pulled image %s, want busybox's %s (the %s entry of the index)", id, want.ConfigDigest, runtime.GOARCH)
	}
	ctr := s.workingContainer(t, "-q", id)
	if r := s.run(t, "run", ctr, "--", "sh", "-c", "test -x /bin/busybox"); r.code != 0 {
		t.Errorf("run in the pulled image: %v", r)
	}
	before := countRequests(registryRequests(t, e2e.RegistryLog), "/v2/"+repo+"/", "GET", "HEAD")
	r := s.run(t, "pull", "--policy", "missing", "--tls-verify=false", e2e.Registry+"/"+repo+"@"+digestOf(index))
	if r.code != 0 || onlyImageID(t, r) != id {
		t.Fatalf("pull by the index's digest: %v, want image %s", r, id)
	}
	if n := countRequests(registryRequests(t, e2e.RegistryLog), "/v2/"+repo+"/", "GET", "HEAD") - before; n != 0 {
		t.Errorf("the pull by the index's digest made %d requests; the store has the image", n)
	}
}

// digestOf is the sha256 digest of data, as a registry names it.
func digestOf[T string | []byte](data T) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(data)))
}
