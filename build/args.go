package build

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// maxValue bounds an expanded ARG or ENV value: doubling a variable a few dozen times
// would otherwise take all the memory there is.
const maxValue = 1 << 20

// proxyArgs are Docker's predefined ARGs: usable by RUN without an ARG instruction when
// given with --build-arg, and kept out of the cache key and the image.
var proxyArgs = []string{
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
	"NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
}

// platformArgs are BuildKit's automatic platform ARGs for this host.
func platformArgs() map[string]string {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	return map[string]string{
		"TARGETPLATFORM": platform, "TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH, "TARGETVARIANT": "",
		"BUILDPLATFORM": platform, "BUILDOS": runtime.GOOS, "BUILDARCH": runtime.GOARCH, "BUILDVARIANT": "",
	}
}

// argScope holds the ARG values visible at one point of a stage, and the build-args the
// user gave.
type argScope struct {
	given map[string]string // --build-arg
	vars  map[string]string // ARGs declared so far in this scope
	order []string
	used  map[string]bool // --build-args consumed by some ARG
}

func newArgScope(given map[string]string, used map[string]bool) *argScope {
	return &argScope{given: given, vars: map[string]string{}, used: used}
}

// declare handles one `ARG name[=default]`: the --build-arg value wins, then the default
// (expanded against what is visible), then the inherited value from the global scope.
func (a *argScope) declare(kv instructions.KeyValuePairOptional, inherited map[string]string, expand func(string) (string, error)) error {
	value, ok := a.given[kv.Key]
	if ok {
		a.used[kv.Key] = true
	} else if kv.Value != nil {
		v, err := expand(*kv.Value)
		if err != nil {
			return err
		}
		value = v
	} else if v, found := inherited[kv.Key]; found {
		value = v
	} else if v, found := platformArgs()[kv.Key]; found {
		value = v
	} else {
		return a.declareUnset(kv.Key)
	}
	if len(value) > maxValue {
		return fmt.Errorf("the value of %s is over the limit of %d bytes", kv.Key, maxValue)
	}
	if _, seen := a.vars[kv.Key]; !seen {
		a.order = append(a.order, kv.Key)
	}
	a.vars[kv.Key] = value
	return nil
}

// declareUnset records an ARG with no value: it is visible (as empty) to the build but,
// as in Docker, not set in RUN's environment. Keep it out of vars.
func (a *argScope) declareUnset(string) error { return nil }

// proxyEnv returns the predefined proxy ARGs the user gave.
func (a *argScope) proxyEnv() []string {
	var out []string
	for _, k := range proxyArgs {
		if v, ok := a.given[k]; ok {
			out = append(out, k+"="+v)
			a.used[k] = true
		}
	}
	return out
}

// env returns the declared ARGs as KEY=VALUE, sorted (for cache keys).
func (a *argScope) env() []string {
	out := make([]string, 0, len(a.vars))
	for _, k := range slices.Sorted(maps.Keys(a.vars)) {
		out = append(out, k+"="+a.vars[k])
	}
	return out
}

// envGetter is what words of a Dockerfile are expanded against: ENV over ARG.
type envGetter struct {
	vals map[string]string
	keys []string
}

func newEnvGetter(args map[string]string, env []string) envGetter {
	g := envGetter{vals: map[string]string{}}
	for k, v := range args {
		g.vals[k] = v
	}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		g.vals[k] = v
	}
	g.keys = slices.Collect(maps.Keys(g.vals))
	sort.Strings(g.keys)
	return g
}

func (g envGetter) Get(k string) (string, bool) { v, ok := g.vals[k]; return v, ok }
func (g envGetter) Keys() []string              { return g.keys }

var _ shell.EnvGetter = envGetter{}
