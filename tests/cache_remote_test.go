package tests

import (
	"strings"
	"testing"
)

// TestBudRegistryCache shares step results through a registry: a build in an empty store
// with --cache-from runs no RUN step and makes the same image, and an unreachable cache
// registry only costs a warning.
func TestBudRegistryCache(t *testing.T) {
	t.Parallel()
	needE2E(t)
	dir := budContext(t, "FROM busybox\nRUN echo $((6*7))-ran && echo ran > /ran\nENV X=1\nCOPY f /f\nCMD [\"cat\", \"/ran\"]\n",
		map[string]string{"f": "context file\n"})
	cache := e2e.Registry + "/" + uniqueRepo("cache")

	a := newStore(t)
	first := a.run(t, "bud", "--tls-verify=false", "--cache-to", cache, dir)
	if first.code != 0 || !strings.Contains(first.stdout, "42-ran") {
		t.Fatalf("first build: %v", first)
	}
	idA := lastLine(first.stdout)

	b := newStore(t)
	second := b.run(t, "bud", "--tls-verify=false", "--cache-from", cache, dir)
	if second.code != 0 {
		t.Fatalf("build with --cache-from: %v", second)
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

	c := newStore(t)
	third := c.run(t, "bud", "--tls-verify=false", "--cache-from", "127.0.0.1:1/nowhere", dir)
	if third.code != 0 || !strings.Contains(third.stdout, "42-ran") {
		t.Fatalf("an unreachable cache registry failed the build: %v", third)
	}
	if n := strings.Count(third.stderr, "--cache-from 127.0.0.1:1/nowhere"); n != 1 {
		t.Errorf("the unreachable cache registry was reported %d times, want once:\n%s", n, third.stderr)
	}
}

func lastLine(s string) string {
	l := lines(s)
	if len(l) == 0 {
		return ""
	}
	return l[len(l)-1]
}
