// Package sandbox runs one command in a container's root filesystem, the way a RUN step
// or `forge run` needs it, without runc or crun.
//
// Spec describes the sandbox as an OCI runtime spec. Run re-executes forge (the
// "forge-sandbox" reexec entry point) with new mount, PID, IPC and UTS namespaces (and a
// network namespace for Network "none"); the child, PID 1 of its PID namespace, builds the
// mounts of the spec inside the root filesystem (every target resolved inside it, so a
// symlink in the image cannot redirect a mount to the host), pivots into it, drops
// capabilities, switches user and execs the command. Run is called by a process that is
// already root in forge's user and mount namespace (or real root).
//
// Volumes are bind mounts; one with a Root has its source resolved inside that root by the
// child itself (openat2 RESOLVE_IN_ROOT), so a symlink swapped in meanwhile cannot redirect
// it. Tmpfs mounts are made fresh for the run. Both are mounted the shallower target first.
//
// Files that only exist for the run (/etc/hosts, /etc/resolv.conf, /etc/hostname) are
// bind-mounted from a private temporary directory; mount points Run had to create in the
// root filesystem are removed again afterwards, so none of them is committed into an image;
// the removal follows no symlink the command may have put in their place.
//
// no_new_privs is not set: as in Docker, setuid programs inside the image (su, ping) keep
// working. They cannot gain more than forge's user namespace holds, and the bounding set
// is Docker's default set.
//
// Where no namespace can be made (root in an unprivileged container), Config.Isolation
// chroot runs the command chrooted into the root filesystem instead, with no mount at all
// (chroot.go): what the mounts would give is copied in for the run and taken out again.
//
// Not done (yet): no seccomp filter (it needs libseccomp or a BPF compiler of our own), no
// cgroup limits, and PID 1 is the command itself, which does not reap orphans. Two runs
// at once on the same root filesystem could remove each other's mount points when they
// clean up.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"

	"github.com/forge-build/forge/rootless"
)

// Config describes one command to run in a container's root filesystem.
type Config struct {
	RootFS   string   // host path of the mounted container rootfs
	Args     []string // argv; Args[0] is looked up in the container's PATH when it has no slash
	Env      []string // KEY=VALUE; PATH (and HOME, from passwd) defaulted when absent
	WorkDir  string   // path inside the container, resolved inside RootFS, created if missing
	User     string   // "", "name", "uid", "uid:gid", "name:group", from the container's passwd/group
	Hostname string   // default: a short name derived from RootFS
	Network  string   // NetworkHost (default) or NetworkNone
	Volumes  []Volume // bind mounts
	Tmpfs    []Tmpfs  // tmpfs mounts
	TTY      bool     // allocate a pseudo-terminal for the command
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
	Logger   *slog.Logger // nil = discard
	// Isolation is rootless.IsolationChroot to run the command by chroot alone, without
	// namespaces or mounts (see RunChroot); empty or namespaces for the sandbox above.
	Isolation rootless.Isolation
}

// Volume is a bind mount of a host path into the sandbox.
type Volume struct {
	Source   string // host path; must exist. With Root: a path inside Root
	Dest     string // path inside the container, resolved inside RootFS
	ReadOnly bool
	// Root, when set, is the directory Source is resolved in: `..` and symlinks (even one
	// that changes while the sandbox starts) cannot lead out of it, because the sandbox
	// opens Source with openat2(RESOLVE_IN_ROOT) when it makes the mount.
	Root string
}

// Tmpfs is a tmpfs mounted into the sandbox for the run only.
type Tmpfs struct {
	Dest string // path inside the container, resolved inside RootFS
	Size int64  // bytes; 0 for the kernel's default (half of the RAM)
}

// Network modes.
const (
	NetworkHost = "host"
	NetworkNone = "none"
)

// Status values that do not come from the command itself.
const (
	StatusNotFound      = 127 // the command does not exist
	StatusNotExecutable = 126 // the command exists but cannot be executed
)

const (
	initName     = "forge-sandbox"
	specFD       = 3 // the child's first ExtraFiles entry: the spec as JSON
	statusFD     = 4 // the child's second ExtraFiles entry: a report, or EOF on exec
	killDeadline = time.Second
)

func init() {
	reexec.Register(initName, childMain)
}

// Run runs the command and returns its exit status (128+N when killed by signal N).
// err reports failures of the sandbox itself; status is then -1. A command that cannot be
// found or executed gives status 127 (126 when not executable) and a one-line message on
// cfg.Stderr. Cancelling ctx kills the whole sandbox (SIGKILL to its PID 1 ends its PID
// namespace); Run then returns after cleaning up, with status 137.
func Run(ctx context.Context, cfg Config) (status int, err error) {
	if cfg.Isolation == rootless.IsolationChroot {
		return runChroot(ctx, cfg)
	}
	spec, err := Spec(cfg)
	if err != nil {
		return -1, err
	}
	if err := fitIDs(spec, logger(cfg)); err != nil {
		return -1, err
	}
	etcDir, err := writeEtcFiles(cfg, spec)
	if etcDir != "" {
		defer func() { err = errors.Join(err, os.RemoveAll(etcDir)) }()
	}
	if err != nil {
		return -1, err
	}
	created, err := makeMountpoints(spec)
	defer func() { err = errors.Join(err, removeMountpoints(spec.Root.Path, created)) }()
	if err != nil {
		return -1, err
	}
	logger(cfg).Debug("sandbox start", "rootfs", cfg.RootFS, "args", cfg.Args, "created", created)
	return start(ctx, cfg, spec, launch{name: initName, attr: sysProcAttr(spec), kill: killChild})
}

// launch says how start makes the child: the reexec entry point, its attributes, how to
// kill it and whatever it started, and what ends the rest once it has exited.
type launch struct {
	name string
	attr *syscall.SysProcAttr
	kill func(*exec.Cmd) error
	reap func(*exec.Cmd) // nil: nothing outlives the child
}

// killChild kills the sandbox's PID 1, which ends its PID namespace.
func killChild(cmd *exec.Cmd) error { return cmd.Process.Signal(syscall.SIGKILL) }

// start runs the child for spec and waits for it.
func start(ctx context.Context, cfg Config, spec *specs.Spec, how launch) (int, error) {
	specR, specW, err := os.Pipe()
	if err != nil {
		return -1, fmt.Errorf("spec pipe: %w", err)
	}
	defer specR.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		specW.Close()
		return -1, fmt.Errorf("status pipe: %w", err)
	}
	defer statusR.Close()

	cmd := reexec.CommandContext(ctx, how.name)
	cmd.ExtraFiles = []*os.File{specR, statusW}
	cmd.SysProcAttr = how.attr
	cmd.Cancel = func() error { return how.kill(cmd) }
	cmd.WaitDelay = killDeadline
	stdio, err := attachStdio(cmd, cfg)
	if err != nil {
		specW.Close()
		statusW.Close()
		return -1, err
	}
	defer stdio.close()

	// Pdeathsig fires when the thread that forked the child exits: keep it alive.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err = cmd.Start()
	statusW.Close()
	stdio.started()
	if err != nil {
		specW.Close()
		return -1, fmt.Errorf("start sandbox: %w", err)
	}
	err = json.NewEncoder(specW).Encode(spec)
	specW.Close()
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return -1, fmt.Errorf("send spec: %w", err)
	}
	status, err := wait(ctx, cmd, statusR, stdio, cfg.Stderr)
	if how.reap != nil {
		how.reap(cmd)
	}
	return status, err
}

// wait reads the child's report (EOF when the command was executed), waits for the
// child and turns what happened into Run's result.
func wait(ctx context.Context, cmd *exec.Cmd, statusR *os.File, stdio *stdio, stderr io.Writer) (int, error) {
	rep, repErr := readReport(statusR)
	waitErr := cmd.Wait()
	stdio.wait()
	if repErr != nil {
		return -1, repErr
	}
	if rep != nil && ctx.Err() == nil {
		if rep.Status == 0 {
			return -1, fmt.Errorf("sandbox: %s", rep.Message)
		}
		if stderr != nil {
			fmt.Fprintf(stderr, "forge: run: %s\n", rep.Message)
		}
		return rep.Status, nil
	}
	return exitStatus(cmd, waitErr)
}

// exitStatus is the command's exit status, or 128+N when signal N killed it.
func exitStatus(cmd *exec.Cmd, waitErr error) (int, error) {
	if cmd.ProcessState == nil {
		return -1, fmt.Errorf("wait sandbox: %w", waitErr)
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return -1, fmt.Errorf("wait sandbox: unexpected status %v", cmd.ProcessState)
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// sysProcAttr gives the child the namespaces the spec lists.
func sysProcAttr(spec *specs.Spec) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	flags := map[specs.LinuxNamespaceType]uintptr{
		specs.MountNamespace:   unix.CLONE_NEWNS,
		specs.PIDNamespace:     unix.CLONE_NEWPID,
		specs.IPCNamespace:     unix.CLONE_NEWIPC,
		specs.UTSNamespace:     unix.CLONE_NEWUTS,
		specs.NetworkNamespace: unix.CLONE_NEWNET,
	}
	for _, ns := range spec.Linux.Namespaces {
		attr.Cloneflags |= flags[ns.Type]
	}
	if spec.Process.Terminal {
		attr.Setsid = true
		attr.Setctty = true
		attr.Ctty = 0
	}
	return attr
}

func logger(cfg Config) *slog.Logger {
	if cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return cfg.Logger
}
