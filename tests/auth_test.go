package tests

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// authStore is a store whose forge has a HOME and XDG_RUNTIME_DIR of its own,
// so credentials do not leak between tests.
func authStore(t *testing.T) *store {
	t.Helper()
	s := newStore(t)
	s.env["HOME"] = t.TempDir()
	s.env["XDG_RUNTIME_DIR"] = t.TempDir() // 0700, like a real one
	return s
}

func (s *store) defaultAuthFile() string {
	return filepath.Join(s.env["XDG_RUNTIME_DIR"], "containers", "auth.json")
}

// noSecret checks that nothing forge printed holds the password, in clear or
// inside a base64 user:password.
func noSecret(t *testing.T, r result) {
	t.Helper()
	basic := base64.StdEncoding.EncodeToString([]byte(authUser + ":" + authPassword))
	for _, secret := range []string{authPassword, basic} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("forge %s printed the credential %q", strings.Join(r.args, " "), secret)
		}
	}
}

// storedAuth returns the "auth" entry for registry in an auth.json, decoded.
func storedAuth(t *testing.T, path, registry string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	decodeJSON(t, path, string(b), &file)
	entry, ok := file.Auths[registry]
	if !ok {
		return "", false
	}
	decoded, err := base64.StdEncoding.DecodeString(entry.Auth)
	if err != nil {
		t.Fatalf("%s: auth for %s is not base64: %v", path, registry, err)
	}
	return string(decoded), true
}

func TestLoginWrongPassword(t *testing.T) {
	t.Parallel()
	s := authStore(t)
	r := s.run(t, "--log-level", "debug", "login", "--tls-verify=false", "-u", authUser, "-p", "wrong-password", e2e.AuthRegistry)
	line := oneLineError(t, r, "unauthorized", "credentials", "rejected", "invalid username/password", "incorrect username or password")
	if !strings.Contains(line, e2e.AuthRegistry) {
		t.Errorf("the error must name the registry %s: %s", e2e.AuthRegistry, line)
	}
	if strings.Contains(r.stdout+r.stderr, "wrong-password") {
		t.Errorf("forge printed the password it was given")
	}
	if _, ok := storedAuth(t, s.defaultAuthFile(), e2e.AuthRegistry); ok {
		t.Errorf("rejected credentials were stored in %s", s.defaultAuthFile())
	}
}

func TestLoginPushLogout(t *testing.T) {
	t.Parallel()
	s := authStore(t)
	id := s.pull(t, "oci-archive:"+filepath.Join(e2e.Fixtures, "busybox.tar"))
	ref := e2e.AuthRegistry + "/" + uniqueRepo("auth") + ":1"

	// Before login the registry refuses the push.
	oneLineError(t, s.run(t, "push", "--tls-verify=false", id, "docker://"+ref),
		"unauthorized", "authentication required", "credentials", "401")

	r := s.runStdin(t, authPassword+"\n", "--log-level", "debug", "login", "--tls-verify=false", "-u", authUser, "--password-stdin", e2e.AuthRegistry)
	noSecret(t, r)
	if r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded!") {
		t.Fatalf("login with the right password: %v", r)
	}
	if got, ok := storedAuth(t, s.defaultAuthFile(), e2e.AuthRegistry); !ok || got != authUser+":"+authPassword {
		t.Errorf("%s: want the credentials for %s, ok=%v", s.defaultAuthFile(), e2e.AuthRegistry, ok)
	}
	if fi, err := os.Stat(s.defaultAuthFile()); err == nil && fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s has mode %v: others may read the credentials", s.defaultAuthFile(), fi.Mode().Perm())
	}
	if got := strings.TrimSpace(s.must(t, "login", "--get-login", e2e.AuthRegistry)); got != authUser {
		t.Errorf("login --get-login = %q, want %q", got, authUser)
	}

	r = s.run(t, "--log-level", "debug", "push", "--tls-verify=false", id, "docker://"+ref)
	noSecret(t, r)
	if r.code != 0 {
		t.Fatalf("push after login: %v", r)
	}
	skopeo(t, "inspect", "--tls-verify=false", "--creds", authUser+":"+authPassword, "docker://"+ref)
	if _, stderr, err := toolResult("skopeo", "inspect", "--tls-verify=false", "--no-creds", "docker://"+ref); err == nil {
		t.Errorf("the registry answers without credentials: the test proves nothing (%s)", stderr)
	}

	r = s.run(t, "--log-level", "debug", "logout", e2e.AuthRegistry)
	noSecret(t, r)
	if r.code != 0 {
		t.Fatalf("logout: %v", r)
	}
	if _, ok := storedAuth(t, s.defaultAuthFile(), e2e.AuthRegistry); ok {
		t.Errorf("after logout %s still holds credentials for %s", s.defaultAuthFile(), e2e.AuthRegistry)
	}
	oneLineError(t, s.run(t, "push", "--tls-verify=false", id, "docker://"+ref),
		"unauthorized", "authentication required", "credentials", "401")

	// A password on the command line stays out of the logs too.
	r = s.run(t, "--log-level", "debug", "login", "--tls-verify=false", "-u", authUser, "-p", authPassword, e2e.AuthRegistry)
	noSecret(t, r)
	if r.code != 0 {
		t.Fatalf("login -p: %v", r)
	}
	r = s.run(t, "logout", "--all")
	if _, ok := storedAuth(t, s.defaultAuthFile(), e2e.AuthRegistry); r.code != 0 || ok {
		t.Errorf("logout --all left credentials for %s: %v", e2e.AuthRegistry, r)
	}
}

// TestCredentialSources pushes with --creds, with --authfile, and with
// credentials only in ~/.docker/config.json.
func TestCredentialSources(t *testing.T) {
	t.Parallel()
	s := authStore(t)
	id := s.pull(t, "oci-archive:"+filepath.Join(e2e.Fixtures, "busybox.tar"))
	repo := e2e.AuthRegistry + "/" + uniqueRepo("creds")
	basic := base64.StdEncoding.EncodeToString([]byte(authUser + ":" + authPassword))

	t.Run("--creds", func(t *testing.T) {
		r := s.run(t, "--log-level", "debug", "push", "--tls-verify=false", "--creds", authUser+":"+authPassword, id, "docker://"+repo+":creds")
		noSecret(t, r)
		if r.code != 0 {
			t.Fatalf("push --creds: %v", r)
		}
		skopeo(t, "inspect", "--tls-verify=false", "--creds", authUser+":"+authPassword, "docker://"+repo+":creds")
	})
	t.Run("--authfile", func(t *testing.T) {
		authfile := filepath.Join(t.TempDir(), "auth.json")
		r := s.run(t, "login", "--tls-verify=false", "--authfile", authfile, "-u", authUser, "-p", authPassword, e2e.AuthRegistry)
		if r.code != 0 {
			t.Fatalf("login --authfile: %v", r)
		}
		if got, ok := storedAuth(t, authfile, e2e.AuthRegistry); !ok || got != authUser+":"+authPassword {
			t.Errorf("--authfile %s lacks the credentials", authfile)
		}
		if _, ok := storedAuth(t, s.defaultAuthFile(), e2e.AuthRegistry); ok {
			t.Errorf("login --authfile also wrote %s", s.defaultAuthFile())
		}
		if r := s.run(t, "push", "--tls-verify=false", "--authfile", authfile, id, "docker://"+repo+":authfile"); r.code != 0 {
			t.Fatalf("push --authfile: %v", r)
		}
		skopeo(t, "inspect", "--tls-verify=false", "--creds", authUser+":"+authPassword, "docker://"+repo+":authfile")
	})
	t.Run("docker config.json", func(t *testing.T) {
		dir := filepath.Join(s.env["HOME"], ".docker")
		config, err := json.Marshal(map[string]any{"auths": map[string]any{e2e.AuthRegistry: map[string]string{"auth": basic}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.json"), config, 0o600); err != nil {
			t.Fatal(err)
		}
		if r := s.run(t, "push", "--tls-verify=false", id, "docker://"+repo+":dockerconfig"); r.code != 0 {
			t.Fatalf("push with credentials in ~/.docker/config.json: %v", r)
		}
		skopeo(t, "inspect", "--tls-verify=false", "--creds", authUser+":"+authPassword, "docker://"+repo+":dockerconfig")
	})
}
