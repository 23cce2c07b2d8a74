package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forge-build/forge/tests/internal/evil"
)

// TestLayerSizeLimit: a small gzip whose layer unpacks past --max-layer-size (or
// FORGE_MAX_LAYER_SIZE) fails a pull, from an archive or a registry, and an ADD of a
// local archive, with one error line that names the limit; the store is left as it was.
// Under a higher limit the same inputs are accepted: the limit is what stops them.
func TestLayerSizeLimit(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	const size = 64 << 20
	bomb, err := evil.GzipBomb("zeros", size)
	if err != nil {
		t.Fatal(err)
	}
	base, err := evil.LayersOf(filepath.Join(e2e.Fixtures, "busybox.tar"))
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "bomb.tar")
	if err := evil.WriteOCIArchive(archive, evil.Image{Layers: append(base, evil.Layer{Blob: bomb})}); err != nil {
		t.Fatal(err)
	}
	t.Logf("a %d KiB gzip layer that unpacks to %d MiB", len(bomb)>>10, size>>20)
	limited := []string{"--max-layer-size", "16MiB"}
	tooLarge := func(t *testing.T, r result, words ...string) {
		t.Helper()
		line := oneLineError(t, r, "size limit")
		for _, w := range append([]string{"limit 16.0 MiB"}, words...) {
			if !strings.Contains(line, w) {
				t.Errorf("error line does not name %q: %s", w, line)
			}
		}
	}
	unchanged := func(t *testing.T, before []string) {
		t.Helper()
		if after := summary(s.images(t)); !equalStrings(before, after) {
			t.Errorf("the store changed:\nbefore %q\nafter  %q", before, after)
		}
		if names := s.containerNames(t); len(names) != 0 {
			t.Errorf("containers left behind: %q", names)
		}
	}

	s.pull(t, "-q", "busybox") // for the FROM of the ADD build below
	before := summary(s.images(t))
	tooLarge(t, s.run(t, append(limited, "pull", "-q", "oci-archive:"+archive)...), "sha256:")
	unchanged(t, before)

	// Under a higher limit the image is pulled; pushed to the registry, it is refused
	// from there too.
	id := s.pull(t, "-q", "oci-archive:"+archive)
	ref := e2e.Registry + "/" + uniqueRepo("bomb") + ":1"
	s.must(t, "push", "-q", "--tls-verify=false", id, ref)
	fresh := newStore(t)
	fresh.env["FORGE_MAX_LAYER_SIZE"] = "16MiB"
	tooLarge(t, fresh.run(t, "pull", "-q", "--tls-verify=false", ref), "sha256:")
	if got := summary(fresh.images(t)); len(got) != 0 {
		t.Errorf("the refused pull left images in a fresh store: %q", got)
	}

	dir := budContext(t, "FROM busybox\nADD bomb.tar.gz /x/\n", nil)
	if err := os.WriteFile(filepath.Join(dir, "bomb.tar.gz"), bomb, 0o644); err != nil {
		t.Fatal(err)
	}
	before = summary(s.images(t))
	tag := uniqueRepo("bomb-add")
	tooLarge(t, s.run(t, append(limited, "bud", "-q", "-t", tag, dir)...), "Dockerfile:2", "ADD bomb.tar.gz")
	unchanged(t, before)
	s.budOK(t, "", "-q", "-t", tag, dir) // under the default limit
}
