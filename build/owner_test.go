package build

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolveOwner(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", "root:x:0:0::/root:/bin/sh\nredis:x:999:998::/data:/bin/sh\n")
	write("group", "root:x:0:\nredis:x:998:\nstaff:x:50:\n")
	tests := []struct {
		spec string
		want idPair
		bad  bool
	}{
		{spec: "", want: idPair{0, 0}},
		{spec: "redis", want: idPair{999, 998}},
		{spec: "redis:staff", want: idPair{999, 50}},
		{spec: "1000", want: idPair{1000, 1000}},
		{spec: "999", want: idPair{999, 998}},
		{spec: "1000:50", want: idPair{1000, 50}},
		{spec: "redis:7", want: idPair{999, 7}},
		{spec: "nobody", bad: true},
		{spec: "redis:nogroup", bad: true},
		{spec: ":5", bad: true},
		{spec: "5:", bad: true},
		{spec: "-1", bad: true},
	}
	for _, tt := range tests {
		got, err := resolveOwner(root, tt.spec)
		if tt.bad {
			if err == nil {
				t.Errorf("resolveOwner(%q) = %+v, want an error", tt.spec, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("resolveOwner(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
}

func TestResolveOwnerStaysInRoot(t *testing.T) {
	t.Parallel()
	root, outside := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "passwd"), []byte("evil:x:4242:4242::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The image's /etc is a symlink to a host directory: it must be resolved inside root.
	if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	if got, err := resolveOwner(root, "evil"); err == nil {
		t.Fatalf("resolveOwner read the host's file through a symlink: %+v", got)
	}
}
