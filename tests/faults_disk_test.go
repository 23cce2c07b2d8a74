package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFullDisk: with the store on a 64 MiB filesystem, a COPY, a RUN that writes more
// than fits, and a pull that does not fit each fail with one error line that names the
// step (or the pull) and says "no space left on device"; the build's containers are
// removed, the space they took is free again, and the next build works.
func TestFullDisk(t *testing.T) {
	t.Parallel()
	needE2E(t)
	dir, err := os.MkdirTemp(e2e.SmallFS, "store-")
	if err != nil {
		t.Fatal(err)
	}
	s := &store{root: filepath.Join(dir, "root"), runroot: newStore(t).runroot, env: map[string]string{}}
	// Files of the subordinate IDs: only forge's namespace removes them.
	t.Cleanup(func() { s.run(t, "unshare", "rm", "-rf", dir) })
	s.pull(t, "-q", "busybox")
	before := summary(s.images(t))
	baseline := usedBytes(t, e2e.SmallFS)

	big := budContext(t, "FROM busybox\nCOPY big /big\n", nil)
	f, err := os.Create(filepath.Join(big, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(80 << 20); err != nil { // sparse here, 80 MiB in the container
		t.Fatal(err)
	}
	f.Close()
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"COPY", []string{"bud", "-q", big}, []string{"Dockerfile:2", "COPY big /big"}},
		{"RUN", []string{"bud", "-q", budContext(t, "FROM busybox\nRUN head -c 80000000 /dev/urandom > /fill\n", nil)}, []string{"Dockerfile:2", "RUN head -c"}},
		{"pull", []string{"pull", "-q", "--tls-verify=false", e2e.Registry + "/library/debian:bookworm-slim"}, []string{"pull", "debian"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			line := oneLineError(t, s.run(t, c.args...), "no space left on device")
			for _, w := range c.want {
				if !strings.Contains(line, w) {
					t.Errorf("error line does not name %q: %s", w, line)
				}
			}
			if names := s.containerNames(t); len(names) != 0 {
				t.Errorf("containers left behind: %q", names)
			}
			if after := summary(s.images(t)); !equalStrings(before, after) {
				t.Errorf("the store changed:\nbefore %q\nafter  %q", before, after)
			}
			if used := usedBytes(t, e2e.SmallFS); used > baseline+8<<20 {
				t.Errorf("the failure left %d MiB in use (%d MiB before)", used>>20, baseline>>20)
			}
		})
	}
	id, _ := s.budOK(t, "", "-q", "-t", uniqueRepo("after-full"), budContext(t, "FROM busybox\nRUN echo fits > /fits\n", nil))
	ctr := s.workingContainer(t, "--pull", "never", id)
	if out := s.must(t, "run", ctr, "--", "cat", "/fits"); out != "fits\n" {
		t.Errorf("the build after the full disk holds %q", out)
	}
}

// usedBytes is how much of the filesystem at path is in use.
func usedBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}
