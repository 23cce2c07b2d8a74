package build

import (
	"errors"
	"testing"
)

func TestContainerPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dest, workdir, want string
		err                 error
	}{
		{dest: "/app", want: "/app"},
		{dest: "/app/", want: "/app"},
		{dest: "app", workdir: "/srv", want: "/srv/app"},
		{dest: ".", workdir: "/srv", want: "/srv"},
		{dest: "a/../b", want: "/b"},
		{dest: "../../etc/passwd", workdir: "/srv", err: ErrOutsideRoot},
		{dest: "/../x", err: ErrOutsideRoot},
	}
	for _, tt := range tests {
		got, err := containerPath(tt.dest, tt.workdir)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("containerPath(%q, %q) = %q, %v; want %v", tt.dest, tt.workdir, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("containerPath(%q, %q) = %q, %v; want %q", tt.dest, tt.workdir, got, err, tt.want)
		}
	}
}

func TestParseChmod(t *testing.T) {
	t.Parallel()
	if m, err := parseChmod("0755"); err != nil || *m != 0o755 {
		t.Errorf("parseChmod(0755) = %v, %v", m, err)
	}
	for _, bad := range []string{"9", "rwx", "77777"} {
		if _, err := parseChmod(bad); err == nil {
			t.Errorf("parseChmod(%q) accepted", bad)
		}
	}
}
