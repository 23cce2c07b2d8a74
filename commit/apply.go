package commit

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"golang.org/x/sys/unix"

	"github.com/forge-build/forge/storage"
)

// defaultShell runs CMD and ENTRYPOINT given in shell form when the config sets no SHELL.
func defaultShell() []string { return []string{"/bin/sh", "-c"} }

// Apply applies parsed changes to a config, in order, with Docker's semantics. Words of
// ENV, LABEL, EXPOSE, VOLUME, USER, WORKDIR and STOPSIGNAL are expanded against the
// config's environment as it stands when each change is applied. An ENTRYPOINT clears
// the Cmd unless a CMD came earlier in the same call, as in a Dockerfile stage.
func Apply(cfg *storage.ImageConfig, changes []Change) error {
	cmdSet := false
	for _, ch := range changes {
		x := expander{lex: shell.NewLex('\\'), env: shell.EnvsFromSlice(cfg.Config.Env)}
		if err := applyOne(cfg, ch, x, &cmdSet); err != nil {
			return &ChangeError{Change: ch.Text, Instruction: ch.Instruction, Err: err}
		}
	}
	return nil
}

// oneArgument reports whether an instruction's Args hold exactly one word.
func oneArgument(instruction string) bool {
	switch instruction {
	case "USER", "WORKDIR", "STOPSIGNAL", "MAINTAINER", "ONBUILD":
		return true
	}
	return false
}

func applyOne(cfg *storage.ImageConfig, ch Change, x expander, cmdSet *bool) error {
	if oneArgument(ch.Instruction) && len(ch.Args) != 1 {
		return fmt.Errorf("%s takes exactly one argument", ch.Instruction)
	}
	if ch.Instruction == "HEALTHCHECK" && ch.Health == nil {
		return errors.New("HEALTHCHECK without a health check")
	}
	c := &cfg.Config
	switch ch.Instruction {
	case "CMD":
		c.Cmd, *cmdSet = command(c.Shell, ch), true
	case "ENTRYPOINT":
		c.Entrypoint = command(c.Shell, ch)
		if !*cmdSet {
			c.Cmd = nil
		}
	case "SHELL":
		c.Shell = slices.Clone(ch.Args)
	case "ENV":
		return applyEnv(c, x, ch.Pairs)
	case "LABEL":
		return applyLabels(c, x, ch.Pairs)
	case "EXPOSE":
		return applyExpose(c, x, ch.Args)
	case "VOLUME":
		return applyVolumes(c, x, ch.Args)
	case "USER":
		return x.set(&c.User, ch.Args[0])
	case "WORKDIR":
		return applyWorkdir(c, x, ch.Args[0])
	case "STOPSIGNAL":
		return applyStopSignal(c, x, ch.Args[0])
	case "MAINTAINER":
		cfg.Author = ch.Args[0]
	case "ONBUILD":
		c.OnBuild = append(c.OnBuild, ch.Args[0])
	case "HEALTHCHECK":
		h := *ch.Health
		h.Test = slices.Clone(h.Test)
		c.Healthcheck = &h
	default:
		return fmt.Errorf("instruction %s cannot be a change", ch.Instruction)
	}
	return nil
}

// command builds the Cmd or Entrypoint of CMD or ENTRYPOINT.
func command(configShell []string, ch Change) []string {
	if ch.Args == nil {
		return nil
	}
	if !ch.ShellForm {
		return slices.Clone(ch.Args)
	}
	sh := configShell
	if len(sh) == 0 {
		sh = defaultShell()
	}
	return slices.Concat(sh, ch.Args)
}

// expander expands words the way a Dockerfile does, against one environment.
type expander struct {
	lex *shell.Lex
	env shell.EnvGetter
}

// anyValue is the environment of a trial expansion: every variable is set, to "1" (a
// valid port and signal number), so that only the syntax of a word can fail.
type anyValue struct{}

func (anyValue) Get(string) (string, bool) { return "1", true }
func (anyValue) Keys() []string            { return nil }

// check applies a change to an empty config with every variable set, to find what
// is wrong with it before it meets a real config.
func check(ch Change) error {
	cfg := storage.ScratchConfig()
	var cmdSet bool
	return applyOne(&cfg, ch, expander{lex: shell.NewLex('\\'), env: anyValue{}}, &cmdSet)
}

func (x expander) word(w string) (string, error) {
	out, _, err := x.lex.ProcessWord(w, x.env)
	return out, err
}

func (x expander) set(dst *string, w string) error {
	v, err := x.word(w)
	if err == nil {
		*dst = v
	}
	return err
}

// pairs expands all keys and values first: `ENV A=1 B=$A` sees the old A, as in Docker.
func (x expander) pairs(kvs []KeyValue) ([]KeyValue, error) {
	out := make([]KeyValue, 0, len(kvs))
	for _, kv := range kvs {
		k, err := x.word(kv.Key)
		if err != nil {
			return nil, err
		}
		v, err := x.word(kv.Value)
		if err != nil {
			return nil, err
		}
		if k == "" {
			return nil, errors.New("empty name")
		}
		out = append(out, KeyValue{Key: k, Value: v})
	}
	return out, nil
}

func applyEnv(c *storage.ContainerConfig, x expander, kvs []KeyValue) error {
	expanded, err := x.pairs(kvs)
	if err != nil {
		return err
	}
	for _, kv := range expanded {
		c.Env = setEnv(c.Env, kv.Key, kv.Value)
	}
	return nil
}

// setEnv replaces KEY's entry in place, or appends one.
func setEnv(env []string, key, value string) []string {
	entry := key + "=" + value
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env = slices.Clone(env)
			env[i] = entry
			return env
		}
	}
	return append(slices.Clip(env), entry)
}

func applyLabels(c *storage.ContainerConfig, x expander, kvs []KeyValue) error {
	expanded, err := x.pairs(kvs)
	if err != nil {
		return err
	}
	labels := maps.Clone(c.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	for _, kv := range expanded {
		labels[kv.Key] = kv.Value
	}
	c.Labels = labels
	return nil
}

func applyExpose(c *storage.ContainerConfig, x expander, specs []string) error {
	ports := maps.Clone(c.ExposedPorts)
	if ports == nil {
		ports = map[string]struct{}{}
	}
	for _, spec := range specs {
		words, err := x.lex.ProcessWords(spec, x.env)
		if err != nil {
			return err
		}
		for _, w := range words {
			ps, err := parsePorts(w)
			if err != nil {
				return err
			}
			for _, p := range ps {
				ports[p] = struct{}{}
			}
		}
	}
	c.ExposedPorts = ports
	return nil
}

func applyVolumes(c *storage.ContainerConfig, x expander, paths []string) error {
	vols := maps.Clone(c.Volumes)
	if vols == nil {
		vols = map[string]struct{}{}
	}
	for _, p := range paths {
		v, err := x.word(p)
		if err != nil {
			return err
		}
		if v == "" {
			return errors.New("VOLUME specified can not be an empty string")
		}
		vols[v] = struct{}{}
	}
	c.Volumes = vols
	return nil
}

// applyWorkdir resolves a relative WORKDIR against the current one, as Docker does.
func applyWorkdir(c *storage.ContainerConfig, x expander, w string) error {
	wd, err := x.word(w)
	if err != nil {
		return err
	}
	if !path.IsAbs(wd) {
		wd = path.Join("/", c.WorkingDir, wd)
	}
	c.WorkingDir = path.Clean(wd)
	return nil
}

func applyStopSignal(c *storage.ContainerConfig, x expander, w string) error {
	sig, err := x.word(w)
	if err != nil {
		return err
	}
	if err := checkSignal(sig); err != nil {
		return err
	}
	c.StopSignal = sig
	return nil
}

// parsePorts reads one EXPOSE word the way Docker does ([[IP:]HOSTPORT:]PORT[-END][/PROTO])
// and returns the exposed ports ("80/tcp"), a range expanded.
func parsePorts(spec string) ([]string, error) {
	rest, proto, found := strings.Cut(spec, "/")
	if !found || proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if i := strings.LastIndex(rest, ":"); i >= 0 {
		rest = rest[i+1:]
	}
	if rest == "" {
		return nil, fmt.Errorf("invalid port %q: no port given", spec)
	}
	first, last, err := portRange(rest)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q: %q is not a port number or range", spec, rest)
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid port %q: unknown protocol %q (want tcp, udp or sctp)", spec, proto)
	}
	out := make([]string, 0, last-first+1)
	for p := first; p <= last; p++ {
		out = append(out, strconv.FormatUint(p, 10)+"/"+proto)
	}
	return out, nil
}

func portRange(s string) (first, last uint64, err error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if first, err = strconv.ParseUint(lo, 10, 16); err != nil {
		return 0, 0, err
	}
	if !isRange {
		return first, first, nil
	}
	if last, err = strconv.ParseUint(hi, 10, 16); err != nil {
		return 0, 0, err
	}
	if last < first {
		return 0, 0, errors.New("range ends before it starts")
	}
	return first, last, nil
}

// checkSignal accepts what Docker's STOPSIGNAL accepts: a non-zero number, or a signal
// name with or without SIG (SIGTERM, TERM, RTMIN+3).
func checkSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n == 0 {
			return fmt.Errorf("invalid signal %q", s)
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if unix.SignalNum("SIG"+name) != 0 || realtimeSignal(name) {
		return nil
	}
	return fmt.Errorf("invalid signal %q", s)
}

// realtimeSignal reports whether name is RTMIN, RTMIN+1..15, RTMAX or RTMAX-1..14.
func realtimeSignal(name string) bool {
	for _, base := range []string{"RTMIN", "RTMAX"} {
		rest, ok := strings.CutPrefix(name, base)
		if !ok {
			continue
		}
		if rest == "" {
			return true
		}
		sign := "+"
		if base == "RTMAX" {
			sign = "-"
		}
		n, err := strconv.Atoi(strings.TrimPrefix(rest, sign))
		return strings.HasPrefix(rest, sign) && err == nil && n >= 1 && n <= 15 && (base == "RTMIN" || n <= 14)
	}
	return false
}
