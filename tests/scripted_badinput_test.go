package tests

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Bad input to the scripted-build verbs (issue 3): each is one clear
// `forge: ` line, a non-zero exit, and no change to the store.

// ctrSummary is a comparable form of the working containers: "ID name image" sorted.
func ctrSummary(t *testing.T, s *store) []string {
	t.Helper()
	var out []string
	for _, c := range s.ctrList(t) {
		out = append(out, c.ID+" "+c.Name+" "+c.ImageID)
	}
	return sorted(out)
}

func TestScriptedBadInput(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctr := s.workingContainer(t, "-q", "busybox")
	s.must(t, "run", ctr, "--", "sh", "-c", "echo before > /state")
	ctx := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctx, "file"), []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notKnown := []string{"not known", "no such container", "unknown container", "not found", "does not exist"}

	cases := []struct {
		name  string
		args  []string
		names string   // the error must contain this (what was wrong)
		words []string // and one of these (why)
	}{
		{"run of an unknown container", []string{"run", "no-such-ctr", "--", "true"}, "no-such-ctr", notKnown},
		{"commit of an unknown container", []string{"commit", "no-such-ctr", "localhost/x"}, "no-such-ctr", notKnown},
		{"copy into an unknown container", []string{"copy", "--contextdir", ctx, "no-such-ctr", "file", "/x"}, "no-such-ctr", notKnown},
		{"add into an unknown container", []string{"add", "--contextdir", ctx, "no-such-ctr", "file", "/x"}, "no-such-ctr", notKnown},
		{"config of an unknown container", []string{"config", "--cmd", "ls", "no-such-ctr"}, "no-such-ctr", notKnown},
		{"rm of an unknown container", []string{"rm", "no-such-ctr"}, "no-such-ctr", notKnown},
		{"from an image not in the store with --pull never", []string{"from", "--pull", "never", "localhost/no-such-image"}, "no-such-image", []string{"not known", "not found", "never", "unknown"}},
		{"commit -c RUN (unsupported)", []string{"commit", "-c", "RUN x", ctr, "localhost/x"}, "RUN", []string{"unsupported", "not supported", "cannot"}},
		{"commit -c FOO (unknown)", []string{"commit", "-c", "FOO bar", ctr, "localhost/x"}, "FOO", []string{"unknown", "invalid"}},
		{"commit -c ENV without arguments", []string{"commit", "-c", "ENV", ctr, "localhost/x"}, "ENV", []string{"requires", "argument", "invalid", "missing"}},
		{"commit -c EXPOSE of a non-port", []string{"commit", "-c", "EXPOSE notaport", ctr, "localhost/x"}, "notaport", []string{"invalid", "port"}},
		{"copy of a missing source", []string{"copy", "--contextdir", ctx, ctr, "missing-file", "/x"}, "missing-file", []string{"no such file", "not exist", "not found"}},
		{"copy of a source escaping the context", []string{"copy", "--contextdir", ctx, ctr, "../../etc/passwd", "/x"}, "../../etc/passwd", []string{"outside", "escape", "context"}},
		{"run with a missing volume source", []string{"run", "-v", "/nonexistent-forge-src:/x", ctr, "--", "true"}, "/nonexistent-forge-src", []string{"not exist", "no such file", "not found", "missing"}},
		{"run with a volume without a destination", []string{"run", "-v", ctx, ctr, "--", "true"}, "--volume", []string{"SRC:DEST", "destination", "invalid"}},
		{"run with an unknown network mode", []string{"run", "--network", "bogus", ctr, "--", "true"}, "bogus", []string{"host or none", "invalid", "unknown", "want"}},
		{"run as an unknown user", []string{"run", "--user", "no-such-user", ctr, "--", "true"}, "no-such-user", []string{"unable to find", "not found", "no such", "unknown", "no matching"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			imagesBefore, ctrsBefore := summary(s.images(t)), ctrSummary(t, s)
			line := oneLineError(t, s.run(t, c.args...), c.words...)
			if !strings.Contains(line, c.names) {
				t.Errorf("the error does not name %q: %s", c.names, line)
			}
			if after := summary(s.images(t)); !slices.Equal(imagesBefore, after) {
				t.Errorf("the images changed:\nbefore %q\nafter  %q", imagesBefore, after)
			}
			if after := ctrSummary(t, s); !slices.Equal(ctrsBefore, after) {
				t.Errorf("the containers changed:\nbefore %q\nafter  %q", ctrsBefore, after)
			}
		})
	}
	if r := s.run(t, "run", ctr, "--", "test", "-e", "/x"); r.code == 0 {
		t.Errorf("a failed command created /x in the container")
	}
	if got := s.must(t, "run", ctr, "--", "cat", "/state"); got != "before\n" {
		t.Errorf("the container's files changed: /state is %q", got)
	}
}

// TestScriptedCopyThroughSymlinks: a destination through a symlink in the
// container that points to / or out of the root never writes outside the
// container's root: forge resolves the link inside the root (as Docker does)
// or refuses.
func TestScriptedCopyThroughSymlinks(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctr := s.workingContainer(t, "-q", "busybox")
	ctx := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctx, "file"), []byte("payload\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A host directory the user the container's root maps to can write: a
	// link followed on the host would land here.
	host := t.TempDir()
	up := strings.Repeat("../", 12)
	s.must(t, "run", ctr, "--", "sh", "-c", strings.Join([]string{
		"ln -s / /evil-root",
		"ln -s ../../.. /evil-up",
		"mkdir -p /d && ln -s " + up + strings.TrimPrefix(host, "/") + " /d/evil-rel",
		"ln -s " + host + " /evil-abs",
		"ln -s " + host + "/target-file /evil-file",
	}, " && "))

	cases := []struct {
		dest   string
		inside []string // where the file may land in the container (the first is also checked on the host)
	}{
		{"/evil-root" + host + "/a", []string{host + "/a"}},
		{"/evil-up" + host + "/b", []string{host + "/b"}},
		{"/d/evil-rel/c", []string{host + "/c"}},
		{"/evil-abs/d", []string{host + "/d"}},
		{"/evil-file", []string{host + "/target-file", "/evil-file"}}, // followed in the root, or the link replaced
		{"/evil-root/etc/forge-escape-e", []string{"/etc/forge-escape-e"}},
	}
	for _, c := range cases {
		t.Run(c.dest, func(t *testing.T) {
			r := s.run(t, "copy", "--contextdir", ctx, ctr, "file", c.dest)
			if names, err := dirNames(host); err != nil || len(names) != 0 {
				t.Fatalf("copy to %s wrote outside the container root, into the host's %s: %q (err %v)", c.dest, host, names, err)
			}
			if _, err := os.Lstat(c.inside[0]); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("copy to %s: the host has %s (err %v)", c.dest, c.inside[0], err)
			}
			if r.code != 0 {
				oneLineError(t, r) // refusing is fine, with a clear error
				return
			}
			// Resolved inside the root: the file is in the container where the
			// link points when the container's root is /.
			for _, p := range c.inside {
				if got := s.run(t, "run", ctr, "--", "cat", p); got.code == 0 && got.stdout == "payload\n" {
					return
				}
			}
			t.Errorf("copy to %s succeeded, but none of %q holds the file in the container", c.dest, c.inside)
		})
	}
	// The links themselves are unchanged.
	if got := s.must(t, "run", ctr, "--", "sh", "-c", "readlink /evil-root; readlink /evil-abs"); got != "/\n"+host+"\n" {
		t.Errorf("the links in the container changed: %q", got)
	}
}
