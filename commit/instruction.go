package commit

import (
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/forge-build/forge/storage"
)

// Stage carries what one Dockerfile stage's metadata instructions need across steps:
// whether a CMD has been given yet (a later ENTRYPOINT then keeps it).
type Stage struct {
	CmdSet bool
}

// ApplyInstruction applies one Dockerfile metadata instruction (CMD, ENV, LABEL, ...) to
// cfg. Its words are expanded against env, the stage's ARGs and ENV, with the
// Dockerfile's escape character, where Docker expands them.
func ApplyInstruction(cfg *storage.ImageConfig, cmd instructions.Command, env shell.EnvGetter, escape rune, st *Stage) error {
	ch, err := fromInstruction(cmd)
	if err != nil {
		return err
	}
	ch.Instruction = strings.ToUpper(cmd.Name())
	if str, ok := cmd.(interface{ String() string }); ok {
		ch.Text = str.String()
	}
	x := expander{lex: shell.NewLex(escape), env: env}
	return applyOne(cfg, ch, x, &st.CmdSet)
}

// IsMetadata reports whether a Dockerfile instruction only changes the configuration.
func IsMetadata(cmd instructions.Command) bool {
	_, err := fromInstruction(cmd)
	return err == nil
}
