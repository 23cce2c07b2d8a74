package cli

import (
	"path/filepath"
	"testing"
)

func TestParseVolumes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	got, err := parseVolumes([]string{dir + ":/data", dir + ":/ro:ro"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Source != dir || got[0].Dest != "/data" || got[0].ReadOnly || !got[1].ReadOnly {
		t.Errorf("parseVolumes = %+v", got)
	}
	for _, bad := range []string{
		"nocolon", dir + ":relative", filepath.Join(dir, "missing") + ":/x", dir + ":/x:bogus", ":/x", dir + ":",
	} {
		if v, err := parseVolumes([]string{bad}); err == nil {
			t.Errorf("parseVolumes(%q) = %+v, want an error", bad, v)
		}
	}
}
