package rootless

import (
	"os"
	"strings"
	"testing"
)

func TestParseIsolation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    Isolation
		wantErr bool
	}{
		{"", "", false},
		{"auto", "", false},
		{"chroot", IsolationChroot, false},
		{"namespaces", IsolationNamespaces, false},
		{"oci", "", true},
		{"Chroot", "", true},
	} {
		got, err := ParseIsolation(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseIsolation(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestChooseIsolationChroot: chroot as asked for root; an error naming the need for root
// otherwise (an ordinary user cannot chroot).
func TestChooseIsolationChroot(t *testing.T) {
	t.Parallel()
	got, err := ChooseIsolation(IsolationChroot, "FORGE_ISOLATION")
	if os.Geteuid() != 0 {
		if err == nil || !strings.Contains(err.Error(), "needs root") || !strings.Contains(err.Error(), "FORGE_ISOLATION") {
			t.Fatalf("as uid %d: want an error saying chroot needs root, got %v, %v", os.Geteuid(), got, err)
		}
		return
	}
	if err != nil || got.Isolation != IsolationChroot || got.Detected || got.Reason != "chosen with FORGE_ISOLATION" {
		t.Fatalf("as root: got %+v, %v", got, err)
	}
}

// TestChooseIsolationAuto: an ordinary user gets its user namespace; root gets what the
// probe finds, and a chroot it found says why.
func TestChooseIsolationAuto(t *testing.T) {
	t.Parallel()
	got, err := ChooseIsolation("", "--isolation")
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case os.Geteuid() != 0 && got.Isolation != IsolationNamespaces:
		t.Errorf("as uid %d: got %+v, want namespaces", os.Geteuid(), got)
	case got.Isolation == IsolationChroot && (!got.Detected || !strings.Contains(got.Reason, "cannot be made")):
		t.Errorf("a detected chroot must say why: %+v", got)
	}
}
