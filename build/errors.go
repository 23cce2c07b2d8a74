package build

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// ErrNotSupported marks Dockerfile features forge does not implement yet.
var ErrNotSupported = errors.New("not supported yet")

// StepError is a build failure at a place in a Dockerfile. It prints as
// `Dockerfile:12: RUN make: exit status 2` and unwraps to its cause.
type StepError struct {
	File        string
	Line        int
	Instruction string // the instruction as written, shortened to one line; may be empty
	Err         error
}

func (e *StepError) Error() string {
	if e.Instruction == "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %s: %v", e.File, e.Line, e.Instruction, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// ExitStatusError is a RUN step whose command exited non-zero.
type ExitStatusError struct {
	Status int
	// DiskFull: the store's file system was full when the command failed, the likely
	// reason (its own message, "No space left on device", went to the build output).
	DiskFull bool
}

func (e *ExitStatusError) Error() string {
	if e.DiskFull {
		return fmt.Sprintf("exit status %d: no space left on device (the store's file system is full)", e.Status)
	}
	return fmt.Sprintf("exit status %d", e.Status)
}

// oneLine shortens an instruction's text for an error message.
func oneLine(text string) string {
	text = strings.Join(strings.Fields(strings.ReplaceAll(text, "\\\n", " ")), " ")
	if len(text) > 80 {
		text = text[:77] + "..."
	}
	return text
}

// commandLine returns the first line of a command in the Dockerfile.
func commandLine(cmd instructions.Command) int {
	if loc, ok := cmd.(interface{ Location() []parser.Range }); ok {
		if r := loc.Location(); len(r) > 0 {
			return r[0].Start.Line
		}
	}
	return 0
}

// locatedError turns an error of BuildKit's parser into a StepError at its line.
func locatedError(file string, err error) error {
	var unknown *instructions.UnknownInstructionError
	if errors.As(err, &unknown) {
		return &StepError{File: file, Line: unknown.Line, Err: fmt.Errorf("unknown instruction: %s", unknown.Instruction)}
	}
	var loc *parser.LocationError
	if errors.As(err, &loc) && len(loc.Locations) > 0 && len(loc.Locations[0]) > 0 {
		cause := loc.Unwrap()
		if cause == nil {
			cause = err
		}
		return &StepError{File: file, Line: loc.Locations[0][0].Start.Line, Err: plainError(cause)}
	}
	return fmt.Errorf("%s: %w", file, err)
}

// plainError drops the stack traces BuildKit's errors print with %+v, keeping the text.
func plainError(err error) error {
	return errors.New(strings.SplitN(err.Error(), "\n", 2)[0])
}
