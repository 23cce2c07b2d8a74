// Package rootless owns forge's user namespace: choosing how IDs are mapped (newuidmap
// with /etc/subuid and /etc/subgid ranges, or only the caller's own ID), re-executing
// forge as root inside a new user and mount namespace, passing the child's exit status
// back out, and reporting the mapping in use.
//
// The outer process starts /proc/self/exe in the new namespaces and waits for it. In full
// mode the child (stage 1) blocks on a pipe until newuidmap and newgidmap have written
// its maps, then executes itself once more so that it holds every capability as
// namespace root; in single mode Go writes the one-ID maps before the child's exec.
//
// In a binary built with cgo, the plain full-mode case never reaches that: early.c enters
// the namespace in a C constructor, before the Go runtime starts, and Enter finds itself
// already inside (see early_cgo.go).
package rootless

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Environment shared between the outer process and the child. The _CONTAINERS_ names are
// the ones go.podman.io/storage's pkg/unshare reads.
const (
	envConfigured  = "_CONTAINERS_USERNS_CONFIGURED" // "done" inside the namespace
	envRootlessUID = "_CONTAINERS_ROOTLESS_UID"
	envRootlessGID = "_CONTAINERS_ROOTLESS_GID"
	envMode        = "_FORGE_USERNS_MODE"
	envReason      = "_FORGE_USERNS_REASON"
	envStage1      = "_FORGE_USERNS_STAGE1" // set only for the full-mode child's first exec
	envParent      = "_FORGE_USERNS_PARENT" // the outer pid, consumed by the final child
	envEarly       = "_FORGE_USERNS_EARLY"  // "0": early.c leaves the namespace to Enter
	selfExe        = "/proc/self/exe"
	syncFD         = 3 // the stage-1 pipe: the child's first ExtraFiles entry
)

// ExitError carries the exit status forge must exit with (e.g. the status of the
// re-executed child).
type ExitError struct {
	Code    int
	Message string // empty = print nothing
}

func (e *ExitError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return "exit status " + strconv.Itoa(e.Code)
}

// Options configures Enter. The zero value is usable.
type Options struct {
	Logger *slog.Logger // nil = discard; the single-ID warning is logged here at Warn level, once (by the outer process only)
}

// Enter makes the process root inside a new user + mount namespace unless it is real
// root or already inside forge's namespace. In the outer process it re-executes
// /proc/self/exe with the same argv/env/stdio/cwd, waits for it, and returns
// reexeced=true (err = *ExitError{Code: n} when the child exited non-zero, or nil when it
// exited 0). The caller must then stop and exit with that status. Inside the namespace
// it returns (false, nil) with the mount namespace made private (MS_REC|MS_PRIVATE on /).
//
// SIGINT, SIGTERM, SIGHUP and SIGQUIT received by the outer process are forwarded to the
// child, which owns cleanup; cancelling ctx sends the child SIGTERM unless a signal was
// already forwarded, and Enter keeps waiting for it to exit.
func Enter(ctx context.Context, opts Options) (reexeced bool, err error) {
	if _, ok := os.LookupEnv(envStage1); ok {
		return false, execStage2()
	}
	if os.Geteuid() == 0 {
		return false, enterInside()
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return true, runOuter(ctx, log, choosePlan(defaultHostSetup(), currentCaller()))
}

// currentCaller describes the unprivileged user running forge.
func currentCaller() caller {
	c := caller{uid: os.Getuid(), gid: os.Getgid()}
	if u, err := user.LookupId(strconv.Itoa(c.uid)); err == nil {
		c.name = u.Username
	}
	return c
}

// enterInside finishes setting up a process that is uid 0: nothing on the host (or in a
// namespace forge did not make), else re-arm the parent-death signal and make / private.
func enterInside() error {
	if os.Getenv(envConfigured) != "done" {
		return nil
	}
	m, err := readIDMap("/proc/self/uid_map")
	if err != nil {
		return err
	}
	if isIdentity(m) {
		return nil // the variable leaked into a process on the host: leave its mounts alone
	}
	if err := watchParent(); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private in the mount namespace: %w", err)
	}
	return nil
}

// watchParent makes the final child die with the outer process. Gaining capabilities in
// the stage-1 exec clears the parent-death signal that SysProcAttr.Pdeathsig set, so it is
// set again, then the parent is checked in case it died in between. The variable is
// consumed so that a forge started from inside (forge unshare) does not see it.
func watchParent() error {
	v, ok := os.LookupEnv(envParent)
	if !ok {
		return nil
	}
	if err := os.Unsetenv(envParent); err != nil {
		return err
	}
	if err := <-armParentDeathSignal(); err != nil {
		return fmt.Errorf("set parent-death signal: %w", err)
	}
	if want, err := strconv.Atoi(v); err == nil && os.Getppid() != want {
		return fmt.Errorf("forge's outer process %d exited", want)
	}
	return nil
}

// armParentDeathSignal sets SIGKILL as the parent-death signal. The kernel keeps it per
// thread and loses it when that thread ends, and Go ends a thread whose goroutine exits
// while locked to it (as sandbox code may do after unshare): so it is set from a
// goroutine that stays locked to its own thread, parked, for the life of the process.
func armParentDeathSignal() <-chan error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked
		errc <- unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
		select {}
	}()
	return errc
}

// execStage2 runs in the full-mode child: wait until the outer process has written the
// ID maps, then exec forge again, now as namespace root with full capabilities.
func execStage2() error {
	pipe := os.NewFile(syncFD, "forge-userns-sync")
	var b [1]byte
	n, err := pipe.Read(b[:])
	pipe.Close()
	if n != 1 {
		return fmt.Errorf("wait for the user namespace's id maps: %w", err)
	}
	env := withoutEnv(os.Environ(), envStage1)
	return fmt.Errorf("exec %s: %w", selfExe, syscall.Exec(selfExe, os.Args, env))
}
