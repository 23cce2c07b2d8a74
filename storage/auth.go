package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/pkg/docker/config"
)

// ErrBadCredentials is returned when a registry rejects a user name and password.
var ErrBadCredentials = errors.New("the registry rejected the user name or password")

// LoginOptions are the flags of `forge login`.
type LoginOptions struct {
	Registry       RegistryOptions // AuthFile, SkipTLSVerify, CertDir apply
	RegistriesConf string
	Username       string
	Password       string
}

// Login checks the credentials against the registry and stores them in the auth file
// (by default $XDG_RUNTIME_DIR/containers/auth.json, as Podman does).
func Login(ctx context.Context, registry string, o LoginOptions) error {
	key, err := registryKey(registry)
	if err != nil {
		return err
	}
	if o.Username == "" {
		return fmt.Errorf("login %s: user name is empty", key)
	}
	sys, err := newSystemContext(o.RegistriesConf, o.Registry)
	if err != nil {
		return err
	}
	host, _, _ := strings.Cut(key, "/")
	if err := docker.CheckAuth(ctx, sys, o.Username, o.Password, host); err != nil {
		var unauthorized docker.ErrUnauthorizedForCredentials
		if errors.As(err, &unauthorized) {
			return fmt.Errorf("login %s: %w", key, ErrBadCredentials)
		}
		return fmt.Errorf("login %s: %w", key, err)
	}
	if _, err := config.SetCredentials(sys, key, o.Username, o.Password); err != nil {
		return fmt.Errorf("login %s: store credentials: %w", key, err)
	}
	return nil
}

// LoggedInUser returns the user name stored for registry (`forge login --get-login`).
func LoggedInUser(registry string, o LoginOptions) (string, error) {
	key, err := registryKey(registry)
	if err != nil {
		return "", err
	}
	sys, err := newSystemContext(o.RegistriesConf, o.Registry)
	if err != nil {
		return "", err
	}
	auth, err := config.GetCredentials(sys, key)
	if err != nil {
		return "", fmt.Errorf("read credentials for %s: %w", key, err)
	}
	if auth.Username == "" {
		return "", fmt.Errorf("not logged in to %s", key)
	}
	return auth.Username, nil
}

// Logout removes the stored credentials of registry, or of every registry when all is set.
func Logout(registry string, all bool, o LoginOptions) error {
	sys, err := newSystemContext(o.RegistriesConf, o.Registry)
	if err != nil {
		return err
	}
	if all {
		if err := config.RemoveAllAuthentication(sys); err != nil {
			return fmt.Errorf("logout: %w", err)
		}
		return nil
	}
	key, err := registryKey(registry)
	if err != nil {
		return err
	}
	err = config.RemoveAuthentication(sys, key)
	if errors.Is(err, config.ErrNotLoggedIn) {
		return fmt.Errorf("not logged in to %s", key)
	}
	if err != nil {
		return fmt.Errorf("logout %s: %w", key, err)
	}
	return nil
}

// registryKey normalises what users type after `login` (a URL or host[:port][/repo]).
func registryKey(registry string) (string, error) {
	key := strings.TrimPrefix(strings.TrimPrefix(registry, "https://"), "http://")
	key = strings.TrimSuffix(strings.TrimPrefix(key, "docker://"), "/")
	if key == "" {
		return "", errors.New("no registry given")
	}
	if strings.ContainsAny(key, " \t@") {
		return "", fmt.Errorf("invalid registry %q", registry)
	}
	return key, nil
}
