package build

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Dockerfile is a parsed Dockerfile: its stages with typed instructions, the ARGs
// declared before the first FROM, and notes for the user (ignored directives).
type Dockerfile struct {
	File     string // the name errors use: "Dockerfile", or the path given with -f
	Escape   rune
	Stages   []instructions.Stage
	MetaArgs []instructions.ArgCommand
	Notes    []string
	// Source holds each line of the file, for the STEP lines of the output.
	Source []string
}

var syntaxDirective = regexp.MustCompile(`(?i)^#\s*syntax\s*=\s*(\S+)`)

// ParseDockerfile parses a Dockerfile with BuildKit's parser. Errors name the file and
// line; features forge does not implement yet are refused, never ignored.
func ParseDockerfile(r io.Reader, file string) (*Dockerfile, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, locatedError(file, err)
	}
	if len(res.AST.Children) == 0 {
		return nil, fmt.Errorf("%s: the file has no instructions", file)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, locatedError(file, err)
	}
	if len(stages) == 0 {
		return nil, &StepError{File: file, Line: res.AST.Children[0].StartLine, Err: errors.New("no FROM instruction")}
	}
	df := &Dockerfile{File: file, Escape: res.EscapeToken, Stages: stages, MetaArgs: metaArgs,
		Source: strings.Split(string(data), "\n")}
	if m := syntaxDirective.FindStringSubmatch(firstLine(data)); m != nil {
		df.Notes = append(df.Notes, fmt.Sprintf("%s: ignoring the syntax directive (%s): forge has its own Dockerfile frontend", file, m[1]))
	}
	for i := range stages {
		for _, cmd := range stages[i].Commands {
			if err := checkSupported(cmd); err != nil {
				return nil, &StepError{File: file, Line: commandLine(cmd), Instruction: instructionText(df, cmd), Err: err}
			}
		}
	}
	return df, nil
}

func firstLine(data []byte) string {
	line, _, _ := bufio.NewReader(bytes.NewReader(data)).ReadLine()
	return string(line)
}

// checkSupported refuses the BuildKit-era features that forge does not implement yet.
func checkSupported(cmd instructions.Command) error {
	switch c := cmd.(type) {
	case *instructions.RunCommand:
		return checkRun(c)
	case *instructions.AddCommand:
		return checkAdd(c)
	}
	return nil
}

// instructionText is an instruction as written, on one line, for messages.
func instructionText(df *Dockerfile, cmd instructions.Command) string {
	line := commandLine(cmd)
	if loc, ok := cmd.(interface{ Location() []parser.Range }); ok && line > 0 {
		r := loc.Location()
		end := r[len(r)-1].End.Line
		if line-1 < len(df.Source) && end <= len(df.Source) && end >= line {
			return oneLine(strings.Join(df.Source[line-1:end], "\n"))
		}
	}
	return strings.ToUpper(cmd.Name())
}
