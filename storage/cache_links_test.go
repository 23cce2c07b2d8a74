package storage

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

const ociManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
	`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` +
	`aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":2},"layers":[],` +
	`"annotations":{"org.opencontainers.image.title":"keep me"}}`

func link(i int) CacheLink {
	return CacheLink{Key: fmt.Sprintf("%064x", i), Digest: digest.FromString(fmt.Sprint(i))}
}

// A list written by withAnnotation reads back as written; one that is too long is cut, and
// one with a link that is not a key and a digest is no list at all.
func TestCacheLinks(t *testing.T) {
	t.Parallel()
	var many []CacheLink
	for i := range maxCacheLinks + 5 {
		many = append(many, link(i))
	}
	bad := []CacheLink{link(1), {Key: "../../etc", Digest: link(2).Digest}}
	badDigest := []CacheLink{link(1), {Key: link(2).Key, Digest: "sha256:nothex"}}
	for name, c := range map[string]struct {
		links []CacheLink
		want  int
	}{
		"two":          {[]CacheLink{link(1), link(2)}, 2},
		"too many":     {many, maxCacheLinks},
		"bad key":      {bad, 0},
		"bad digest":   {badDigest, 0},
		"empty string": {nil, 0},
	} {
		blob, err := withAnnotation([]byte(ociManifest), CacheLinkAnnotation, c.links)
		if err != nil {
			t.Fatal(err)
		}
		got := cacheLinks(blob)
		if len(got) != c.want {
			t.Errorf("%s: %d links read, want %d", name, len(got), c.want)
			continue
		}
		for i := range got {
			if got[i] != c.links[i] {
				t.Errorf("%s: link %d is %v, want %v", name, i, got[i], c.links[i])
			}
		}
	}
	if got := cacheLinks([]byte(ociManifest)); got != nil {
		t.Errorf("a manifest without the annotation gave links %v", got)
	}
}

// The store keeps a cache entry's manifest without its list, and with its other
// annotations; any other blob stays byte for byte.
func TestWithoutCacheLinks(t *testing.T) {
	t.Parallel()
	blob, err := withAnnotation([]byte(ociManifest), CacheLinkAnnotation, []CacheLink{link(1)})
	if err != nil {
		t.Fatal(err)
	}
	out := withoutCacheLinks(blob)
	if strings.Contains(string(out), CacheLinkAnnotation) {
		t.Errorf("the list is still in %s", out)
	}
	var m struct {
		Annotations map[string]string
		Config      struct{ Digest string }
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if m.Annotations["org.opencontainers.image.title"] != "keep me" || !strings.HasPrefix(m.Config.Digest, "sha256:aaaa") {
		t.Errorf("the rest of the manifest changed: %s", out)
	}
	for _, same := range []string{ociManifest, `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}`, "not json"} {
		if got := string(withoutCacheLinks([]byte(same))); got != same {
			t.Errorf("withoutCacheLinks(%s) = %s, want it unchanged", same, got)
		}
	}
}
