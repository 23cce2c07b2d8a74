package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/forge-build/forge/storage"
)

func TestDisplayNames(t *testing.T) {
	t.Parallel()
	got := displayNames([]string{"localhost/a:1", "127.0.0.1:5000/me/b:latest", "quay.io/x@sha256:abc"})
	want := [][2]string{{"localhost/a", "1"}, {"127.0.0.1:5000/me/b", "latest"}, {"quay.io/x", "<none>"}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("displayNames[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if n := displayNames(nil); n[0] != [2]string{"<none>", "<none>"} {
		t.Errorf("nameless image shown as %v", n)
	}
}

func TestPrintImages(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	images := []storage.Image{{ID: strings.Repeat("ab", 32), Names: []string{"localhost/a:1", "localhost/a:2"},
		Created: now.Add(-2 * time.Hour), Size: 1500000}}
	var table, quiet, full bytes.Buffer
	if err := printImages(&table, images, imagesFormat{}, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "REPOSITORY") ||
		!strings.Contains(lines[1], "abababababab ") || !strings.Contains(lines[2], "2 hours ago") || !strings.Contains(lines[1], "1.5MB") {
		t.Errorf("table:\n%s", table.String())
	}
	_ = printImages(&quiet, images, imagesFormat{quiet: true}, now)
	_ = printImages(&full, images, imagesFormat{quiet: true, noTrunc: true}, now)
	if quiet.String() != "abababababab\n" || full.String() != images[0].ID+"\n" {
		t.Errorf("quiet = %q, no-trunc = %q", quiet.String(), full.String())
	}
}
