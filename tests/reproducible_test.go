package tests

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Reproducible builds (issue 8): with SOURCE_DATE_EPOCH or --timestamp every new layer
// has its files' times set to it, sorted entries and no owner names, and every config
// and history entry is created at it, so the same sources give the same image anywhere.

const sourceDateEpoch = "1700000000" // 2023-11-14T22:13:20Z

var sourceDate = time.Unix(1700000000, 0).UTC()

// reproStore is a store whose forge sees SOURCE_DATE_EPOCH.
func reproStore(t *testing.T) *store {
	t.Helper()
	s := newStore(t)
	s.env["SOURCE_DATE_EPOCH"] = sourceDateEpoch
	return s
}

// reproDockerfile makes files in RUN and COPY steps, files with their own times (touch
// -d), which a fixed timestamp overrides, and names whose order in a directory walk
// (srv/d, srv/d/x, srv/d-b) is not their sorted order (srv/d, srv/d-b, srv/d/x), one of
// them a hard link to the other.
const reproDockerfile = "FROM busybox\n" +
	"COPY f /srv/f\n" +
	"RUN mkdir -p /srv/d && echo data > /srv/d/x && ln /srv/d/x /srv/d-b && touch -d 2001-02-03 /srv/d/x\n" +
	"ENV MODE=repro\n" +
	"RUN echo more > /srv/more && rm /srv/f\n" +
	"CMD [\"cat\", \"/srv/more\"]\n"

func TestBudReproducible(t *testing.T) {
	t.Parallel()
	ctx := budContext(t, reproDockerfile, map[string]string{"f": "from the context\n"})
	a := reproStore(t)
	idA, _ := a.budOK(t, "", ctx)

	// Another store, another checkout time of the context file, another hour.
	if err := os.Chtimes(filepath.Join(ctx, "f"), time.Now().Add(time.Hour), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	b := reproStore(t)
	idB, _ := b.budOK(t, "", ctx)
	if idB != idA {
		t.Fatalf("two builds from empty stores with SOURCE_DATE_EPOCH gave images %s and %s", idA, idB)
	}

	// The same bytes as a registry sees them: pushed from each store, one manifest digest.
	var digests []string
	for _, s := range []*store{a, b} {
		ref := "docker://" + e2e.Registry + "/" + uniqueRepo("repro") + ":latest"
		s.must(t, "push", "-q", "--tls-verify=false", idA, ref)
		_, d, _ := skopeoInspect(t, ref)
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("the pushed images have manifest digests %s and %s, want one", digests[0], digests[1])
	}

	t.Run("--timestamp and --build-arg give the same image", func(t *testing.T) {
		for _, flags := range [][]string{{"--timestamp", sourceDateEpoch}, {"--build-arg", "SOURCE_DATE_EPOCH=" + sourceDateEpoch}} {
			s := newStore(t)
			r := s.run(t, append(append([]string{"bud"}, flags...), ctx)...)
			if r.code != 0 || lastLine(r.stdout) != idA {
				t.Errorf("bud %s: image %s, want %s: %v", strings.Join(flags, " "), lastLine(r.stdout), idA, r)
			}
			if strings.Contains(r.stderr, "not consumed") {
				t.Errorf("bud %s warned about an unused build arg:\n%s", strings.Join(flags, " "), r.stderr)
			}
		}
	})

	t.Run("what the image holds", func(t *testing.T) {
		img := exportBuilt(t, a, idA, result{}, false)
		var created struct {
			Created string `json:"created"`
			History []struct {
				Created string `json:"created"`
			} `json:"history"`
		}
		decodeJSON(t, "config", img.raw, &created)
		base := len(wantFixture(t).DiffIDs)
		if got := created.Created; !sameTime(got, sourceDate) {
			t.Errorf("config created %s, want %s", got, sourceDate)
		}
		for i, h := range created.History[base:] {
			if !sameTime(h.Created, sourceDate) {
				t.Errorf("history entry %d created %s, want %s", base+i, h.Created, sourceDate)
			}
		}
		img.wantFile(t, "srv/more", "more\n")
		img.wantFile(t, "srv/d-b", "data\n")
		img.wantFile(t, "srv/d/x", "data\n")
		layers := layerHeaders(t, img)
		if len(layers) != base+3 {
			t.Fatalf("%d layers, want %d", len(layers), base+3)
		}
		for i, l := range layers[base:] {
			var names []string
			for _, h := range l {
				names = append(names, h.Name)
				if !h.ModTime.Equal(sourceDate) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.Uname != "" || h.Gname != "" {
					t.Errorf("layer %d: %s: mtime %v atime %v ctime %v uname %q gname %q; want %v and none of the rest",
						base+i, h.Name, h.ModTime, h.AccessTime, h.ChangeTime, h.Uname, h.Gname, sourceDate)
				}
				for k := range h.PAXRecords {
					if !strings.HasPrefix(k, "SCHILY.xattr.") {
						t.Errorf("layer %d: %s: PAX record %s", base+i, h.Name, k)
					}
				}
			}
			if !slices.IsSorted(names) {
				t.Errorf("layer %d: entries not sorted: %q", base+i, names)
			}
		}
		// The hard-linked file's first name in order holds the data; the other links to it.
		for _, h := range layers[base+1] {
			if strings.HasSuffix(h.Name, "srv/d/x") && (h.Typeflag != tar.TypeLink || !strings.HasSuffix(h.Linkname, "srv/d-b")) {
				t.Errorf("srv/d/x: type %c -> %q, want a hard link to srv/d-b", h.Typeflag, h.Linkname)
			}
		}
	})
}

// TestCommitTimestamp: the scripted verbs make reproducible images too.
func TestCommitTimestamp(t *testing.T) {
	t.Parallel()
	var ids []string
	for i, env := range []bool{false, true} {
		s := newStore(t)
		if env {
			s.env["SOURCE_DATE_EPOCH"] = sourceDateEpoch
		}
		ctr := s.workingContainer(t, "busybox")
		s.must(t, "run", ctr, "--", "sh", "-c", fmt.Sprintf("echo same > /same && touch -d '2001-02-03 04:05:0%d' /same", i))
		args := []string{"commit", "-q", ctr}
		if !env {
			args = []string{"commit", "-q", "--timestamp", sourceDateEpoch, ctr}
		}
		ids = append(ids, strings.TrimSpace(s.must(t, args...)))
	}
	if ids[0] != ids[1] {
		t.Errorf("forge commit --timestamp and SOURCE_DATE_EPOCH commits of the same files gave %s and %s", ids[0], ids[1])
	}
}

// TestBudCacheRehit: a changed step that makes the same layer as before leads back to the
// earlier build's keys, so the steps after it hit the cache (locally and through a
// registry), and the image is the one a build without any cache makes.
func TestBudCacheRehit(t *testing.T) {
	t.Parallel()
	dockerfile := func(first string) string {
		return "FROM busybox\n" + first + "\n" +
			"RUN echo ran-$((40+2)) && echo later > /later\n" +
			"CMD [\"cat\", \"/later\"]\n"
	}
	before, after := "RUN echo same > /same", "RUN printf 'same\\n' > /same"
	ctx := budContext(t, dockerfile(before), nil)
	cache := e2e.Registry + "/" + uniqueRepo("rehit")
	a := reproStore(t)
	a.budOK(t, "", "--tls-verify=false", "--cache-to", cache, ctx)

	budWriteFiles(t, ctx, map[string]string{"Dockerfile": dockerfile(after)})
	clean := reproStore(t)
	want, _ := clean.budOK(t, "", "--no-cache", ctx)

	check := func(t *testing.T, id string, r result) {
		t.Helper()
		if budRuns(r) != 0 {
			t.Errorf("the step after the changed one ran again:\n%s", r.stdout)
		}
		wantHits(t, r, []string{"RUN echo ran"}, []string{"RUN printf"})
		if id != want {
			t.Errorf("image %s, want %s as a build without cache makes it (its history names the changed step)", id, want)
		}
	}
	t.Run("local cache", func(t *testing.T) {
		id, r := a.budOK(t, "", ctx)
		check(t, id, r)
	})
	t.Run("registry cache", func(t *testing.T) {
		b := reproStore(t)
		id, r := b.budOK(t, "", "--tls-verify=false", "--cache-from", cache, ctx)
		check(t, id, r)
		if n := strings.Count(r.stdout, "(from "+cache+")"); n != 2 {
			t.Errorf("%d steps came from the cache registry, want 2 (the RUN after the changed one, the CMD):\n%s", n, r.stdout)
		}
		img := exportBuilt(t, b, id, r, false)
		var history []string
		for _, h := range img.cfg.History {
			history = append(history, h.CreatedBy)
		}
		if !slices.Contains(history, after) || slices.Contains(history, before) {
			t.Errorf("history %q, want the changed step %q and not the old one", history, after)
		}
	})
}

// TestBudCacheRehitStages: a stage rebuilt with the same files lets the COPY --from of a
// later stage, and what follows it, hit the cache.
func TestBudCacheRehitStages(t *testing.T) {
	t.Parallel()
	dockerfile := func(first string) string {
		return "FROM busybox AS a\n" + first + "\n" +
			"FROM busybox\nCOPY --from=a /same /same\n" +
			"RUN echo ran-$((40+2)) && cat /same > /later\n"
	}
	ctx := budContext(t, dockerfile("RUN echo same > /same"), nil)
	s := reproStore(t)
	s.budOK(t, "", ctx)
	budWriteFiles(t, ctx, map[string]string{"Dockerfile": dockerfile("RUN printf 'same\\n' > /same")})
	want, _ := reproStore(t).budOK(t, "", ctx)
	id, r := s.budOK(t, "", ctx)
	wantHits(t, r, []string{"COPY --from=a", "RUN echo ran"}, []string{"RUN printf"})
	if budRuns(r) != 0 || id != want {
		t.Errorf("image %s, want %s as a build without cache makes it; the last RUN must not run:\n%s", id, want, r.stdout)
	}
}

func sameTime(s string, want time.Time) bool {
	got, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && got.Equal(want)
}

// layerHeaders reads every layer of an exported image with archive/tar: its headers in
// the order they are written.
func layerHeaders(t *testing.T, b *built) [][]*tar.Header {
	t.Helper()
	b.layerList(t)
	var index struct{ Manifests []struct{ Digest string } }
	decodeJSON(t, "index.json", string(mustReadFile(t, filepath.Join(b.layout, "index.json"))), &index)
	blob := func(d string) []byte {
		return mustReadFile(t, filepath.Join(b.layout, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
	}
	var m manifest
	decodeJSON(t, "manifest", string(blob(index.Manifests[0].Digest)), &m)
	var out [][]*tar.Header
	for _, l := range m.Layers {
		var hdrs []*tar.Header
		tr := tar.NewReader(maybeGunzip(blob(l.Digest)))
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", l.Digest, err)
			}
			hdrs = append(hdrs, h)
		}
		out = append(out, hdrs)
	}
	return out
}
