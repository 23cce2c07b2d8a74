package build

import (
	"errors"
	"strings"
	"testing"

	"github.com/forge-build/forge/rootless/sandbox"
)

func mountsOf(t *testing.T, flags string, vars map[string]string, workdir string) ([]runMount, error) {
	t.Helper()
	c := runCommand(t, "RUN "+flags+" true\n")
	expand := func(w string) (string, error) {
		out, _, err := newLex('\\').ProcessWord(w, newEnvGetter(vars, nil))
		return out, err
	}
	return parseRunMounts(c, expand, workdir)
}

func TestParseRunMounts(t *testing.T) {
	t.Parallel()
	u := func(v uint64) *uint64 { return &v }
	tests := []struct {
		name, flags, workdir string
		want                 runMount
	}{
		{"bind defaults", "--mount=target=/src", "/",
			runMount{typ: "bind", target: "/src", readOnly: true}},
		{"bind rw, relative target and source", "--mount=type=bind,source=./a/../b,target=src,rw", "/w",
			runMount{typ: "bind", target: "/w/src", source: "b", readOnly: false}},
		{"source .. stops at the root", "--mount=type=bind,source=../../etc,target=/x", "/",
			runMount{typ: "bind", target: "/x", source: "etc", readOnly: true}},
		{"absolute source is inside the root", "--mount=type=bind,from=s,source=/etc/passwd,target=/x", "/",
			runMount{typ: "bind", target: "/x", from: "s", source: "etc/passwd", readOnly: true}},
		{"target .. stops at the root", "--mount=type=tmpfs,target=../../../tmp/t", "/a",
			runMount{typ: "tmpfs", target: "/tmp/t"}},
		{"cache id defaults to the target as written", "--mount=type=cache,target=go/cache", "/w",
			runMount{typ: "cache", target: "/w/go/cache", id: "go/cache", sharing: "shared"}},
		{"cache options", "--mount=type=cache,id=$ID,target=/c,sharing=locked,mode=0700,uid=1000,gid=2,ro", "/",
			runMount{typ: "cache", target: "/c", id: "gomod", sharing: "locked", readOnly: true, mode: u(0o700), uid: u(1000), gid: u(2)}},
		{"tmpfs size", "--mount=type=tmpfs,target=/t,size=1m", "/",
			runMount{typ: "tmpfs", target: "/t", size: 1 << 20}},
		{"secret default target", "--mount=type=secret,id=tok", "/w",
			runMount{typ: "secret", target: "/run/secrets/tok", id: "tok", readOnly: true}},
		{"secret id from the target", "--mount=type=secret,target=/root/.npmrc,required", "/",
			runMount{typ: "secret", target: "/root/.npmrc", id: ".npmrc", required: true, readOnly: true}},
		{"secret as env only", "--mount=type=secret,id=tok,env=TOKEN", "/",
			runMount{typ: "secret", id: "tok", env: "TOKEN", readOnly: true}},
		{"secret as env and file", "--mount=type=secret,id=tok,env=TOKEN,target=/t,mode=0440", "/",
			runMount{typ: "secret", target: "/t", id: "tok", env: "TOKEN", readOnly: true, mode: u(0o440)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := mountsOf(t, tt.flags, map[string]string{"ID": "gomod"}, tt.workdir)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].keyText("") != tt.want.keyText("") || got[0].from != tt.want.from {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// Mount options come from a fixed list per type: an unknown key, or one that does not
// apply to the type, is an error (CVE-2024-9407 class: nothing reaches mount(2) unchecked).
func TestParseRunMountsRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, flags, want string }{
		{"unknown key", "--mount=type=bind,target=/x,bind-propagation=shared", "bind-propagation"},
		{"mount(2) option", "--mount=type=tmpfs,target=/x,exec", "exec"},
		{"unknown key with a value", "--mount=type=cache,target=/x,options=suid", "options"},
		{"unknown type", "--mount=type=overlay,target=/x", "overlay"},
		{"ssh", "--mount=type=ssh", "not supported yet"},
		{"id on a bind", "--mount=type=bind,id=x,target=/x", "id"},
		{"from on a tmpfs", "--mount=type=tmpfs,from=a,target=/x", "from"},
		{"source on a tmpfs", "--mount=type=tmpfs,source=a,target=/x", "source"},
		{"env on a cache", "--mount=type=cache,env=X,target=/x", "env"},
		{"size on a cache", "--mount=type=cache,size=1m,target=/x", "size"},
		{"sharing on a bind", "--mount=type=bind,sharing=locked,target=/x", "sharing"},
		{"mode on a bind", "--mount=type=bind,mode=0777,target=/x", "mode"},
		{"required on a cache", "--mount=type=cache,required,target=/x", "required"},
		{"bad sharing", "--mount=type=cache,sharing=all,target=/x", "sharing"},
		{"bad mode", "--mount=type=cache,mode=999,target=/x", "mode"},
		{"no target", "--mount=type=cache", "target is required"},
		{"target /", "--mount=type=tmpfs,target=/../", "invalid target"},
		{"two mounts at one target", "--mount=type=tmpfs,target=/x --mount=type=cache,target=/x/", "two mounts"},
		{"secret without id or target", "--mount=type=secret,env=X", "source, target required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := mountsOf(t, tt.flags, nil, "/")
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line with %q", err, tt.want)
			}
			// Without variables, parsing the Dockerfile already says so, at the line.
			_, err = ParseDockerfile(strings.NewReader("FROM busybox\nRUN "+tt.flags+" true\n"), "Dockerfile")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "Dockerfile:2: ") {
				t.Errorf("parse: error %v, want Dockerfile:2: ... %q", err, tt.want)
			}
		})
	}
}

// The parse-time check refuses what it can see without the values of variables, naming
// the line; the rest waits for the step.
func TestCheckRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		ok   bool
		want string
	}{
		{"RUN --mount=type=cache,target=/c --network=none true\n", true, ""},
		{"RUN --mount=type=cache,target=/c,mode=$M true\n", true, ""},
		{"RUN --security=sandbox true\n", true, ""},
		{"RUN --mount=type=ssh ssh git@host\n", false, "type=ssh is not supported yet"},
		{"RUN --mount=type=bind,target=/x,bogus=1 true\n", false, "bogus"},
		{"RUN --security=insecure true\n", false, "--security=insecure is not supported yet"},
		{"RUN --device=/dev/fuse true\n", false, "--device is not supported yet"},
		{"RUN --network=bridge true\n", false, "bridge"},
	}
	for _, tt := range tests {
		_, err := ParseDockerfile(strings.NewReader("FROM busybox\n"+tt.text), "Dockerfile")
		if tt.ok != (err == nil) || err != nil && (!strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "Dockerfile:2: ")) {
			t.Errorf("%q: error %v, want ok=%v or Dockerfile:2 ... %q", tt.text, err, tt.ok, tt.want)
		}
		if strings.Contains(tt.want, "not supported") && !errors.Is(err, ErrNotSupported) {
			t.Errorf("%q: %v is not ErrNotSupported", tt.text, err)
		}
	}
}

// A mount's spec is in the step's cache key; a secret's value never is.
func TestMountKeyText(t *testing.T) {
	t.Parallel()
	a, err := mountsOf(t, "--mount=type=cache,target=/c,id=a", nil, "/")
	if err != nil {
		t.Fatal(err)
	}
	b, err := mountsOf(t, "--mount=type=cache,target=/c,id=b", nil, "/")
	if err != nil {
		t.Fatal(err)
	}
	if a[0].keyText("") == b[0].keyText("") {
		t.Error("changing the cache id does not change the key")
	}
	if a[0].keyText("image:1") == a[0].keyText("image:2") {
		t.Error("changing what from names does not change the key")
	}
}

// TestCheckVolumes: a RUN mount, or the heredoc scripts' directory, at, inside or around
// a --volume's destination is refused, naming both; others pass.
func TestCheckVolumes(t *testing.T) {
	vols := []sandbox.Volume{{Source: "/host/a", Dest: "/vol"}, {Source: "/host/b", Dest: "/srv/data/"}}
	for _, tc := range []struct {
		targets []string
		heredoc bool
		want    string // "" when allowed
	}{
		{targets: []string{"/cache", "/volume", "/srv/datax"}},
		{targets: []string{"/vol"}, want: "RUN --mount target /vol overlaps --volume destination /vol"},
		{targets: []string{"/vol/c"}, want: "target /vol/c overlaps --volume destination /vol"},
		{targets: []string{"/srv"}, want: "target /srv overlaps --volume destination /srv/data"},
		{targets: []string{"/"}, want: "target / overlaps"},
		{heredoc: true},
	} {
		var mounts []runMount
		for _, target := range tc.targets {
			mounts = append(mounts, runMount{target: target})
		}
		mounts = append(mounts, runMount{}) // a secret given as an environment variable only
		err := checkVolumes(vols, mounts, tc.heredoc)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("targets %v: %v, want %q", tc.targets, err, tc.want)
		}
	}
	if err := checkVolumes([]sandbox.Volume{{Source: "/h", Dest: "/dev"}}, nil, true); err == nil ||
		!strings.Contains(err.Error(), "heredoc scripts, /dev/pipes, overlaps --volume destination /dev") {
		t.Errorf("a volume around the heredoc directory: %v", err)
	}
}
