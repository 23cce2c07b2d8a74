package sandbox

import (
	"os"
	"path/filepath"
	"testing"
)

// Removing the mount points of a run never follows a symlink the command left where a
// created directory was (CVE-2024-23652 class): neither to a directory of the container nor
// out of it.
func TestRemoveMountpointsFollowsNoSymlink(t *testing.T) {
	t.Parallel()
	for name, link := range map[string]string{"inside": "/victim", "outside": ""} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			victim := filepath.Join(root, "victim")
			if link == "" {
				victim = t.TempDir() // a host directory outside the container
				link = victim
			}
			if err := os.MkdirAll(filepath.Join(victim, "b"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(victim, "f"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			// Run created /a, /a/b and /a/f; the command replaced /a with a symlink.
			if err := os.Symlink(link, filepath.Join(root, "a")); err != nil {
				t.Fatal(err)
			}
			if err := removeMountpoints(root, []string{"/a", "/a/b", "/a/f"}); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"b", "f"} {
				if _, err := os.Lstat(filepath.Join(victim, p)); err != nil {
					t.Errorf("%s/%s was removed through the symlink: %v", victim, p, err)
				}
			}
			if _, err := os.Lstat(filepath.Join(root, "a")); err != nil {
				t.Errorf("the command's symlink /a was removed: %v", err)
			}
		})
	}
}

func TestRemoveMountpointsRemovesWhatItMade(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "a/f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "kept"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := removeMountpoints(root, []string{"/a", "/a/b", "/a/f", "/kept"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(root, "a")); err == nil {
		t.Error("/a is left")
	}
	if _, err := os.Lstat(filepath.Join(root, "kept")); err != nil {
		t.Errorf("a file with content was removed: %v", err)
	}
}
