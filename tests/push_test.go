package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	ociManifestType     = "application/vnd.oci.image.manifest.v1+json"
	docker2ManifestType = "application/vnd.docker.distribution.manifest.v2+json"
)

// TestPushDestinations pushes one image to every kind of destination and has
// skopeo and umoci read each back; then pulls each back into a fresh store.
func TestPushDestinations(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	want := wantFixture(t)
	id := s.pull(t, "oci-archive:"+filepath.Join(e2e.Fixtures, "busybox.tar"))
	s.must(t, "tag", id, "localhost/pushme:1")
	dir := t.TempDir()
	repo := e2e.Registry + "/" + uniqueRepo("push")
	cases := []struct {
		name       string
		args       []string // flags, image, destination
		ref        string   // what skopeo reads back
		mediaType  string   // the manifest type it must have, if any
		sameDigest bool     // the pushed manifest is stored as pushed: --digestfile names it
	}{
		{"registry", []string{"--format", "oci", "localhost/pushme:1", "docker://" + repo + ":1"}, "docker://" + repo + ":1", ociManifestType, true},
		{"registry without transport", []string{"localhost/pushme:1", repo + ":2"}, "docker://" + repo + ":2", "", true},
		{"registry docker format", []string{"--format", "docker", "localhost/pushme:1", "docker://" + repo + ":3"}, "docker://" + repo + ":3", docker2ManifestType, true},
		{"oci", []string{"localhost/pushme:1", "oci:" + dir + "/layout:pushme"}, "oci:" + dir + "/layout:pushme", "", true},
		{"oci-archive", []string{"localhost/pushme:1", "oci-archive:" + dir + "/oci.tar"}, "oci-archive:" + dir + "/oci.tar", "", true},
		{"docker-archive", []string{"localhost/pushme:1", "docker-archive:" + dir + "/docker.tar:pushme:1"}, "docker-archive:" + dir + "/docker.tar", docker2ManifestType, false},
		{"dir", []string{"localhost/pushme:1", "dir:" + dir + "/dir"}, "dir:" + dir + "/dir", "", true},
	}
	fresh := newStore(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			digestFile := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".digest")
			r := s.run(t, append([]string{"push", "--digestfile", digestFile}, c.args...)...)
			if r.code != 0 {
				t.Fatalf("push: %v", r)
			}
			m, digest := verifyImage(t, c.ref, verifyOpts{})
			if c.mediaType != "" && m.MediaType != c.mediaType {
				t.Errorf("manifest type %q, want %q", m.MediaType, c.mediaType)
			}
			written, err := os.ReadFile(digestFile)
			if err != nil {
				t.Errorf("--digestfile: %v", err)
			} else if c.sameDigest && strings.TrimSpace(string(written)) != digest {
				t.Errorf("--digestfile holds %q, skopeo reads the manifest digest %s", written, digest)
			}
			// Pulled back, an OCI image is the same image (ID = config digest).
			r = fresh.run(t, "pull", c.ref)
			if r.code != 0 {
				t.Fatalf("pull back %s: %v", c.ref, r)
			}
			if got := onlyImageID(t, r); c.mediaType != docker2ManifestType && "sha256:"+got != want.ConfigDigest {
				t.Errorf("pulled back as %s, want the original image %s", got, want.ConfigDigest)
			}
		})
	}

	t.Run("no destination", func(t *testing.T) {
		name := repo + ":implicit"
		s.must(t, "tag", id, name)
		r := s.run(t, "push", name)
		if r.code != 0 {
			t.Fatalf("push without a destination: %v", r)
		}
		verifyImage(t, "docker://"+name, verifyOpts{})
	})
}
