package evil

import (
	"os"
	"path/filepath"
	"testing"
)

// TestGuardSeesEscapes: each way a hostile input can touch the host is reported, so that
// a test built on the guard fails when the protection it checks is gone.
func TestGuardSeesEscapes(t *testing.T) {
	t.Parallel()
	cases := map[string]func(g *Guard, scan string) error{
		"a file in the target": func(g *Guard, _ string) error {
			return os.WriteFile(filepath.Join(g.Target, "x"), nil, 0o644)
		},
		"the secret rewritten": func(g *Guard, _ string) error {
			return os.WriteFile(filepath.Join(g.Sentinel, "secret"), []byte("pwned"), 0o644)
		},
		"the secret hard-linked": func(g *Guard, scan string) error {
			return os.Link(filepath.Join(g.Sentinel, "secret"), filepath.Join(scan, "hl"))
		},
		"a sentinel file removed": func(g *Guard, _ string) error { return os.Remove(filepath.Join(g.Sentinel, "d", "file")) },
		"a sentinel directory emptied": func(g *Guard, _ string) error {
			return os.RemoveAll(filepath.Join(g.Sentinel, "d"))
		},
		"the sentinel link replaced": func(g *Guard, _ string) error {
			link := filepath.Join(g.Sentinel, "link")
			if err := os.Remove(link); err != nil {
				return err
			}
			return os.Symlink("/", link)
		},
		"a marked file in a scanned directory": func(g *Guard, scan string) error {
			return os.MkdirAll(filepath.Join(scan, "deep", g.Name("x")), 0o755)
		},
	}
	for name, escape := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			scan, skip := t.TempDir(), t.TempDir()
			g, err := NewGuard(t.TempDir(), []string{scan, skip}, []string{skip})
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Escapes(); len(got) != 0 {
				t.Fatalf("a fresh guard reports %q", got)
			}
			if err := os.WriteFile(filepath.Join(skip, g.Name("contained")), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if got := g.Escapes(); len(got) != 0 {
				t.Fatalf("a marked file in a skipped directory is reported: %q", got)
			}
			if err := escape(g, scan); err != nil {
				t.Fatal(err)
			}
			if got := g.Escapes(); len(got) == 0 {
				t.Errorf("the guard did not see it")
			} else {
				t.Logf("seen: %q", got)
			}
		})
	}
}
