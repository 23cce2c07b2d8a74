package tests

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// TestConcurrentBuilds: 8 builds of different Dockerfiles at once on one store, while
// `forge rmi` removes another image (and a pull stores it again) and `forge images` lists
// the store, in loops: every command succeeds, and every image holds what its Dockerfile
// put there.
func TestConcurrentBuilds(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	s.pull(t, "-q", "busybox")
	variantArchive := filepath.Join(e2e.Fixtures, "variant.tar")
	variant := s.pull(t, "-q", "oci-archive:"+variantArchive)
	const builds = 8
	// Plain goroutines, not parallel subtests: -test.parallel would run only a few at once.
	var running, loops sync.WaitGroup
	done := make(chan struct{})
	tags := make([]string, builds)
	for i := range builds {
		tags[i] = uniqueRepo(fmt.Sprintf("concurrent-%d", i))
		df := fmt.Sprintf("FROM busybox\nRUN echo build %d > /built\nCOPY f /f\nRUN cat /built /f > /both\n", i)
		dir := budContext(t, df, map[string]string{"f": fmt.Sprintf("file %d\n", i)})
		running.Go(func() { expectOK(t, s, "bud", "-q", "-t", tags[i], dir) })
	}
	loops.Go(func() {
		// Each round stores an image and deletes it again, layers included.
		for !closed(done) {
			expectOK(t, s, "rmi", variant)
			expectOK(t, s, "pull", "-q", "oci-archive:"+variantArchive)
		}
	})
	loops.Go(func() {
		for !closed(done) {
			expectOK(t, s, "images", "--json")
			expectOK(t, s, "containers", "--all", "--json")
		}
	})
	running.Wait()
	close(done)
	loops.Wait()
	if t.Failed() {
		return
	}
	var names []string
	for _, e := range s.images(t) {
		names = append(names, e.Names...)
	}
	for i, tag := range tags {
		if !slices.Contains(names, "localhost/"+tag+":latest") {
			t.Errorf("%s is not listed after the builds; images: %q", tag, names)
			continue
		}
		ctr := s.workingContainer(t, "--pull", "never", "localhost/"+tag)
		want := fmt.Sprintf("build %d\nfile %d\n", i, i)
		if got := s.must(t, "run", ctr, "--", "cat", "/both"); got != want {
			t.Errorf("%s holds %q, want %q", tag, got, want)
		}
		s.must(t, "rm", ctr)
	}
	if names := s.containerNames(t); len(names) != 0 {
		t.Errorf("containers left behind: %q", names)
	}
}

// expectOK runs forge and reports (without stopping the test, so it may run in any
// goroutine) a failure.
func expectOK(t *testing.T, s *store, args ...string) {
	if r := s.run(t, args...); r.code != 0 {
		t.Errorf("want exit 0, got %v", r)
	}
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
