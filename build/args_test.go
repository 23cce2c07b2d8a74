package build

import (
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func TestArgScope(t *testing.T) {
	t.Parallel()
	used := map[string]bool{}
	a := newArgScope(map[string]string{"GIVEN": "cli", "UNUSED": "x"}, used)
	global := map[string]string{"FROMGLOBAL": "g"}
	lex := newLex('\\')
	expand := func(w string) (string, error) {
		out, _, err := lex.ProcessWord(w, newEnvGetter(a.vars, nil))
		return out, err
	}
	def := func(s string) *string { return &s }
	for _, kv := range []instructions.KeyValuePairOptional{
		{Key: "GIVEN", Value: def("default")},
		{Key: "DEF", Value: def("${GIVEN}-x")},
		{Key: "FROMGLOBAL"},
		{Key: "TARGETARCH"},
		{Key: "NOVALUE"},
	} {
		if err := a.declare(kv, global, expand); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"GIVEN": "cli", "DEF": "cli-x", "FROMGLOBAL": "g", "TARGETARCH": platformArgs()["TARGETARCH"]}
	for k, v := range want {
		if a.vars[k] != v {
			t.Errorf("%s = %q, want %q", k, a.vars[k], v)
		}
	}
	if _, ok := a.vars["NOVALUE"]; ok {
		t.Error("an ARG without a value is set")
	}
	if !used["GIVEN"] || used["UNUSED"] {
		t.Errorf("used = %v", used)
	}
}

func TestArgValueBounded(t *testing.T) {
	t.Parallel()
	a := newArgScope(nil, map[string]bool{})
	big := strings.Repeat("x", maxValue/2+1)
	a.vars["A"] = big
	lex := newLex('\\')
	expand := func(w string) (string, error) {
		out, _, err := lex.ProcessWord(w, newEnvGetter(a.vars, nil))
		return out, err
	}
	v := "${A}${A}"
	if err := a.declare(instructions.KeyValuePairOptional{Key: "B", Value: &v}, nil, expand); err == nil {
		t.Fatal("a doubled ARG past the limit was accepted")
	}
}
