package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/forge-build/forge/storage"
)

func configCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "config",
		Usage:     "change the image configuration a working container will be committed with",
		ArgsUsage: "CONTAINER",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "cmd", Usage: "default `COMMAND`: a JSON array, or words split like a shell"},
			&ucli.StringFlag{Name: "entrypoint", Usage: "`ENTRYPOINT`: a JSON array, or a string run with /bin/sh -c"},
			&ucli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set `KEY=VALUE` (KEY- removes KEY)"},
			&ucli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "set `KEY=VALUE` (KEY- removes KEY)"},
			&ucli.StringSliceFlag{Name: "port", Aliases: []string{"p"}, Usage: "expose `PORT[/PROTO]` (PORT- removes it)"},
			&ucli.StringSliceFlag{Name: "volume", Aliases: []string{"v"}, Usage: "declare a volume at `PATH` (PATH- removes it)"},
			&ucli.StringFlag{Name: "workingdir", Usage: "working `DIR`"},
			&ucli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "`USER[:GROUP]` to run as"},
			&ucli.StringFlag{Name: "stop-signal", Usage: "`SIGNAL` that stops a container"},
			&ucli.StringFlag{Name: "shell", Usage: "`SHELL` for shell-form commands, a JSON array (docker format)"},
			&ucli.StringSliceFlag{Name: "onbuild", Usage: "add an ONBUILD `INSTRUCTION` (docker format)"},
			&ucli.StringFlag{Name: "author", Usage: "image `AUTHOR`"},
		},
		Action: func(c *ucli.Context) error {
			if err := needArgs(c, 1, 1, "[flags] CONTAINER"); err != nil {
				return err
			}
			f := configFlags{
				env: c.StringSlice("env"), labels: c.StringSlice("label"), ports: c.StringSlice("port"),
				volumes: c.StringSlice("volume"), onbuild: c.StringSlice("onbuild"),
			}
			for _, name := range []string{"cmd", "entrypoint", "workingdir", "user", "stop-signal", "shell", "author"} {
				if c.IsSet(name) {
					v := c.String(name)
					f.set(name, &v)
				}
			}
			return withStore(c, func(ctx context.Context, s *storage.Store) error {
				ctr, err := s.Container(c.Args().First())
				if err != nil {
					return err
				}
				if err := applyConfigFlags(&ctr.Config, f); err != nil {
					return err
				}
				return s.SaveContainer(ctr)
			})
		},
	}
}

// configFlags are the values given to `forge config`; nil pointers were not given.
type configFlags struct {
	cmd, entrypoint, workingDir, user, stopSignal, shell, author *string
	env, labels, ports, volumes, onbuild                         []string
}

func (f *configFlags) set(name string, v *string) {
	switch name {
	case "cmd":
		f.cmd = v
	case "entrypoint":
		f.entrypoint = v
	case "workingdir":
		f.workingDir = v
	case "user":
		f.user = v
	case "stop-signal":
		f.stopSignal = v
	case "shell":
		f.shell = v
	case "author":
		f.author = v
	}
}

// applyConfigFlags changes cfg as `forge config` flags ask.
func applyConfigFlags(cfg *storage.ImageConfig, f configFlags) error {
	cc := &cfg.Config
	if f.cmd != nil {
		cmd, err := commandValue(*f.cmd, false)
		if err != nil {
			return fmt.Errorf("--cmd: %w", err)
		}
		cc.Cmd = cmd
	}
	if f.entrypoint != nil {
		ep, err := commandValue(*f.entrypoint, true)
		if err != nil {
			return fmt.Errorf("--entrypoint: %w", err)
		}
		cc.Entrypoint = ep
	}
	if f.shell != nil {
		sh, err := commandValue(*f.shell, false)
		if err != nil || len(sh) == 0 || !strings.HasPrefix(strings.TrimSpace(*f.shell), "[") {
			return fmt.Errorf("--shell: want a JSON array such as [\"/bin/bash\",\"-c\"]")
		}
		cc.Shell = sh
	}
	setString(&cc.WorkingDir, f.workingDir)
	setString(&cc.User, f.user)
	setString(&cc.StopSignal, f.stopSignal)
	setString(&cfg.Author, f.author)
	if err := applyEnv(cc, f.env); err != nil {
		return err
	}
	if err := applyMap("--label", &cc.Labels, f.labels); err != nil {
		return err
	}
	if err := applySet("--port", &cc.ExposedPorts, f.ports, portKey); err != nil {
		return err
	}
	if err := applySet("--volume", &cc.Volumes, f.volumes, volumeKey); err != nil {
		return err
	}
	cc.OnBuild = append(cc.OnBuild, f.onbuild...)
	return nil
}

func setString(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

// commandValue reads a --cmd or --entrypoint value: a JSON array as is; otherwise shell
// words, or for an entrypoint a string run by /bin/sh -c (Buildah's rules). "" clears it.
func commandValue(v string, shellForm bool) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if strings.HasPrefix(v, "[") {
		var arr []string
		if err := json.Unmarshal([]byte(v), &arr); err != nil {
			return nil, fmt.Errorf("invalid JSON array %s: %w", v, err)
		}
		return arr, nil
	}
	if shellForm {
		return []string{"/bin/sh", "-c", v}, nil
	}
	return splitWords(v)
}

// splitWords splits like a POSIX shell: blanks separate words; quotes and backslashes
// protect them.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quote := false, rune(0)
	runes := []rune(s)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == '\'':
			cur.WriteRune(r)
		case r == '\\' && i+1 < len(runes) && (quote == 0 || strings.ContainsRune(`"\$`+"`", runes[i+1])):
			i++
			cur.WriteRune(runes[i])
			inWord = true
		case quote == '"':
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func applyEnv(cc *storage.ContainerConfig, env []string) error {
	for _, e := range env {
		if key, ok := strings.CutSuffix(e, "-"); ok && !strings.Contains(e, "=") {
			cc.Env = removeEnv(cc.Env, key)
			continue
		}
		key, _, found := strings.Cut(e, "=")
		if !found || key == "" {
			return fmt.Errorf("--env %q: want KEY=VALUE or KEY-", e)
		}
		cc.Env = append(removeEnv(cc.Env, key), e)
	}
	return nil
}

func removeEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k != key {
			out = append(out, e)
		}
	}
	return out
}

func applyMap(flag string, m *map[string]string, values []string) error {
	for _, v := range values {
		if *m == nil {
			*m = map[string]string{}
		}
		if key, ok := strings.CutSuffix(v, "-"); ok && !strings.Contains(v, "=") {
			delete(*m, key)
			continue
		}
		key, val, found := strings.Cut(v, "=")
		if !found || key == "" {
			return fmt.Errorf("%s %q: want KEY=VALUE or KEY-", flag, v)
		}
		(*m)[key] = val
	}
	return nil
}

func applySet(flag string, m *map[string]struct{}, values []string, key func(string) (string, error)) error {
	for _, v := range values {
		if *m == nil {
			*m = map[string]struct{}{}
		}
		raw, remove := strings.CutSuffix(v, "-")
		k, err := key(raw)
		if err != nil {
			return fmt.Errorf("%s %q: %w", flag, v, err)
		}
		if remove {
			delete(*m, k)
		} else {
			(*m)[k] = struct{}{}
		}
	}
	return nil
}

// portKey normalises PORT[/PROTO] to Docker's "80/tcp" form.
func portKey(p string) (string, error) {
	port, proto, found := strings.Cut(p, "/")
	if !found {
		proto = "tcp"
	}
	var n int
	if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != port {
		return "", fmt.Errorf("invalid port %q", port)
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return "", fmt.Errorf("invalid protocol %q", proto)
	}
	return port + "/" + proto, nil
}

func volumeKey(v string) (string, error) {
	if !strings.HasPrefix(v, "/") {
		return "", fmt.Errorf("volume path must be absolute")
	}
	return v, nil
}
