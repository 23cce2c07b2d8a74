package rootless

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runOuter starts forge again in new user and mount namespaces, as plan p says, and
// waits for it; the result is the child's exit status as an *ExitError, or nil.
func runOuter(ctx context.Context, log *slog.Logger, p plan) error {
	if p.mode == ModeSingle {
		log.Warn(p.warning())
	}
	// Registered before the child starts, so that no signal is lost in between; while
	// registered, these signals no longer kill the outer process.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	// The child's Pdeathsig fires when the thread that started it exits, and the Go
	// runtime may end an idle thread: stay on this one until the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd, err := startChild(ctx, p)
	if err != nil {
		return err
	}
	return waitChild(ctx, cmd, sigs)
}

// childCommand is /proc/self/exe with this process's argv, environment (plus the
// namespace variables), stdio and working directory, in new user and mount namespaces.
func childCommand(p plan) *exec.Cmd {
	return &exec.Cmd{
		Path:   selfExe,
		Args:   os.Args,
		Env:    childEnv(os.Environ(), p, os.Getpid()),
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
}

// childEnv replaces any namespace variables in env with the ones describing p.
func childEnv(env []string, p plan, outerPID int) []string {
	env = withoutEnv(env, envConfigured, envRootlessUID, envRootlessGID, envMode, envReason, envStage1, envParent)
	return append(env,
		envConfigured+"=done",
		envRootlessUID+"="+strconv.Itoa(p.caller.uid),
		envRootlessGID+"="+strconv.Itoa(p.caller.gid),
		envMode+"="+string(p.mode),
		envReason+"="+p.reason,
		envParent+"="+strconv.Itoa(outerPID),
	)
}

// withoutEnv returns env without the variables named keys.
func withoutEnv(env []string, keys ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, k := range keys {
			drop = drop || name == k
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// startChild starts the child with its ID maps in place.
func startChild(ctx context.Context, p plan) (*exec.Cmd, error) {
	cmd := childCommand(p)
	if p.mode == ModeFull {
		return cmd, startFull(ctx, cmd, p)
	}
	attr := cmd.SysProcAttr
	attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: p.caller.uid, Size: 1}}
	attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: p.caller.gid, Size: 1}}
	attr.GidMappingsEnableSetgroups = false
	return cmd, startErr(cmd.Start())
}

// startFull starts the stage-1 child blocked on a pipe, writes its maps with newuidmap
// and newgidmap, then releases it. On failure the child is killed and reaped.
func startFull(ctx context.Context, cmd *exec.Cmd, p plan) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer w.Close()
	cmd.ExtraFiles = []*os.File{r}
	stage1Shell(cmd)
	err = cmd.Start()
	r.Close()
	if err != nil {
		return startErr(err)
	}
	// The two maps are independent files of the child: write them at once.
	pid := cmd.Process.Pid
	gidErr := make(chan error, 1)
	go func() { gidErr <- runIDMapHelper(ctx, p.newgidmap, pid, p.caller.gid, p.gidRange) }()
	err = errors.Join(runIDMapHelper(ctx, p.newuidmap, pid, p.caller.uid, p.uidRange), <-gidErr)
	if err == nil {
		if _, err = w.Write([]byte("1\n")); err != nil { // a line, for the shell's read
			err = fmt.Errorf("release the child in the user namespace: %w", err)
		}
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	return err
}

// stage1Script waits for the outer process's line on the sync pipe (the ID maps are
// written by then), closes the pipe and execs forge, which starts as root of the user
// namespace with full capabilities. Without the line (the outer process failed or died)
// it exits instead.
const stage1Script = `read -r go <&3; exec 3<&-; [ "$go" = 1 ] || exit 1; exec "$0" "$@"`

// stage1Shell makes the stage-1 child a shell that waits for the ID maps and then execs
// forge: a shell starts in about a millisecond, a second forge process in several. Where
// there is no shell (or forge's own path is unknown) forge itself is stage 1.
func stage1Shell(cmd *exec.Cmd) {
	exe, err := os.Executable()
	if _, serr := os.Stat(stage1Sh); err != nil || serr != nil {
		cmd.Env = append(cmd.Env, envStage1+"=1")
		return
	}
	cmd.Path = stage1Sh
	cmd.Args = append([]string{"forge-userns", "-c", stage1Script, exe}, os.Args[1:]...)
	// A non-interactive bash as /bin/sh would source these; forge has no use for them.
	cmd.Env = withoutEnv(cmd.Env, "BASH_ENV", "ENV")
}

const stage1Sh = "/bin/sh"

// startErr explains a failure to create the namespaces.
func startErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("create a user namespace (not allowed for this user here: seccomp, "+
			"user.max_user_namespaces or a sysctl may forbid it): %w", err)
	}
	return fmt.Errorf("start %s in a new user namespace: %w", selfExe, err)
}

// waitChild waits for the child, forwarding the signals that arrive on sigs. Cancelling
// ctx sends SIGTERM unless a signal was forwarded already; the child owns cleanup, so
// the wait goes on until it exits.
func waitChild(ctx context.Context, cmd *exec.Cmd, sigs <-chan os.Signal) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	forwarded := false
	ctxDone := ctx.Done()
	var grace <-chan time.Time
	for {
		select {
		case err := <-done:
			return exitStatus(cmd, err)
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
			forwarded = true
		case <-ctxDone:
			// A signal that cancelled ctx is usually on its way to sigs too, and the child
			// must see that one first (its exit status names it): wait for it briefly.
			ctxDone = nil
			grace = time.After(signalGrace)
		case <-grace:
			grace = nil
			if !forwarded {
				_ = cmd.Process.Signal(syscall.SIGTERM)
			}
		}
	}
}

// signalGrace is how long a cancelled wait lets a signal arrive before sending SIGTERM.
const signalGrace = 100 * time.Millisecond

// exitStatus turns the child's end into forge's: nil for 0, else an *ExitError with its
// status, or 128+N when signal N killed it.
func exitStatus(cmd *exec.Cmd, err error) error {
	if cmd.ProcessState == nil {
		return fmt.Errorf("wait for forge in the user namespace: %w", err)
	}
	st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return fmt.Errorf("wait for forge in the user namespace: %w", err)
	}
	switch {
	case st.Signaled():
		e := &ExitError{Code: 128 + int(st.Signal())}
		switch st.Signal() {
		case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE:
		default:
			e.Message = "forge in the user namespace: " + st.Signal().String()
		}
		return e
	case st.ExitStatus() != 0:
		return &ExitError{Code: st.ExitStatus()}
	}
	return nil
}
