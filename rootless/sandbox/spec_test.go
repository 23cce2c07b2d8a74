package sandbox_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/forge-build/forge/rootless/sandbox"
)

func TestSpecUser(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	tests := []struct {
		user     string
		uid, gid uint32
		groups   []uint32
		home     string
		wantErr  bool
	}{
		{user: "", uid: 0, gid: 0, home: "/root"},
		{user: "root", uid: 0, gid: 0, home: "/root"},
		{user: "user", uid: 1000, gid: 1000, groups: []uint32{2000}, home: "/home/user"},
		{user: "1000", uid: 1000, gid: 1000, groups: []uint32{2000}, home: "/home/user"},
		{user: "1000:2000", uid: 1000, gid: 2000, home: "/home/user"},
		{user: "user:extra", uid: 1000, gid: 2000, home: "/home/user"},
		{user: "5000", uid: 5000, gid: 0, home: "/"}, // numeric, not in passwd: allowed
		{user: "5000:5001", uid: 5000, gid: 5001, home: "/"},
		{user: "nosuch", wantErr: true},
		{user: "user:nogroup", wantErr: true},
	}
	for _, tt := range tests {
		t.Run("user="+tt.user, func(t *testing.T) {
			spec, err := sandbox.Spec(sandbox.Config{RootFS: root, Args: []string{"id"}, User: tt.user})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Spec(User %q) = nil error, want one", tt.user)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u := spec.Process.User
			if u.UID != tt.uid || u.GID != tt.gid || !slices.Equal(u.AdditionalGids, tt.groups) {
				t.Errorf("user %q = %d:%d %v, want %d:%d %v", tt.user, u.UID, u.GID, u.AdditionalGids, tt.uid, tt.gid, tt.groups)
			}
			if !slices.Contains(spec.Process.Env, "HOME="+tt.home) {
				t.Errorf("env %v lacks HOME=%s", spec.Process.Env, tt.home)
			}
		})
	}
}

// A /etc/passwd that is a symlink to a host path must be read inside the rootfs.
func TestSpecPasswdSymlinkStaysInside(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	host := filepath.Join(t.TempDir(), "shadow")
	mustWrite(t, host, "evil:x:0:0::/evil:/bin/sh\n", 0o644)
	if err := os.Remove(filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := sandbox.Spec(sandbox.Config{RootFS: root, Args: []string{"id"}, User: "evil"}); err == nil {
		t.Fatal("user evil resolved from the host's file")
	}
	// The same path inside the rootfs is what counts.
	inside := filepath.Join(root, host)
	mustMkdir(t, filepath.Dir(inside))
	mustWrite(t, inside, "good:x:7:8::/good:/bin/sh\n", 0o644)
	spec, err := sandbox.Spec(sandbox.Config{RootFS: root, Args: []string{"id"}, User: "good"})
	if err != nil {
		t.Fatal(err)
	}
	if u := spec.Process.User; u.UID != 7 || u.GID != 8 {
		t.Errorf("user good = %d:%d, want 7:8", u.UID, u.GID)
	}
}

// TestSpecShape is one table of spec properties: long because the table is.
func TestSpecShape(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	vol := t.TempDir()
	tests := []struct {
		name  string
		cfg   sandbox.Config
		check func(t *testing.T, s *specs.Spec)
	}{
		{"defaults", sandbox.Config{}, func(t *testing.T, s *specs.Spec) {
			if hasNS(s, specs.NetworkNamespace) || !hasNS(s, specs.PIDNamespace) || !hasNS(s, specs.MountNamespace) {
				t.Errorf("namespaces %v", s.Linux.Namespaces)
			}
			if s.Process.Cwd != "/" || s.Hostname == "" || s.Root.Path != root {
				t.Errorf("cwd %q hostname %q root %q", s.Process.Cwd, s.Hostname, s.Root.Path)
			}
			if !slices.Contains(s.Process.Env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
				t.Errorf("no default PATH in %v", s.Process.Env)
			}
			if !slices.Contains(s.Process.Capabilities.Effective, "CAP_CHOWN") || slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") {
				t.Errorf("capabilities %+v", s.Process.Capabilities)
			}
			if !hasMount(s, "/proc") || !hasMount(s, "/dev/pts") || !hasMount(s, "/etc/resolv.conf") || !hasMount(s, "/sys") {
				t.Errorf("mounts %v", s.Mounts)
			}
		}},
		{"network none", sandbox.Config{Network: "none"}, func(t *testing.T, s *specs.Spec) {
			if !hasNS(s, specs.NetworkNamespace) {
				t.Errorf("no network namespace in %v", s.Linux.Namespaces)
			}
		}},
		{"non-root has no capabilities", sandbox.Config{User: "user"}, func(t *testing.T, s *specs.Spec) {
			c := s.Process.Capabilities
			if len(c.Effective)+len(c.Permitted)+len(c.Inheritable)+len(c.Ambient) != 0 {
				t.Errorf("capabilities %+v", c)
			}
		}},
		{"env", sandbox.Config{Env: []string{"PATH=/bin", "A=1", "A=2"}, TTY: true, WorkDir: "work"}, func(t *testing.T, s *specs.Spec) {
			want := []string{"PATH=/bin", "A=2", "HOME=/root", "TERM=xterm"}
			if !slices.Equal(s.Process.Env, want) || s.Process.Cwd != "/work" || !s.Process.Terminal {
				t.Errorf("env %v cwd %q, want %v /work", s.Process.Env, s.Process.Cwd, want)
			}
		}},
		{"volume", sandbox.Config{Volumes: []sandbox.Volume{{Source: vol, Dest: "/v", ReadOnly: true}}}, func(t *testing.T, s *specs.Spec) {
			m := s.Mounts[len(s.Mounts)-1]
			if m.Destination != "/v" || m.Source != vol || !slices.Contains(m.Options, "ro") {
				t.Errorf("volume mount %+v", m)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.RootFS, tt.cfg.Args = root, []string{"true"}
			s, err := sandbox.Spec(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestSpecErrors(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name string
		cfg  sandbox.Config
		is   error
	}{
		{"no rootfs", sandbox.Config{Args: []string{"true"}}, nil},
		{"missing rootfs", sandbox.Config{RootFS: missing, Args: []string{"true"}}, fs.ErrNotExist},
		{"no command", sandbox.Config{RootFS: root}, nil},
		{"bad network", sandbox.Config{RootFS: root, Args: []string{"true"}, Network: "bridge"}, nil},
		{"volume source missing", sandbox.Config{RootFS: root, Args: []string{"true"},
			Volumes: []sandbox.Volume{{Source: missing, Dest: "/v"}}}, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sandbox.Spec(tt.cfg)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("Spec = %v, want an error (is %v)", err, tt.is)
			}
		})
	}
}

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

func hasMount(s *specs.Spec, dest string) bool {
	for _, m := range s.Mounts {
		if m.Destination == dest {
			return true
		}
	}
	return false
}
