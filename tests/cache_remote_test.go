package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/forge-build/forge/tests/internal/faultproxy"
)

// TestBudRegistryCache shares step results through a registry: a build in an empty store
// with --cache-from runs no RUN step and makes the same image, and an unreachable cache
// registry only costs a warning.
func TestBudRegistryCache(t *testing.T) {
	t.Parallel()
	needE2E(t)
	dir := budContext(t, "FROM busybox\nRUN echo $((6*7))-ran && echo ran > /ran && echo run >> /counter/runs\nENV X=1\nCOPY f /f\nCMD [\"cat\", \"/ran\"]\n",
		map[string]string{"f": "context file\n"})
	cache := e2e.Registry + "/" + uniqueRepo("cache")
	// The RUN step counts its runs in a host directory bound into it, outside any image
	// and any store: the two runners stand on one machine.
	counter := t.TempDir()
	runs := func() int {
		b, _ := os.ReadFile(filepath.Join(counter, "runs"))
		return strings.Count(string(b), "run\n")
	}

	a := newStore(t)
	first := a.run(t, "bud", "--tls-verify=false", "-v", counter+":/counter", "--cache-to", cache, dir)
	if first.code != 0 || !strings.Contains(first.stdout, "42-ran") || runs() != 1 {
		t.Fatalf("first build (RUN step counted %d runs): %v", runs(), first)
	}
	idA := lastLine(first.stdout)
	checkCacheLinks(t, cache, 3)

	b := newStore(t)
	repoPath := "/v2/" + strings.TrimPrefix(cache, e2e.Registry+"/") + "/manifests/"
	byTag := func() int {
		n := 0
		for _, r := range registryRequests(t, e2e.RegistryLog) {
			if strings.HasPrefix(r.Path, repoPath) && !strings.HasPrefix(r.Path, repoPath+"sha256:") && r.Method == http.MethodGet {
				n++
			}
		}
		return n
	}
	before := byTag()
	second := b.run(t, "bud", "--tls-verify=false", "-v", counter+":/counter", "--cache-from", cache, dir)
	if second.code != 0 {
		t.Fatalf("build with --cache-from: %v", second)
	}
	if n := runs(); n != 1 {
		t.Errorf("the RUN step ran %d times in all, want once (the second runner found it in the cache registry)", n)
	}
	// The first entry listed the others: only its key was looked up by tag.
	if n := byTag() - before; n != 1 {
		t.Errorf("the build with --cache-from looked %d entries up by key, want 1 (the others by the first's list)", n)
	}
	if strings.Contains(second.stdout, "42-ran") {
		t.Errorf("the RUN step ran again although the cache registry has it:\n%s", second.stdout)
	}
	if n := strings.Count(second.stdout, "(from "+cache+")"); n != 3 {
		t.Errorf("%d steps came from the cache registry, want 3 (RUN, COPY, the final config):\n%s", n, second.stdout)
	}
	if idB := lastLine(second.stdout); idB != idA {
		t.Errorf("image %s from the cache registry, want the first build's %s", idB, idA)
	}
	// The list describes the cache repository, not the image: the image of the first
	// step (whose entry lists the other two) is stored, and so pushed, without it.
	firstStep := regexp.MustCompile(`--> Using cache ([0-9a-f]{64}) \(from `).FindStringSubmatch(second.stdout)
	if firstStep == nil {
		t.Fatalf("no step from the cache registry:\n%s", second.stdout)
	}
	layout := "oci:" + filepath.Join(t.TempDir(), "out") + ":img"
	b.must(t, "push", "-q", firstStep[1], layout)
	if raw := skopeo(t, "inspect", "--raw", layout); strings.Contains(raw, "forge.cache.next") {
		t.Errorf("the image stored from a cache entry carries the entry's list: %s", raw)
	}
	// The entries the build went through were pulled as one image; the store's own
	// cache knows each step all the same.
	again := b.run(t, "bud", dir)
	if again.code != 0 || strings.Contains(again.stdout, "42-ran") || strings.Count(again.stdout, "--> Using cache") != 3 {
		t.Errorf("a rebuild in the same store without --cache-from did not take all 3 steps from the local cache: %v", again)
	}

	c := newStore(t)
	third := c.run(t, "bud", "--tls-verify=false", "-v", counter+":/counter", "--cache-from", "127.0.0.1:1/nowhere", dir)
	if third.code != 0 || !strings.Contains(third.stdout, "42-ran") || runs() != 2 {
		t.Fatalf("an unreachable cache registry failed the build, or the RUN step did not run (%d runs in all, want 2): %v", runs(), third)
	}
	if n := strings.Count(third.stderr, "--cache-from 127.0.0.1:1/nowhere"); n != 1 {
		t.Errorf("the unreachable cache registry was reported %d times, want once:\n%s", n, third.stderr)
	}
}

// checkCacheLinks checks that the n entries of a one-stage cache repository each list
// the entries pushed after them (the annotation forge.cache.next): one lists n-1, the
// next n-2, down to the last, which lists none; every listed key is a tag of the
// repository and every digest its manifest's.
func checkCacheLinks(t *testing.T, repo string, n int) {
	t.Helper()
	tags := cacheTags(t, repo)
	if len(tags) != n {
		t.Fatalf("%s has %d entries, want %d", repo, len(tags), n)
	}
	type link struct{ Key, Digest string }
	digests := map[string]string{} // tag -> manifest digest
	lists := map[string][]link{}   // tag -> the entries it lists
	listed := map[int]bool{}
	for _, tag := range tags {
		raw := skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+repo+":"+tag)
		digests[tag] = fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(raw)))
		var m struct{ Annotations map[string]string }
		decodeJSON(t, "cache entry manifest", raw, &m)
		var next []link
		if a := m.Annotations["forge.cache.next"]; a != "" {
			decodeJSON(t, "forge.cache.next", a, &next)
		}
		lists[tag] = next
		listed[len(next)] = true
	}
	for tag, next := range lists {
		for i, l := range next {
			if digests[l.Key] != l.Digest {
				t.Errorf("entry %s lists %s with digest %s; the registry has %q", tag, l.Key, l.Digest, digests[l.Key])
			}
			// In build order: the entry right after this one lists one fewer (lists
			// are cut at 64).
			if got, want := len(lists[l.Key]), min(len(next)-1-i, 64); got != want {
				t.Errorf("entry %s lists %s in place %d, which lists %d entries; want %d", tag, l.Key, i, got, want)
			}
		}
	}
	for i := range n {
		if !listed[i] {
			t.Errorf("no entry of %s lists %d following entries (want one for each of 0..%d)", repo, i, n-1)
		}
	}
}

func lastLine(s string) string {
	l := lines(s)
	if len(l) == 0 {
		return ""
	}
	return l[len(l)-1]
}

// cacheDockerfile has one RUN step (it prints ran-42 when it runs) and a metadata step,
// so a --cache-to build leaves two entries in the cache repository.
const cacheDockerfile = "FROM busybox\nRUN echo ran-$((40+2)) && echo built > /built\nCMD [\"cat\", \"/built\"]\n"

// cacheTags lists the tags of a cache repository: one per step result.
func cacheTags(t *testing.T, repo string) []string {
	t.Helper()
	var tags struct{ Tags []string }
	decodeJSON(t, "skopeo list-tags", skopeo(t, "list-tags", "--tls-verify=false", "docker://"+repo), &tags)
	if len(tags.Tags) == 0 {
		t.Fatalf("the cache repository %s has no entries", repo)
	}
	return tags.Tags
}

// registryRequest sends one request to the plain registry's API and checks its status.
func registryRequest(t *testing.T, method, path, contentType string, body []byte, want int) *http.Response {
	t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = "http://" + e2e.Registry + path
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, u, resp.StatusCode, want, msg)
	}
	return resp
}

// putBlob uploads b to repo (host/name) and returns its digest.
func putBlob(t *testing.T, repo string, b []byte) string {
	t.Helper()
	name := strings.TrimPrefix(repo, e2e.Registry+"/")
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(b))
	resp := registryRequest(t, http.MethodPost, "/v2/"+name+"/blobs/uploads/", "", nil, http.StatusAccepted)
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", d)
	loc.RawQuery = q.Encode()
	registryRequest(t, http.MethodPut, loc.String(), "application/octet-stream", b, http.StatusCreated)
	return d
}

// breakCache damages every entry of a cache repository in one way.
var breakCache = map[string]func(t *testing.T, repo string){
	"garbage config": func(t *testing.T, repo string) {
		putGarbageManifests(t, repo, []byte("this is not an image config"), nil)
	},
	"garbage layer": func(t *testing.T, repo string) {
		cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:` + strings.Repeat("0", 64) + `"]}}`)
		putGarbageManifests(t, repo, cfg, []byte("this is not a tar"))
	},
	"index without images": func(t *testing.T, repo string) {
		name := strings.TrimPrefix(repo, e2e.Registry+"/")
		const mediaType = "application/vnd.oci.image.index.v1+json"
		index := []byte(`{"schemaVersion":2,"mediaType":"` + mediaType + `","manifests":[]}`)
		for _, tag := range cacheTags(t, repo) {
			registryRequest(t, http.MethodPut, "/v2/"+name+"/manifests/"+tag, mediaType, index, http.StatusCreated)
		}
	},
	"missing blob": func(t *testing.T, repo string) {
		name := strings.TrimPrefix(repo, e2e.Registry+"/")
		deleted := map[string]bool{}
		for _, tag := range cacheTags(t, repo) {
			var m manifest
			decodeJSON(t, "skopeo inspect --raw", skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+repo+":"+tag), &m)
			top := m.Layers[len(m.Layers)-1].Digest
			if !deleted[top] {
				registryRequest(t, http.MethodDelete, "/v2/"+name+"/blobs/"+top, "", nil, http.StatusAccepted)
				deleted[top] = true
			}
		}
	},
}

// putGarbageManifests replaces every tag of repo by an OCI manifest of this config and
// layer (none when nil).
func putGarbageManifests(t *testing.T, repo string, config, layer []byte) {
	t.Helper()
	name := strings.TrimPrefix(repo, e2e.Registry+"/")
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int    `json:"size"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{SchemaVersion: 2, MediaType: "application/vnd.oci.image.manifest.v1+json", Layers: []desc{}}
	m.Config = desc{"application/vnd.oci.image.config.v1+json", putBlob(t, repo, config), len(config)}
	if layer != nil {
		m.Layers = append(m.Layers, desc{"application/vnd.oci.image.layer.v1.tar", putBlob(t, repo, layer), len(layer)})
	}
	blob, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range cacheTags(t, repo) {
		registryRequest(t, http.MethodPut, "/v2/"+name+"/manifests/"+tag, m.MediaType, blob, http.StatusCreated)
	}
}

// TestBudRegistryCacheBroken: a cache repository whose entries cannot be used costs one
// warning; the build runs the steps and makes the image it makes without a cache.
func TestBudRegistryCacheBroken(t *testing.T) {
	t.Parallel()
	for name, damage := range breakCache {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := budContext(t, cacheDockerfile, nil)
			cache := e2e.Registry + "/" + uniqueRepo("broken")
			want, _ := reproStore(t).budOK(t, "", "--tls-verify=false", "--cache-to", cache, dir)
			damage(t, cache)
			s := reproStore(t)
			r := s.run(t, "bud", "--tls-verify=false", "--cache-from", cache, dir)
			if r.code != 0 || budRuns(r) != 1 {
				t.Fatalf("a broken cache entry failed the build or skipped the RUN step: %v", r)
			}
			if n := strings.Count(r.stderr, "--cache-from "+cache); n != 1 {
				t.Errorf("the broken cache was reported %d times, want once:\n%s", n, r.stderr)
			}
			if got := lastLine(r.stdout); got != want {
				t.Errorf("image %s, want %s as built before the cache was damaged", got, want)
			}
			img := exportBuilt(t, s, lastLine(r.stdout), r, false)
			img.wantFile(t, "built", "built\n")
		})
	}
}

// TestBudRegistryCacheStaleList: an entry whose list of following entries names
// manifests the registry no longer has (deleted, or never pushed) costs nothing but the
// lookups: those steps are looked up by key, come from the cache all the same, and
// nothing is reported.
func TestBudRegistryCacheStaleList(t *testing.T) {
	t.Parallel()
	dir := budContext(t, "FROM busybox\nRUN echo ran-$((40+2)) && echo built > /built\nRUN echo two > /two\n", nil)
	cache := e2e.Registry + "/" + uniqueRepo("stale")
	want, _ := reproStore(t).budOK(t, "", "--tls-verify=false", "--cache-to", cache, dir)
	name := strings.TrimPrefix(cache, e2e.Registry+"/")
	missing := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("a manifest nobody pushed")))
	stale := 0
	for _, tag := range cacheTags(t, cache) {
		raw := skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+cache+":"+tag)
		var m map[string]any
		decodeJSON(t, "cache entry manifest", raw, &m)
		a, _ := m["annotations"].(map[string]any)
		list, _ := a["forge.cache.next"].(string)
		if list == "" {
			continue
		}
		a["forge.cache.next"] = regexp.MustCompile(`sha256:[0-9a-f]{64}`).ReplaceAllString(list, missing)
		blob, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		registryRequest(t, http.MethodPut, "/v2/"+name+"/manifests/"+tag, "application/vnd.oci.image.manifest.v1+json", blob, http.StatusCreated)
		stale++
	}
	if stale == 0 {
		t.Fatalf("no entry of %s lists the entries after it", cache)
	}
	s := reproStore(t)
	missingPath := "/v2/" + name + "/manifests/" + missing
	before := countRequests(registryRequests(t, e2e.RegistryLog), missingPath, http.MethodGet)
	r := s.run(t, "bud", "--tls-verify=false", "--cache-from", cache, dir)
	if r.code != 0 || budRuns(r) != 0 || strings.Count(r.stdout, "(from "+cache+")") != 2 {
		t.Fatalf("with stale lists in the cache the build did not take both steps from it: %v", r)
	}
	if n := countRequests(registryRequests(t, e2e.RegistryLog), missingPath, http.MethodGet) - before; n == 0 {
		t.Errorf("the build never asked for the listed manifest %s: lists are not read", missing)
	}
	if strings.Contains(r.stderr, "--cache-from") {
		t.Errorf("a stale list was reported:\n%s", r.stderr)
	}
	if got := lastLine(r.stdout); got != want {
		t.Errorf("image %s, want %s as built before", got, want)
	}
}

// TestBudRegistryCacheReadWindow: a build that stops matching the entries' lists (its
// second step changed, so every later key did) reads only a few of the listed entries
// ahead, not all of them.
func TestBudRegistryCacheReadWindow(t *testing.T) {
	t.Parallel()
	const steps = 14
	dockerfile := func(second string) string {
		df := "FROM busybox\nRUN echo one > /one\nRUN echo " + second + " > /two\n"
		for i := 3; i <= steps; i++ {
			df += fmt.Sprintf("RUN echo %d > /f%d\n", i, i)
		}
		return df
	}
	cache := e2e.Registry + "/" + uniqueRepo("window")
	reproStore(t).budOK(t, "", "--tls-verify=false", "--cache-to", cache, budContext(t, dockerfile("two"), nil))
	checkCacheLinks(t, cache, steps)
	byDigest := "/v2/" + strings.TrimPrefix(cache, e2e.Registry+"/") + "/manifests/sha256:"
	before := countRequests(registryRequests(t, e2e.RegistryLog), byDigest, http.MethodGet)
	r := reproStore(t).run(t, "bud", "--tls-verify=false", "--cache-from", cache, budContext(t, dockerfile("changed"), nil))
	if r.code != 0 || strings.Count(r.stdout, "(from "+cache+")") != 1 {
		t.Fatalf("want only the first step from the cache: %v", r)
	}
	// The first entry lists the other 13. The build reads the first entry by digest
	// twice (opening the client for the list, and pulling its layers when the second
	// step misses) and a window of 8 ahead of it: 10, where reading the whole list
	// would be 15.
	if n := countRequests(registryRequests(t, e2e.RegistryLog), byDigest, http.MethodGet) - before; n < 3 || n > 10 {
		t.Errorf("the build read %d cache manifests by digest after its entries stopped matching, want 3 to 10 (it reads ahead, 8 at most)", n)
	}
}

// TestBudRegistryCacheFillRequests: each --cache-to entry holds the layers of the one
// before it, which the build pushed already; a stage of n steps asks the registry about
// its layers about n times, not n² (every layer of every entry, twice each, as a plain
// push would). The entries still make the same image for another runner.
func TestBudRegistryCacheFillRequests(t *testing.T) {
	t.Parallel()
	const steps = 12
	cache := e2e.Registry + "/" + uniqueRepo("fill")
	// Layers of their own: the builds of other tests, which may look for a layer they
	// have in any repository their user pushed it to, never ask this one about them.
	df := "FROM busybox\n"
	for i := 1; i <= steps; i++ {
		df += fmt.Sprintf("RUN echo %s %d > /f%d\n", cache, i, i)
	}
	dir := budContext(t, df, nil)
	blobs := "/v2/" + strings.TrimPrefix(cache, e2e.Registry+"/") + "/blobs/"
	idA, _ := reproStore(t).budOK(t, "", "--tls-verify=false", "--cache-to", cache, dir)
	reqs := registryRequests(t, e2e.RegistryLog)
	if n := countRequests(reqs, blobs, http.MethodHead); n > 2*steps+4 {
		t.Errorf("filling the cache of %d steps asked the registry about %d blobs, want at most %d", steps, n, 2*steps+4)
	}
	if n := countRequests(reqs, blobs+"uploads/", http.MethodPost); n > 2*steps+1 {
		t.Errorf("filling the cache of %d steps started %d uploads, want at most %d (the base layer, and each step's layer and config once)", steps, n, 2*steps+1)
	}
	// Each entry lists the ones after it by the digests the pushes returned, which
	// checkCacheLinks compares with the registry's.
	checkCacheLinks(t, cache, steps)
	// The last entry holds every layer.
	var layers []string
	for _, tag := range cacheTags(t, cache) {
		var m struct{ Layers []struct{ Digest string } }
		decodeJSON(t, "cache entry manifest", skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+cache+":"+tag), &m)
		if len(m.Layers) > len(layers) {
			layers = layers[:0]
			for _, l := range m.Layers {
				layers = append(layers, l.Digest)
			}
		}
	}
	before := len(registryRequests(t, e2e.RegistryLog))
	idB, r := reproStore(t).budOK(t, "", "--tls-verify=false", "--cache-from", cache, dir)
	if n := strings.Count(r.stdout, "(from "+cache+")"); n != steps || idB != idA {
		t.Errorf("a runner with --cache-from took %d of %d steps from the cache and made %s, want %s:\n%s", n, steps, idB, idA, r.stdout)
	}
	// It pulls each step's layer once; the base layer it has from FROM.
	reqs = registryRequests(t, e2e.RegistryLog)[before:]
	for i, d := range layers {
		want := 1
		if i == 0 {
			want = 0
		}
		if n := countRequests(reqs, blobs+d, http.MethodGet); n != want {
			t.Errorf("the runner with --cache-from fetched layer %d (%s) %d times, want %d", i, d, n, want)
		}
	}

	// A runner that changed the last line takes the others from the repository and
	// pushes the last one's entry there: the registry has the layers of the entry it went
	// on from (it found them there), so it is asked about the new layer and config only.
	changed := budContext(t, df+"RUN echo changed > /changed\n", nil)
	before = len(registryRequests(t, e2e.RegistryLog))
	_, r = reproStore(t).budOK(t, "", "--tls-verify=false", "--cache-from", cache, "--cache-to", cache, changed)
	if n := strings.Count(r.stdout, "(from "+cache+")"); n != steps {
		t.Errorf("the changed build took %d steps from the cache, want %d:\n%s", n, steps, r.stdout)
	}
	reqs = registryRequests(t, e2e.RegistryLog)[before:]
	if n := countRequests(reqs, blobs, http.MethodHead); n > 4 {
		t.Errorf("pushing the entry of the one step that ran asked the registry about %d blobs, want at most 4", n)
	}
}

// TestBudRegistryCacheFillRetry: a --cache-to push that fails (as when the registry lost a
// layer an earlier push of the build put there) is made once more, asking the registry
// about every layer, before the cache registry is given up.
func TestBudRegistryCacheFillRetry(t *testing.T) {
	t.Parallel()
	proxy := faultproxy.Start(e2e.Registry, faultproxy.Rule{Method: http.MethodPut, PathContains: "/manifests/", Fault: faultproxy.Status500, Times: 1})
	defer proxy.Close()
	cache := proxy.Addr + "/" + uniqueRepo("retry")
	dir := budContext(t, "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n", nil)
	_, r := newStore(t).budOK(t, "", "--tls-verify=false", "--cache-to", cache, dir)
	if strings.Contains(r.stderr, "--cache-to") {
		t.Errorf("one failed manifest upload made the build give the cache registry up:\n%s", r.stderr)
	}
	if tags := cacheTags(t, strings.Replace(cache, proxy.Addr, e2e.Registry, 1)); len(tags) != 2 {
		t.Errorf("the cache repository has %d entries, want 2: %v", len(tags), tags)
	}
}

// TestBudRegistryCacheTTL: --cache-ttl ignores entries created longer ago than it.
func TestBudRegistryCacheTTL(t *testing.T) {
	t.Parallel()
	dir := budContext(t, cacheDockerfile, nil)
	cache := e2e.Registry + "/" + uniqueRepo("ttl")
	newStore(t).budOK(t, "", "--tls-verify=false", "--cache-to", cache, dir)
	time.Sleep(2 * time.Second)

	_, young := newStore(t).budOK(t, "", "--tls-verify=false", "--cache-from", cache, "--cache-ttl", "1h", dir)
	if budRuns(young) != 0 || strings.Count(young.stdout, "(from "+cache+")") != 2 {
		t.Errorf("--cache-ttl 1h did not use entries made seconds ago:\n%s", young.stdout)
	}
	_, old := newStore(t).budOK(t, "", "--tls-verify=false", "--cache-from", cache, "--cache-ttl", "1s", dir)
	if budRuns(old) != 1 || strings.Contains(old.stdout, "(from ") {
		t.Errorf("--cache-ttl 1s used entries made 2s ago:\n%s", old.stdout)
	}

	// With a fixed timestamp an entry is as old as the timestamp: forge says so.
	fixed := e2e.Registry + "/" + uniqueRepo("ttl-fixed")
	reproStore(t).budOK(t, "", "--tls-verify=false", "--cache-to", fixed, dir)
	_, r := reproStore(t).budOK(t, "", "--tls-verify=false", "--cache-from", fixed, "--cache-ttl", "24h", dir)
	if budRuns(r) != 1 || !strings.Contains(r.stderr, "--cache-ttl 24h0m0s") {
		t.Errorf("a fixed timestamp older than --cache-ttl: want the RUN step run and a warning:\n%s\n%s", r.stdout, r.stderr)
	}
}

// TestBudCacheTTL: --cache-ttl also rules out the store's own step results recorded
// longer ago than it, as Buildah's does; the step runs again and its new result is used
// from then on, also when it is the same image as before (a reproducible build: the
// record is dated anew). --cache-ttl 0 is --no-cache.
func TestBudCacheTTL(t *testing.T) {
	t.Parallel()
	s := reproStore(t)
	dir := budContext(t, cacheDockerfile, nil)
	first, _ := s.budOK(t, "", dir)
	// The second 6s build comes well within 6 s of the first, even on a loaded machine.
	time.Sleep(8 * time.Second)
	for _, tc := range []struct {
		ttl  string
		runs int
	}{{"1h", 0}, {"6s", 1}, {"6s", 0}, {"0", 1}} {
		id, r := s.budOK(t, "", "--cache-ttl", tc.ttl, dir)
		if budRuns(r) != tc.runs || id != first {
			t.Errorf("--cache-ttl %s: the RUN step ran %d times, want %d, and made %s, want %s:\n%s", tc.ttl, budRuns(r), tc.runs, id, first, r.stdout)
		}
	}
	if r := s.run(t, "bud", "--cache-ttl", "-1s", dir); r.code == 0 || !strings.Contains(r.stderr, "--cache-ttl") {
		t.Errorf("a negative --cache-ttl: want an error naming it: %v", r)
	}
}

// TestBudRegistryCacheAuth: a cache repository on a registry that wants credentials
// works after `forge login`, and without them costs one warning.
func TestBudRegistryCacheAuth(t *testing.T) {
	t.Parallel()
	dir := budContext(t, cacheDockerfile, nil)
	cache := e2e.AuthRegistry + "/" + uniqueRepo("auth")
	a := authStore(t)
	a.runStdin(t, authPassword+"\n", "login", "--tls-verify=false", "-u", authUser, "--password-stdin", e2e.AuthRegistry)
	idA, first := a.budOK(t, "", "--tls-verify=false", "--cache-to", cache, dir)
	if strings.Contains(first.stderr, "--cache-to") {
		t.Errorf("pushing to the cache after login failed:\n%s", first.stderr)
	}
	noSecret(t, first)

	b := newStore(t)
	b.env = a.env // the same credentials, another store
	idB, r := b.budOK(t, "", "--tls-verify=false", "--cache-from", cache, dir)
	if idB != idA || budRuns(r) != 0 {
		t.Errorf("with credentials the cache was not used: image %s, want %s:\n%s", idB, idA, r.stdout)
	}

	c := authStore(t) // no login
	_, r = c.budOK(t, "", "--tls-verify=false", "--cache-from", cache, dir)
	if budRuns(r) != 1 || strings.Count(r.stderr, "--cache-from "+cache) != 1 {
		t.Errorf("without credentials: want the RUN step run and one warning:\n%s\n%s", r.stdout, r.stderr)
	}
	noSecret(t, r)
}

// TestBudRegistryCacheMirror: a --cache-from repository on docker.io is read from the
// mirror registries.conf names for it.
func TestBudRegistryCacheMirror(t *testing.T) {
	t.Parallel()
	dir := budContext(t, cacheDockerfile, nil)
	name := uniqueRepo("mirror")
	idA, _ := newStore(t).budOK(t, "", "--tls-verify=false", "--cache-to", e2e.Registry+"/"+name, dir)
	idB, r := newStore(t).budOK(t, "", "--cache-from", "docker.io/"+name, dir)
	if idB != idA || budRuns(r) != 0 || strings.Count(r.stdout, "(from docker.io/"+name+")") != 2 {
		t.Errorf("the cache was not read through the docker.io mirror: image %s, want %s:\n%s\n%s", idB, idA, r.stdout, r.stderr)
	}
}

// A build that fails still leaves the entries of the steps before the failure in the
// --cache-to registry (they are pushed while the build goes on, and waited for), and
// another runner takes those steps from it.
func TestBudRegistryCacheFailedBuild(t *testing.T) {
	t.Parallel()
	needE2E(t)
	steps := "FROM busybox\nRUN echo $((10+1))-ran > /one && cat /one\nRUN echo $((20+2))-ran > /two && cat /two\n"
	failing := budContext(t, steps+"RUN echo giving up && exit 3\n", nil)
	cache := e2e.Registry + "/" + uniqueRepo("cache")

	a := newStore(t)
	first := a.run(t, "bud", "--tls-verify=false", "--cache-to", cache, failing)
	if first.code == 0 || !strings.Contains(first.stdout+first.stderr, "giving up") {
		t.Fatalf("the failing build: %v", first)
	}
	if tags := cacheTags(t, cache); len(tags) != 2 {
		t.Errorf("the cache repository has %d entries after the failed build, want 2 (the RUN steps before the failure): %v", len(tags), tags)
	}

	fixed := budContext(t, steps+"RUN echo $((30+3))-ran > /three && cat /three\n", nil)
	b := newStore(t)
	second := b.run(t, "bud", "--tls-verify=false", "--cache-from", cache, fixed)
	if second.code != 0 {
		t.Fatalf("build with --cache-from: %v", second)
	}
	if strings.Contains(second.stdout, "11-ran") || strings.Contains(second.stdout, "22-ran") || !strings.Contains(second.stdout, "33-ran") {
		t.Errorf("want the first two RUN steps from the cache registry and the third run:\n%s", second.stdout)
	}
}
