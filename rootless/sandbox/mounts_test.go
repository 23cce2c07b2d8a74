package sandbox_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/forge-build/forge/rootless/sandbox"
)

func TestRunTmpfs(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	root := newRootfs(t)
	mustMkdir(t, filepath.Join(root, "real"))
	if err := os.Symlink("/real", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	cfg := sandbox.Config{RootFS: root, Tmpfs: []sandbox.Tmpfs{
		{Dest: "/scratch/t", Size: 1 << 20},
		{Dest: "/link/t"}, // through a symlink inside the root
	}}
	got := mustRun(t, cfg, `echo x > /scratch/t/f && cat /scratch/t/f && grep ' /scratch/t ' /proc/self/mountinfo | grep -c 'tmpfs.*size=1024k' &&
		head -c 2097152 /dev/zero > /scratch/t/big 2>/dev/null; echo full=$?; touch /real/t/x && grep -c ' /real/t ' /proc/self/mountinfo`)
	if got != "x\n1\nfull=1\n1" {
		t.Errorf("tmpfs: %q", got)
	}
	for _, p := range []string{"scratch", "real/t"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("/%s left in the rootfs", p)
		}
	}
}

// A volume with a Root resolves its source inside that root, whatever symlinks it meets:
// an absolute link, a relative one that climbs, and `..` in the source itself.
func TestRunVolumeRoot(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	root := newRootfs(t)
	host := t.TempDir() // a host directory that must stay out of reach
	mustWrite(t, filepath.Join(host, "file"), "host\n", 0o644)
	src := t.TempDir()
	// The same path inside src holds the file the mount must show.
	mustMkdir(t, filepath.Join(src, host))
	mustWrite(t, filepath.Join(src, host, "file"), "inside\n", 0o644)
	mustMkdir(t, filepath.Join(src, "sub"))
	mustWrite(t, filepath.Join(src, "sub/file"), "sub\n", 0o644)
	for name, link := range map[string]string{"abs": host, "climb": "../../../../../../../../.." + host} {
		if err := os.Symlink(link, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := sandbox.Config{RootFS: root, Volumes: []sandbox.Volume{
		{Root: src, Source: "abs", Dest: "/m/abs", ReadOnly: true},
		{Root: src, Source: "climb", Dest: "/m/climb", ReadOnly: true},
		{Root: src, Source: "../../sub", Dest: "/m/dots", ReadOnly: true},
		{Root: src, Source: "abs/file", Dest: "/m/onefile", ReadOnly: true},
		{Root: src, Dest: "/m/root", ReadOnly: true},
	}}
	got := mustRun(t, cfg, `cat /m/abs/file /m/climb/file /m/dots/file /m/onefile /m/root/sub/file`)
	if got != "inside\ninside\nsub\ninside\nsub" {
		t.Errorf("volumes resolved inside their root: %q", got)
	}
	cfg.Volumes = []sandbox.Volume{{Root: src, Source: "missing", Dest: "/m"}}
	if r := run(t, cfg, "true"); r.err == nil {
		t.Errorf("missing source in root: status %d, no error", r.status)
	}
}

// Nested targets are mounted the shallower first, whatever the order given.
func TestRunNestedMounts(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	root := newRootfs(t)
	inner := t.TempDir()
	mustWrite(t, filepath.Join(inner, "f"), "inner\n", 0o644)
	cfg := sandbox.Config{RootFS: root,
		Volumes: []sandbox.Volume{{Source: inner, Dest: "/a/b/c", ReadOnly: true}},
		Tmpfs:   []sandbox.Tmpfs{{Dest: "/a"}},
	}
	if got := mustRun(t, cfg, `cat /a/b/c/f`); got != "inner" {
		t.Errorf("nested mount: %q", got)
	}
}
