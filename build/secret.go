package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Secret is a value `forge bud --secret` offers to RUN --mount=type=secret. Its value is
// read only for a step that mounts it, given to that step only (a file bind-mounted
// read-only for the run, or a variable of its environment), and kept out of layers, the
// history, the cache key and forge's messages.
type Secret struct {
	ID    string
	File  string // a host file holding the value (src=FILE)
	Value []byte // the value, when it does not come from a file (env=VAR)
}

// ErrMissingSecret is returned for a required secret that no --secret provides.
var ErrMissingSecret = errors.New("secret not provided (forge bud --secret id=ID,src=FILE or id=ID,env=VAR)")

// secretValue finds the secret id among secrets (the last one given wins) and reads it;
// ok is false when none has that id.
func secretValue(secrets []Secret, id string) (value []byte, ok bool, err error) {
	for i := len(secrets) - 1; i >= 0; i-- {
		s := secrets[i]
		if s.ID != id {
			continue
		}
		if s.File == "" {
			return s.Value, true, nil
		}
		data, err := os.ReadFile(s.File)
		if err != nil {
			// The path is the user's own flag; the error never holds the content.
			return nil, true, fmt.Errorf("secret %s: %w", id, err)
		}
		return data, true, nil
	}
	return nil, false, nil
}

// writeSecretFile writes a secret's value into a new private directory as a file with
// the mount's mode and owner (default 0400, 0:0), for a read-only bind mount. It returns
// the file and the directory to remove afterwards.
func writeSecretFile(value []byte, m runMount) (file, dir string, err error) {
	dir, err = os.MkdirTemp("", "forge-secret-")
	if err != nil {
		return "", "", fmt.Errorf("secret %s: %w", m.id, err)
	}
	file = filepath.Join(dir, "secret")
	mode, uid, gid := os.FileMode(0o400), 0, 0
	if m.mode != nil {
		mode = os.FileMode(*m.mode) & os.ModePerm
	}
	if m.uid != nil {
		uid = int(*m.uid)
	}
	if m.gid != nil {
		gid = int(*m.gid)
	}
	err = os.WriteFile(file, value, 0o600)
	if err == nil {
		err = os.Lchown(file, uid, gid)
	}
	if err == nil {
		err = os.Chmod(file, mode)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("secret %s: %w", m.id, err)
	}
	return file, dir, nil
}
