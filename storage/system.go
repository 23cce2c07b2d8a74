package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	"golang.org/x/sys/unix"
)

// RegistryOptions are the per-command registry flags (--tls-verify, --creds, --authfile,
// --cert-dir, --retry, --retry-delay, --stall-timeout). The zero value verifies TLS, uses
// the default auth files, tries each pull or push once and waits as long as it takes.
type RegistryOptions struct {
	// SkipTLSVerify is --tls-verify=false: plain HTTP and unverified TLS are allowed.
	SkipTLSVerify bool
	Creds         string // USER[:PASSWORD]
	AuthFile      string
	CertDir       string
	// Retry is how many more times a pull or push from or to a registry is tried after a
	// transient failure (see Transient); RetryDelay is the wait before the first retry,
	// doubled before each next one.
	Retry      int
	RetryDelay time.Duration
	// StallTimeout (> 0) ends an attempt during which the registry sent and accepted
	// nothing for that long; the attempt then counts as a transient failure.
	StallTimeout time.Duration
}

// systemContext builds the image/v5 settings for one operation.
func (s *Store) systemContext(r RegistryOptions) (*types.SystemContext, error) {
	sys, err := newSystemContext(s.registriesConf, r)
	if err != nil {
		return nil, err
	}
	sys.BigFilesTemporaryDir = s.tempDir
	return sys, nil
}

func newSystemContext(registriesConf string, r RegistryOptions) (*types.SystemContext, error) {
	sys := &types.SystemContext{
		SystemRegistriesConfPath: registriesConf,
		AuthFilePath:             r.AuthFile,
		DockerCertPath:           r.CertDir,
		OCICertPath:              r.CertDir,
		// Scripts and CI have no terminal to answer a short-name prompt.
		ShortNameMode: shortNameMode(),
	}
	if r.SkipTLSVerify {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
		sys.OCIInsecureSkipTLSVerify = true
	}
	if r.AuthFile != "" {
		if _, err := os.Stat(r.AuthFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("authfile: %w", err)
		}
	}
	if r.Creds != "" {
		auth, err := parseCreds(r.Creds)
		if err != nil {
			return nil, err
		}
		sys.DockerAuthConfig = auth
	}
	return sys, nil
}

func shortNameMode() *types.ShortNameMode {
	m := types.ShortNameModePermissive
	return &m
}

// parseCreds splits --creds USER[:PASSWORD].
func parseCreds(creds string) (*types.DockerAuthConfig, error) {
	user, pass, _ := strings.Cut(creds, ":")
	if user == "" {
		return nil, errors.New("--creds: user name is empty (want USER[:PASSWORD])")
	}
	return &types.DockerAuthConfig{Username: user, Password: pass}, nil
}

// policyContext honours a policy.json where one exists (the user's, then the system's)
// and otherwise accepts any image, as Buildah does on a machine without one.
func policyContext() (*signature.PolicyContext, error) {
	var policy *signature.Policy
	for _, path := range policyPaths() {
		if _, err := os.Stat(path); err != nil {
			continue
		}
		p, err := signature.NewPolicyFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("signature policy %s: %w", path, err)
		}
		policy = p
		break
	}
	if policy == nil {
		policy = &signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}}
	}
	return signature.NewPolicyContext(policy)
}

func policyPaths() []string {
	var paths []string
	if home, err := os.UserHomeDir(); err == nil {
		paths = append(paths, filepath.Join(home, ".config", "containers", "policy.json"))
	}
	return append(paths, "/etc/containers/policy.json")
}

// Full reports whether the file system of the store's graph root is out of space or
// inodes (less than 1 MiB left to unprivileged writers), the usual reason a build
// command that wrote into a container failed.
func (s *Store) Full() bool {
	var st unix.Statfs_t
	if unix.Statfs(s.store.GraphRoot(), &st) != nil {
		return false
	}
	return uint64(st.Bavail)*uint64(st.Bsize) < 1<<20 || (st.Files > 0 && st.Ffree == 0)
}
