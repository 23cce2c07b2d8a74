package commit

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/forge-build/forge/storage"
)

// Change is one parsed --change instruction, as plain data. Words that Docker expands
// ($VAR) are kept unexpanded: Apply expands them against the config's environment at the
// point the change is applied, as `docker commit --change` does.
type Change struct {
	Text        string // the change as given, for errors
	Instruction string // upper case: CMD, ENV, LABEL, ...
	// Args holds the command of CMD, ENTRYPOINT and SHELL, the ports of EXPOSE, the paths
	// of VOLUME, or the single argument of USER, WORKDIR, STOPSIGNAL, MAINTAINER and
	// ONBUILD (the raw trigger text).
	Args []string
	// ShellForm is set for CMD and ENTRYPOINT given as a string rather than a JSON array:
	// the command then runs through the config's shell (default /bin/sh -c).
	ShellForm bool
	Pairs     []KeyValue            // ENV and LABEL
	Health    *storage.HealthConfig // HEALTHCHECK
}

// KeyValue is one KEY=VALUE of ENV or LABEL.
type KeyValue struct{ Key, Value string }

// ErrUnsupportedInstruction is the cause of a ChangeError for an instruction that changes
// files or the build rather than the configuration (RUN, COPY, ADD, FROM, ARG).
var ErrUnsupportedInstruction = errors.New("unsupported instruction in --change")

// ChangeError says which change was wrong and why.
type ChangeError struct {
	Change      string // the change as given
	Instruction string // upper case, when known
	Err         error
}

func (e *ChangeError) Error() string {
	if errors.Is(e.Err, ErrUnsupportedInstruction) {
		return fmt.Sprintf("%v: %s", e.Err, e.Instruction)
	}
	return fmt.Sprintf("--change %q: %v", e.Change, e.Err)
}

func (e *ChangeError) Unwrap() error { return e.Err }

// unsupported reports whether an instruction cannot be a change.
func unsupported(instruction string) bool {
	switch instruction {
	case "RUN", "COPY", "ADD", "FROM", "ARG":
		return true
	}
	return false
}

// ParseChanges parses -c/--change instructions with BuildKit's Dockerfile parser.
func ParseChanges(changes []string) ([]Change, error) {
	out := make([]Change, 0, len(changes))
	for _, text := range changes {
		ch, err := parseChange(text)
		if err != nil {
			return nil, err
		}
		out = append(out, ch)
	}
	return out, nil
}

func parseChange(text string) (Change, error) {
	fail := func(instr string, err error) (Change, error) {
		return Change{}, &ChangeError{Change: text, Instruction: instr, Err: err}
	}
	if strings.TrimSpace(text) == "" {
		return fail("", errors.New("empty change"))
	}
	res, err := parser.Parse(strings.NewReader(text))
	if err != nil {
		return fail("", parseMessage(err))
	}
	switch n := len(res.AST.Children); {
	case n == 0:
		return fail("", errors.New("no instruction"))
	case n > 1:
		return fail("", fmt.Errorf("%d instructions; give one per --change", n))
	}
	node := res.AST.Children[0]
	instr := strings.ToUpper(node.Value)
	if unsupported(instr) {
		return fail(instr, ErrUnsupportedInstruction)
	}
	cmd, err := instructions.ParseInstruction(node)
	if err != nil {
		return fail(instr, parseMessage(err))
	}
	ch, err := fromInstruction(cmd)
	if err != nil {
		return fail(instr, err)
	}
	ch.Text, ch.Instruction = text, instr
	if err := check(ch); err != nil {
		return fail(instr, err)
	}
	return ch, nil
}

// parseMessage drops the parser's location and stack: a change is one line.
func parseMessage(err error) error {
	var loc *parser.LocationError
	if errors.As(err, &loc) && loc.Unwrap() != nil {
		return loc.Unwrap()
	}
	return err
}

// fromInstruction converts a typed BuildKit instruction to a Change.
func fromInstruction(cmd any) (Change, error) {
	switch c := cmd.(type) {
	case *instructions.CmdCommand:
		return Change{Args: c.CmdLine, ShellForm: c.PrependShell}, nil
	case *instructions.EntrypointCommand:
		return Change{Args: c.CmdLine, ShellForm: c.PrependShell}, nil
	case *instructions.ShellCommand:
		return Change{Args: c.Shell}, nil
	case *instructions.EnvCommand:
		return Change{Pairs: pairs(c.Env)}, nil
	case *instructions.LabelCommand:
		return Change{Pairs: pairs(c.Labels)}, nil
	case *instructions.ExposeCommand:
		return Change{Args: c.Ports}, nil
	case *instructions.VolumeCommand:
		return Change{Args: c.Volumes}, nil
	case *instructions.UserCommand:
		return Change{Args: []string{c.User}}, nil
	case *instructions.WorkdirCommand:
		return Change{Args: []string{c.Path}}, nil
	case *instructions.StopSignalCommand:
		return Change{Args: []string{c.Signal}}, nil
	case *instructions.MaintainerCommand:
		return Change{Args: []string{c.Maintainer}}, nil
	case *instructions.OnbuildCommand:
		return Change{Args: []string{c.Expression}}, nil
	case *instructions.HealthCheckCommand:
		return Change{Health: health(c)}, nil
	}
	return Change{}, fmt.Errorf("instruction %T cannot be a change", cmd)
}

func pairs(kvs instructions.KeyValuePairs) []KeyValue {
	out := make([]KeyValue, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, KeyValue{Key: kv.Key, Value: kv.Value})
	}
	return out
}

func health(c *instructions.HealthCheckCommand) *storage.HealthConfig {
	h := c.Health
	if len(h.Test) > 0 && h.Test[0] == "NONE" {
		return &storage.HealthConfig{Test: []string{"NONE"}}
	}
	return &storage.HealthConfig{
		Test:          append([]string(nil), h.Test...),
		Interval:      h.Interval,
		Timeout:       h.Timeout,
		StartPeriod:   h.StartPeriod,
		StartInterval: h.StartInterval,
		Retries:       h.Retries,
	}
}
