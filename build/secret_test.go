package build

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSecretValue(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(file, []byte("from-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := []Secret{{ID: "a", Value: []byte("old")}, {ID: "f", File: file}, {ID: "a", Value: []byte("new")},
		{ID: "gone", File: filepath.Join(t.TempDir(), "missing")}}
	for id, want := range map[string]string{"a": "new", "f": "from-file"} {
		v, ok, err := secretValue(secrets, id)
		if err != nil || !ok || string(v) != want {
			t.Errorf("%s: %q %v %v, want %q", id, v, ok, err, want)
		}
	}
	if _, ok, err := secretValue(secrets, "none"); ok || err != nil {
		t.Errorf("unknown id: ok %v, err %v", ok, err)
	}
	if _, _, err := secretValue(secrets, "gone"); err == nil {
		t.Error("a missing secret file gives no error")
	}
}

func TestWriteSecretFile(t *testing.T) {
	t.Parallel()
	mode := uint64(0o440)
	for _, m := range []runMount{{id: "d"}, {id: "m", mode: &mode}} {
		file, dir, err := writeSecretFile([]byte("v"), m)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(file)
		want := os.FileMode(0o400)
		if m.mode != nil {
			want = 0o440
		}
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want mode %o", m.id, fi.Mode(), err, want)
		}
		if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
			t.Errorf("%s: the secret's directory is %v, want 0700", m.id, di.Mode())
		}
		os.RemoveAll(dir)
	}
}

// A required secret that no --secret gives fails the step; an optional one is skipped.
func TestSecretMountMissing(t *testing.T) {
	t.Parallel()
	r := &stageRun{b: &builder{}}
	set := &mountSet{}
	err := r.secretMount(plannedMount{runMount: runMount{typ: "secret", id: "x", target: "/run/secrets/x", required: true}}, set)
	if !errors.Is(err, ErrMissingSecret) {
		t.Errorf("required: %v, want ErrMissingSecret", err)
	}
	if err := r.secretMount(plannedMount{runMount: runMount{typ: "secret", id: "x", target: "/run/secrets/x"}}, set); err != nil || len(set.volumes) != 0 {
		t.Errorf("optional: %v, volumes %v", err, set.volumes)
	}
}
