package cli

import (
	"reflect"
	"testing"

	"github.com/forge-build/forge/storage"
)

func TestCommandValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		shell bool
		want  []string
		bad   bool
	}{
		{in: `["redis-server","--port","1"]`, want: []string{"redis-server", "--port", "1"}},
		{in: `redis-server --port 1`, want: []string{"redis-server", "--port", "1"}},
		{in: `sh -c 'echo "a b"'`, want: []string{"sh", "-c", `echo "a b"`}},
		{in: `a\ b "c\"d"`, want: []string{"a b", `c"d`}},
		{in: `echo hi`, shell: true, want: []string{"/bin/sh", "-c", "echo hi"}},
		{in: `["/bin/sh","-c"]`, shell: true, want: []string{"/bin/sh", "-c"}},
		{in: ``, want: nil},
		{in: `[`, bad: true},
		{in: `echo 'x`, bad: true},
	}
	for _, tt := range tests {
		got, err := commandValue(tt.in, tt.shell)
		if tt.bad {
			if err == nil {
				t.Errorf("commandValue(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("commandValue(%q, %v) = %q, %v; want %q", tt.in, tt.shell, got, err, tt.want)
		}
	}
}

func strp(s string) *string { return &s }

func TestApplyConfigFlags(t *testing.T) {
	t.Parallel()
	cfg := storage.ScratchConfig()
	cfg.Config.Env = []string{"PATH=/bin", "OLD=1"}
	cfg.Config.Labels = map[string]string{"gone": "x"}
	err := applyConfigFlags(&cfg, configFlags{
		cmd: strp("redis-server"), entrypoint: strp(`["/bin/sh","-c"]`), workingDir: strp("/data"), user: strp("1000"),
		env: []string{"A=1", "OLD-", "PATH=/usr/bin"}, labels: []string{"k=v", "gone-"}, ports: []string{"6379", "53/udp"},
		volumes: []string{"/data"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if !reflect.DeepEqual(c.Cmd, []string{"redis-server"}) || !reflect.DeepEqual(c.Entrypoint, []string{"/bin/sh", "-c"}) ||
		c.WorkingDir != "/data" || c.User != "1000" {
		t.Errorf("cmd/entrypoint/workdir/user wrong: %+v", c)
	}
	if !reflect.DeepEqual(c.Env, []string{"A=1", "PATH=/usr/bin"}) {
		t.Errorf("Env = %q", c.Env)
	}
	if !reflect.DeepEqual(c.Labels, map[string]string{"k": "v"}) {
		t.Errorf("Labels = %v", c.Labels)
	}
	if _, ok := c.ExposedPorts["6379/tcp"]; !ok || len(c.ExposedPorts) != 2 {
		t.Errorf("ExposedPorts = %v", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("Volumes = %v", c.Volumes)
	}
	for _, bad := range []configFlags{
		{env: []string{"=x"}}, {labels: []string{"novalue"}}, {ports: []string{"http"}}, {ports: []string{"80/xyz"}},
		{volumes: []string{"relative"}}, {shell: strp("bash")}, {cmd: strp("[1,2")},
	} {
		c := storage.ScratchConfig()
		if err := applyConfigFlags(&c, bad); err == nil {
			t.Errorf("applyConfigFlags(%+v) accepted bad input", bad)
		}
	}
}
