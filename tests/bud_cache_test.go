package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The layer cache (issue 4): a step's key is its parent, its text after
// expansion, the ARGs it sees and, for COPY/ADD, the sources' content and
// metadata (not their mtimes). Each RUN here writes a random UUID into the
// image and prints ran-42 (the Dockerfile says ran-$((40+2)), so a STEP line
// never does): an unchanged UUID and no ran-42 prove that the RUN did not run.

const budUUID = "cat /proc/sys/kernel/random/uuid > "

// budCacheHits counts the `--> Using cache` lines of a build's stdout.
func budCacheHits(r result) int {
	n := 0
	for _, l := range lines(r.stdout) {
		if strings.HasPrefix(strings.TrimSpace(l), "--> Using cache") {
			n++
		}
	}
	return n
}

// budStepHits returns, for each step of a build's stdout (its instruction as
// the STEP line shows it), whether a `--> Using cache` line follows it.
func budStepHits(r result) map[string]bool {
	hits := map[string]bool{}
	step := ""
	for _, l := range lines(r.stdout) {
		l = strings.TrimSpace(l)
		if _, after, ok := strings.Cut(l, "STEP "); ok && strings.Contains(after, ": ") {
			_, step, _ = strings.Cut(after, ": ")
			hits[step] = false
		} else if strings.HasPrefix(l, "--> Using cache") && step != "" {
			hits[step] = true
		}
	}
	return hits
}

// wantHits checks which layer steps (by the start of their instruction) were cache hits.
func wantHits(t *testing.T, r result, hit, miss []string) {
	t.Helper()
	got := budStepHits(r)
	for _, want := range []struct {
		steps []string
		hit   bool
	}{{hit, true}, {miss, false}} {
		for _, prefix := range want.steps {
			found := false
			for step, h := range got {
				if strings.HasPrefix(step, prefix) {
					found = true
					if h != want.hit {
						t.Errorf("step %q: cache hit %v, want %v:\n%s", step, h, want.hit, r.stdout)
					}
				}
			}
			if !found {
				t.Errorf("no STEP line for %q:\n%s", prefix, r.stdout)
			}
		}
	}
}

// budRuns counts the RUN steps that ran (their ran-42 lines).
func budRuns(r result) int {
	n := 0
	for _, l := range lines(r.stdout) {
		if strings.TrimSpace(l) == "ran-42" {
			n++
		}
	}
	return n
}

// cacheBuild builds ctx and reads the result back with skopeo and umoci.
func cacheBuild(t *testing.T, s *store, ctx string, args ...string) *built {
	t.Helper()
	id, r := s.budOK(t, "", append(args, ctx)...)
	return exportBuilt(t, s, id, r, false)
}

// uuids reads the files the RUN steps wrote.
func (b *built) uuids(t *testing.T, names ...string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		out = append(out, b.file(t, n))
	}
	return out
}

func TestBudCache(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	dockerfile := func(last string) string {
		return "FROM busybox\n" +
			"COPY a.txt /a.txt\n" +
			"RUN " + budUUID + "/r1 && echo ran-$((40+2))\n" +
			"ENV E=1\n" +
			"RUN " + budUUID + "/r2 && echo ran-$((40+2))\n" +
			"COPY b.txt /b.txt\n" +
			"RUN " + budUUID + "/r3 && echo ran-$((40+2))\n" +
			"LABEL l=1\n" +
			"RUN " + budUUID + "/r4 && echo ran-$((40+2))\n" +
			last + "\n"
	}
	ctx := budContext(t, dockerfile(`CMD ["sh"]`), map[string]string{"a.txt": "a\n", "b.txt": "b\n"})
	rs := []string{"r1", "r2", "r3", "r4"}
	// The steps that make layers, in order; metadata steps fold into the next one.
	layerSteps := []string{"COPY a.txt", "RUN " + budUUID + "/r1", "RUN " + budUUID + "/r2", "COPY b.txt", "RUN " + budUUID + "/r3", "RUN " + budUUID + "/r4"}
	base := len(wantFixture(t).DiffIDs)

	first := cacheBuild(t, s, ctx)
	if n := budRuns(first.r); n != 4 {
		t.Errorf("first build: %d RUN steps ran, want 4:\n%s", n, first.r.stdout)
	}
	first.wantNewLayers(t, 6) // 2 COPY + 4 RUN; ENV, LABEL and CMD add none
	firstUUIDs := first.uuids(t, rs...)

	t.Run("identical rebuild", func(t *testing.T) {
		again := cacheBuild(t, s, ctx)
		if again.id != first.id || !slices.Equal(again.cfg.RootFS.DiffIDs, first.cfg.RootFS.DiffIDs) {
			t.Errorf("an identical rebuild gave image %s with layers %v, want %s with %v", again.id, again.cfg.RootFS.DiffIDs, first.id, first.cfg.RootFS.DiffIDs)
		}
		if got := again.uuids(t, rs...); !slices.Equal(got, firstUUIDs) || budRuns(again.r) != 0 {
			t.Errorf("an identical rebuild ran RUN steps (UUIDs %q, were %q):\n%s", got, firstUUIDs, again.r.stdout)
		}
		wantHits(t, again.r, layerSteps, nil)
	})

	t.Run("an mtime is not part of the key", func(t *testing.T) {
		future := time.Now().Add(time.Hour)
		if err := os.Chtimes(filepath.Join(ctx, "a.txt"), future, future); err != nil {
			t.Fatal(err)
		}
		if again := cacheBuild(t, s, ctx); again.id != first.id || budRuns(again.r) != 0 {
			t.Errorf("touching a COPY source rebuilt: image %s, want %s:\n%s", again.id, first.id, again.r.stdout)
		}
	})

	t.Run("change the last line", func(t *testing.T) {
		budWriteFiles(t, ctx, map[string]string{"Dockerfile": dockerfile(`CMD ["true"]`)})
		t.Cleanup(func() { budWriteFiles(t, ctx, map[string]string{"Dockerfile": dockerfile(`CMD ["sh"]`)}) })
		changed := cacheBuild(t, s, ctx)
		if !slices.Equal(changed.cfg.RootFS.DiffIDs, first.cfg.RootFS.DiffIDs) || budRuns(changed.r) != 0 {
			t.Errorf("a new last line changed the layers or ran RUN steps: %v, were %v:\n%s", changed.cfg.RootFS.DiffIDs, first.cfg.RootFS.DiffIDs, changed.r.stdout)
		}
		if got := changed.uuids(t, rs...); !slices.Equal(got, firstUUIDs) {
			t.Errorf("UUIDs %q, were %q", got, firstUUIDs)
		}
		wantHits(t, changed.r, layerSteps, nil)
		budWantStrings(t, "Cmd", changed.cfg.Config.Cmd, "true")
		if changed.id == first.id {
			t.Errorf("a different CMD gave the same image %s", changed.id)
		}
	})

	t.Run("change a line in the middle", func(t *testing.T) {
		budWriteFiles(t, ctx, map[string]string{"Dockerfile": strings.Replace(dockerfile(`CMD ["sh"]`), "ENV E=1", "ENV E=2", 1)})
		t.Cleanup(func() { budWriteFiles(t, ctx, map[string]string{"Dockerfile": dockerfile(`CMD ["sh"]`)}) })
		changed := cacheBuild(t, s, ctx)
		wantHits(t, changed.r, layerSteps[:2], layerSteps[2:])
		got := changed.cfg.RootFS.DiffIDs
		if len(got) != base+6 || !slices.Equal(got[:base+2], first.cfg.RootFS.DiffIDs[:base+2]) {
			t.Errorf("the layers before line 4 changed: %v, were %v", got, first.cfg.RootFS.DiffIDs)
		}
		if uuids := changed.uuids(t, rs...); uuids[0] != firstUUIDs[0] || uuids[1] == firstUUIDs[1] {
			t.Errorf("UUIDs %q, were %q: want r1 kept, r2 on new", uuids, firstUUIDs)
		}
	})

	t.Run("change a COPY source", func(t *testing.T) {
		budWriteFiles(t, ctx, map[string]string{"b.txt": "b changed\n"})
		changed := cacheBuild(t, s, ctx)
		got := changed.cfg.RootFS.DiffIDs
		if len(got) != base+6 || !slices.Equal(got[:base+3], first.cfg.RootFS.DiffIDs[:base+3]) {
			t.Fatalf("the layers before COPY b.txt changed: %v, were %v", got, first.cfg.RootFS.DiffIDs)
		}
		for i := base + 3; i < base+6; i++ {
			if got[i] == first.cfg.RootFS.DiffIDs[i] {
				t.Errorf("layer %d (from COPY b.txt on) is unchanged: %s", i, got[i])
			}
		}
		uuids := changed.uuids(t, rs...)
		if !slices.Equal(uuids[:2], firstUUIDs[:2]) || uuids[2] == firstUUIDs[2] || uuids[3] == firstUUIDs[3] {
			t.Errorf("UUIDs %q, were %q: want r1 r2 kept, r3 r4 new", uuids, firstUUIDs)
		}
		wantHits(t, changed.r, layerSteps[:3], layerSteps[3:])
		if runs := budRuns(changed.r); runs != 2 {
			t.Errorf("%d RUN steps ran, want 2 (those after COPY b.txt):\n%s", runs, changed.r.stdout)
		}
		budWriteFiles(t, ctx, map[string]string{"b.txt": "b\n"})
		if back := cacheBuild(t, s, ctx); back.id != first.id || budRuns(back.r) != 0 {
			t.Errorf("with b.txt as before, the first build's cache must hit: image %s, want %s:\n%s", back.id, first.id, back.r.stdout)
		}
	})

	t.Run("--no-cache", func(t *testing.T) {
		fresh := cacheBuild(t, s, ctx, "--no-cache")
		if n := budCacheHits(fresh.r); n != 0 || budRuns(fresh.r) != 4 {
			t.Errorf("--no-cache: %d cache hits and %d RUN steps run, want 0 and 4:\n%s", n, budRuns(fresh.r), fresh.r.stdout)
		}
		if got := fresh.uuids(t, rs...); got[0] == firstUUIDs[0] {
			t.Errorf("--no-cache kept the cached /r1 %q", got[0])
		}
	})
}

// TestBudCacheIgnoredFile: a file .dockerignore excludes is not part of any key.
func TestBudCacheIgnoredFile(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := budContext(t, "FROM busybox\nCOPY . /ctx/\nRUN "+budUUID+"/r && echo ran-$((40+2))\n",
		map[string]string{".dockerignore": "ignored*\n", "kept.txt": "k\n", "ignored.txt": "i\n"})
	first := cacheBuild(t, s, ctx)
	budWriteFiles(t, ctx, map[string]string{"ignored.txt": "changed\n", "ignored-new.txt": "new\n"})
	if again := cacheBuild(t, s, ctx); again.id != first.id || budRuns(again.r) != 0 {
		t.Errorf("changing ignored files rebuilt: image %s, want %s:\n%s", again.id, first.id, again.r.stdout)
	}
	budWriteFiles(t, ctx, map[string]string{"kept.txt": "changed\n"})
	changed := cacheBuild(t, s, ctx)
	if changed.id == first.id || changed.file(t, "r") == first.file(t, "r") {
		t.Errorf("changing a file COPY . copies did not rebuild (image %s)", changed.id)
	}
	changed.wantFile(t, "ctx/kept.txt", "changed\n")
}

// TestBudCacheBuildArgOrder: the order of --build-arg flags is not part of the key.
func TestBudCacheBuildArgOrder(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := budContext(t, "FROM busybox\nARG A\nARG B\nRUN echo \"$A $B\" > /ab && "+budUUID+"/r && echo ran-$((40+2))\n", nil)
	first := cacheBuild(t, s, ctx, "--build-arg", "A=1", "--build-arg", "B=2")
	first.wantFile(t, "ab", "1 2\n")
	if again := cacheBuild(t, s, ctx, "--build-arg", "B=2", "--build-arg", "A=1"); again.id != first.id || budRuns(again.r) != 0 {
		t.Errorf("the same build args in another order rebuilt: image %s, want %s:\n%s", again.id, first.id, again.r.stdout)
	}
	other := cacheBuild(t, s, ctx, "--build-arg", "B=2", "--build-arg", "A=3")
	if other.id == first.id || budRuns(other.r) != 1 {
		t.Errorf("a different build arg value reused the cache: image %s:\n%s", other.id, other.r.stdout)
	}
	other.wantFile(t, "ab", "3 2\n")
}

// TestBudCacheAfterFailure: the steps before a failing one stay cached.
func TestBudCacheAfterFailure(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := budContext(t, "FROM busybox\nRUN "+budUUID+"/r1 && echo ran-$((40+2))\nRUN exit 1\n", nil)
	r := s.run(t, "bud", ctx)
	budError(t, r, "Dockerfile:3")
	if budRuns(r) != 1 {
		t.Errorf("the first RUN did not run before the failing one: %v", r)
	}
	budWriteFiles(t, ctx, map[string]string{"Dockerfile": "FROM busybox\nRUN " + budUUID + "/r1 && echo ran-$((40+2))\nRUN true\n"})
	fixed := cacheBuild(t, s, ctx)
	if budRuns(fixed.r) != 0 {
		t.Errorf("after a failed build, the step that succeeded ran again:\n%s", fixed.r.stdout)
	}
	wantHits(t, fixed.r, []string{"RUN " + budUUID + "/r1"}, []string{"RUN true"})
}

// TestBudLayersFalse: --layers=false squashes each stage's steps into one
// layer and caches nothing.
func TestBudLayersFalse(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := budContext(t, "FROM busybox\nCOPY a /a\nRUN echo x > /x\nRUN "+budUUID+"/r\n", map[string]string{"a": "a\n"})
	first := cacheBuild(t, s, ctx, "--layers=false")
	first.wantNewLayers(t, 1)
	top := first.layerList(t)[len(first.layerList(t))-1]
	for _, name := range []string{"a", "x", "r"} {
		if _, ok := top.hdrs[name]; !ok {
			t.Errorf("the one new layer lacks /%s: %q", name, top.budNames())
		}
	}
	again := cacheBuild(t, s, ctx, "--layers=false")
	if budCacheHits(again.r) != 0 || again.file(t, "r") == first.file(t, "r") {
		t.Errorf("--layers=false used the cache:\n%s", again.r.stdout)
	}
}
