package tests

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// killDockerfile has a RUN, a COPY of a few MB and a RUN that reads it; ARG N makes each
// round's steps new, so that a kill meets real work rather than the cache.
const killDockerfile = `FROM busybox
ARG N
RUN echo "round $N" > /round
COPY big /big
RUN cat /round /big | md5sum > /sum
`

// TestKillDuringBuild SIGKILLs forge at a random moment of a build (pull of the base,
// RUN, COPY, commit), a push or a pull, again and again: afterwards `forge images` and
// `forge containers` work, no mount is left, the same command run again succeeds and a
// build reuses every step the killed one had committed, and every image in the store
// reads back in full. 10 kills; FORGE_STRESS=1 makes it 100.
func TestKillDuringBuild(t *testing.T) {
	t.Parallel()
	kills := 10
	if os.Getenv("FORGE_STRESS") == "1" {
		kills = 100
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("FORGE_STRESS_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("%d kills, FORGE_STRESS_SEED=%d", kills, seed)
	rng := mathrand.New(mathrand.NewPCG(seed, 0))
	s := newStore(t)
	big := make([]byte, 4<<20)
	_, _ = rand.Read(big)
	dir := budContext(t, killDockerfile, map[string]string{"big": string(big)})
	image := "localhost/" + uniqueRepo("kill")
	debian := e2e.Registry + "/library/debian:bookworm-slim"
	k := &killer{t: t, s: s, rng: rng}

	// Uninterrupted runs give each phase's length; the kills fall within it.
	budTime := k.timed(func() { s.budOK(t, "", "--build-arg", "N=calibration", "-t", image, dir) })
	pushTime := k.timed(func() { s.must(t, "push", "-q", "--tls-verify=false", image, e2e.Registry+"/"+uniqueRepo("kill")+":1") })
	pullTime := k.timed(func() { s.pull(t, "-q", "--tls-verify=false", debian) })
	s.must(t, "rmi", debian)
	t.Logf("uninterrupted: bud %v, push %v, pull %v", budTime, pushTime, pullTime)

	for round := range kills {
		switch round % 3 {
		case 0, 1: // builds are where most can go wrong: two rounds in three
			args := []string{"bud", "--build-arg", "N=" + strconv.Itoa(round), "-t", image, dir}
			killed := k.killAt(budTime, args...)
			k.check()
			again := k.mustRun(args...)
			for step, committed := range committedSteps(killed) {
				if hit := budStepHits(again)[step]; committed && !hit {
					t.Errorf("round %d: step %q was committed before the kill but the next build did not reuse it:\n%s", round, step, again.stdout)
				}
			}
		case 2:
			if round%2 == 0 {
				dest := e2e.Registry + "/" + uniqueRepo("kill") + ":1"
				k.killAt(pushTime, "push", "-q", "--tls-verify=false", image, dest)
				k.check()
				k.mustRun("push", "-q", "--tls-verify=false", image, dest)
			} else {
				k.killAt(pullTime, "pull", "-q", "--tls-verify=false", debian)
				k.check()
				k.mustRun("pull", "-q", "--tls-verify=false", debian)
				k.mustRun("rmi", debian)
			}
		}
		if t.Failed() {
			t.Fatalf("round %d failed; FORGE_STRESS_SEED=%d repeats the kills", round, seed)
		}
	}
	t.Logf("%d of %d kills landed before forge ended", k.landed, kills)
	if k.landed == 0 {
		t.Errorf("no kill landed while forge was running")
	}
	// Every image, the build cache's included, reads back in full: a push to an OCI
	// layout reads each layer.
	out := t.TempDir()
	ids := lines(s.must(t, "images", "--all", "--quiet", "--no-trunc"))
	for i, id := range ids {
		s.must(t, "push", "-q", id, fmt.Sprintf("oci:%s:%d", out, i))
	}
	t.Logf("%d images read back", len(ids))
	if m := storeOverlayMounts(t, s); len(m) != 0 {
		t.Errorf("a new forge sees mounts of the store: %q", m)
	}
}

// killer runs forge commands and kills them.
type killer struct {
	t      *testing.T
	s      *store
	rng    *mathrand.Rand
	landed int // kills that reached a running forge
	kills  int // killAt calls: every other one kills the outer of two forge processes
}

func (k *killer) timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// killAt starts forge with args and SIGKILLs the process it started (as the OOM killer or
// a CI runner would) at a random moment within span; it returns what forge printed.
func (k *killer) killAt(span time.Duration, args ...string) result {
	k.t.Helper()
	delay := time.Duration(k.rng.Int64N(int64(span)))
	k.kills++
	if k.kills%2 == 0 { // the way in where forge cannot enter its namespace early
		k.s.env[earlyEnv] = "0"
		defer delete(k.s.env, earlyEnv)
	}
	p := budStart(k.t, k.s, args...)
	select {
	case <-p.done:
	case <-time.After(delay):
		if err := p.cmd.Process.Kill(); err == nil {
			k.landed++
		}
		<-p.done
	}
	r := result{args: args, stdout: p.out.String(), code: p.cmd.ProcessState.ExitCode()}
	k.t.Logf("forge %s: killed after %v (exit %d, %s=%s)", args[0], delay.Round(time.Millisecond), r.code, earlyEnv, k.s.env[earlyEnv])
	return r
}

func (k *killer) mustRun(args ...string) result {
	k.t.Helper()
	r := k.s.run(k.t, args...)
	if r.code != 0 {
		k.t.Errorf("after a kill: want exit 0, got %v", r)
	}
	return r
}

// check is what must hold right after a kill: the store lists, and no mount of it is
// left on the host.
func (k *killer) check() {
	k.t.Helper()
	k.s.images(k.t)
	k.s.containerNames(k.t)
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		k.t.Fatal(err)
	}
	for _, l := range lines(string(mounts)) {
		if strings.Contains(l, k.s.root) {
			k.t.Errorf("a mount of the store is left on the host: %s", l)
		}
	}
}

// committedSteps returns, for each step of a build's output, whether it printed the
// `--> ID` line that follows a committed step.
func committedSteps(r result) map[string]bool {
	steps := map[string]bool{}
	step := ""
	for _, l := range lines(r.stdout) {
		l = strings.TrimSpace(l)
		if _, after, ok := strings.Cut(l, "STEP "); ok && strings.Contains(after, ": ") {
			_, step, _ = strings.Cut(after, ": ")
			steps[step] = false
		} else if strings.HasPrefix(l, "--> ") && step != "" {
			steps[step] = true
		}
	}
	return steps
}

// TestHalfWrittenImageRemoved: an image record without its manifest, as a SIGKILL between
// the storage library's two writes leaves it, is removed when forge next opens the store
// (with a warning), so that it is neither listed nor taken for a finished image.
func TestHalfWrittenImageRemoved(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	archive := "oci-archive:" + filepath.Join(e2e.Fixtures, "variant.tar")
	id := s.pull(t, "-q", archive)
	s.must(t, "tag", id, "localhost/half-written:1")
	// The record as the library first saves it: no big data yet.
	path := filepath.Join(s.root, "overlay-images", "images.json")
	var records []map[string]any
	decodeJSON(t, path, string(mustRead(t, path)), &records)
	found := false
	for _, r := range records {
		if r["id"] == id {
			found = true
			delete(r, "big-data-names")
			delete(r, "big-data-sizes")
			delete(r, "big-data-digests")
		}
	}
	if !found {
		t.Fatalf("image %s is not in %s", id, path)
	}
	b, err := json.Marshal(records)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	r := s.run(t, "images", "--json")
	if r.code != 0 || !strings.Contains(r.stderr, "half-written") {
		t.Errorf("want the listing to work and warn of the half-written image, got %v", r)
	}
	for _, e := range s.images(t) {
		if e.ID == id {
			t.Errorf("the half-written image is still listed: %v", e)
		}
	}
	if again := s.pull(t, "-q", archive); again != id {
		t.Errorf("pulled again as %s, want %s", again, id)
	}
	s.must(t, "push", "-q", id, "oci:"+t.TempDir()+":1")
}
