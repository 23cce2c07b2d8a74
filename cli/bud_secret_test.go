package cli

import (
	"strings"
	"testing"

	"github.com/forge-build/forge/build"
)

func TestParseSecret(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TOKEN": "t0k", "API_KEY": "k3y"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in   string
		want build.Secret
		err  string
	}{
		{in: "id=a,src=/run/a.txt", want: build.Secret{ID: "a", File: "/run/a.txt"}},
		{in: "id=a,source=rel/a", want: build.Secret{ID: "a", File: "rel/a"}},
		{in: "id=tok,env=TOKEN", want: build.Secret{ID: "tok", Value: []byte("t0k")}},
		{in: "type=env,id=tok,src=TOKEN", want: build.Secret{ID: "tok", Value: []byte("t0k")}},
		{in: "id=API_KEY", want: build.Secret{ID: "API_KEY", Value: []byte("k3y")}},
		{in: "id=file.txt", want: build.Secret{ID: "file.txt", File: "file.txt"}},
		{in: `"id=a,b",src=/x`, want: build.Secret{ID: "a,b", File: "/x"}},
		{in: "src=/x", err: "id is required"},
		{in: "id=a,src=/x,env=TOKEN", err: "not both"},
		{in: "id=a,env=NOPE", err: "NOPE is not set"},
		{in: "id=a,type=ssh", err: "type must be"},
		{in: "id=a,mode=0400", err: "unknown key"},
		{in: "id=a,src", err: "not KEY=VALUE"},
	}
	for _, tt := range tests {
		got, err := parseSecret(tt.in, lookup)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "t0k") {
				t.Errorf("%q: the error shows a secret value: %v", tt.in, err)
			}
			continue
		}
		if err != nil || got.ID != tt.want.ID || got.File != tt.want.File || string(got.Value) != string(tt.want.Value) {
			t.Errorf("%q: %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}
