package tests

import (
	"path/filepath"
	"testing"
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

// TestPushAgainUploadsNothing pushes an image twice, each time from a new
// forge process, and counts blob uploads in the registry's access log.
func TestPushAgainUploadsNothing(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	id := s.pull(t, "oci-archive:"+filepath.Join(e2e.Fixtures, "busybox.tar"))
	repo := uniqueRepo("push-twice")
	uploads := "/v2/" + repo + "/blobs/uploads/"
	count := func() int {
		return countRequests(registryRequests(t, e2e.RegistryLog), uploads, "POST", "PATCH", "PUT")
	}

	s.must(t, "push", "--tls-verify=false", id, "docker://"+e2e.Registry+"/"+repo+":1")
	first := count()
	if first == 0 {
		t.Fatalf("the first push made no upload to %s: the access log %s does not show transfers", uploads, e2e.RegistryLog)
	}
	for _, tag := range []string{"1", "2"} {
		r := s.run(t, "push", "--tls-verify=false", id, "docker://"+e2e.Registry+"/"+repo+":"+tag)
		if r.code != 0 {
			t.Fatalf("push again: %v", r)
		}
		if n := count() - first; n != 0 {
			t.Errorf("pushing blobs the registry already has uploaded again (%d POST/PATCH/PUT %s...); stderr:\n%s", n, uploads, r.stderr)
			first += n
		}
	}
	verifyImage(t, "docker://"+e2e.Registry+"/"+repo+":2", verifyOpts{})
}
