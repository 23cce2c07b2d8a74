package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// heredocDir is where a RUN's script heredoc (one that starts with #!) is provided, as in
// BuildKit: inside the sandbox's own /dev, so nothing of it lands in the image.
const heredocDir = "/dev/pipes"

// runScript is a heredoc that RUN executes as a file: its name and content.
type runScript struct {
	name string
	data string
}

// runArgs is the argv of a RUN step with BuildKit's heredoc rules:
//   - `RUN <<EOF` alone: the heredoc (tabs stripped for <<-) is the shell's script; one that
//     starts with #! is written to a file and executed, so its interpreter runs it;
//   - anything else with heredocs (`RUN <<A cat >a && <<B cat >b`, `RUN python3 <<EOF`):
//     the line and the heredocs are given to the shell as written, which expands, strips
//     tabs and honours quoted delimiters itself.
//
// Shell-form commands are run by shell (the image's SHELL, default /bin/sh -c).
func runArgs(c *instructions.RunCommand, shell []string) ([]string, *runScript, error) {
	args := slices.Clone(c.CmdLine)
	var script *runScript
	if len(c.Files) > 0 {
		if len(args) != 1 || !c.PrependShell {
			return nil, nil, fmt.Errorf("heredoc in an unexpected command form: %q", args)
		}
		var err error
		if args, script, err = heredocArgs(args[0], c.Files); err != nil {
			return nil, nil, err
		}
	}
	if !c.PrependShell {
		if len(args) == 0 {
			return nil, nil, errors.New("empty command")
		}
		return args, script, nil
	}
	line := strings.Join(args, " ")
	if strings.TrimSpace(line) == "" {
		return nil, nil, errors.New("empty command")
	}
	if len(shell) == 0 {
		shell = []string{"/bin/sh", "-c"}
	}
	return append(slices.Clone(shell), line), script, nil
}

// heredocArgs turns a command line with heredocs into the shell's one argument.
func heredocArgs(line string, files []instructions.ShellInlineFile) ([]string, *runScript, error) {
	if parser.MustParseHeredoc(line) == nil {
		var b strings.Builder
		b.WriteString(line)
		for _, f := range files {
			b.WriteByte('\n')
			b.WriteString(f.Data)
			b.WriteString(f.Name)
		}
		return []string{b.String()}, nil, nil
	}
	f := files[0]
	data := f.Data
	if f.Chomp {
		data = parser.ChompHeredocContent(data)
	}
	if !strings.HasPrefix(data, "#!") {
		return []string{data}, nil, nil
	}
	if f.Name == "" || f.Name == "." || f.Name == ".." || strings.ContainsAny(f.Name, "/\x00") {
		return nil, nil, fmt.Errorf("heredoc delimiter %q cannot name a script file", f.Name)
	}
	return []string{heredocDir + "/" + f.Name}, &runScript{name: f.Name, data: data}, nil
}

// write puts the script into a new directory (mode 0755, the script 0755) for the sandbox to
// mount read-only at heredocDir. The caller removes the directory.
func (s *runScript) write() (string, error) {
	dir, err := os.MkdirTemp("", "forge-heredoc-")
	if err != nil {
		return "", fmt.Errorf("heredoc: %w", err)
	}
	p := filepath.Join(dir, s.name)
	err = os.WriteFile(p, []byte(s.data), 0o755)
	for _, f := range []string{dir, p} { // WriteFile's and MkdirTemp's modes are masked
		if err == nil {
			err = os.Chmod(f, 0o755)
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("heredoc: %w", err)
	}
	return dir, nil
}

// runKeyText is the command as the cache key sees it: the whole argv and script, since the
// instruction's one-line text is shortened.
func runKeyText(args []string, script *runScript) string {
	var b strings.Builder
	for _, a := range args {
		fmt.Fprintf(&b, "arg\x00%s\x00", a)
	}
	if script != nil {
		fmt.Fprintf(&b, "script\x00%s\x00%s\x00", script.name, script.data)
	}
	return b.String()
}
