package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"
)

// ErrNeedsNamespaces marks what a RUN step asks for that chroot isolation cannot give.
var ErrNeedsNamespaces = errors.New("chroot isolation cannot make namespaces or mounts")

const chrootInitName = "forge-chroot"

func init() {
	reexec.Register(chrootInitName, chrootMain)
}

// runChroot runs the command for chroot isolation: where forge cannot make namespaces
// (uid 0 in a default Docker or Kubernetes container), the command runs in the host's
// namespaces, chrooted into the root filesystem, with the same user, environment,
// working directory and capability bounding set as in the sandbox.
//
// Nothing is mounted. What the command needs from outside (/etc/resolv.conf, /etc/hosts,
// the usual /dev nodes) and what mounts would show (volumes, tmpfs, heredoc scripts) is
// put into the root filesystem for the run and taken out again afterwards, so that a
// layer made by comparing the root filesystem before and after does not see it unless
// the command changed it. /proc and /sys stay as the image has them (usually empty).
// Processes the command leaves behind in the root filesystem are killed.
//
// chroot is no security boundary for root: the command runs as the caller's root with
// Docker's default capabilities, in the caller's namespaces.
func runChroot(ctx context.Context, cfg Config) (status int, err error) {
	if cfg.Network == NetworkNone {
		return -1, fmt.Errorf("network none needs a network namespace: %w", ErrNeedsNamespaces)
	}
	spec, err := Spec(cfg) // its namespaces and mounts are not used
	if err != nil {
		return -1, err
	}
	if err := fitIDs(spec, logger(cfg)); err != nil {
		return -1, err
	}
	root, err := filepath.EvalSymlinks(spec.Root.Path)
	if err != nil {
		return -1, fmt.Errorf("rootfs: %w", err)
	}
	spec.Root.Path = root
	sc := &scaffold{root: root, log: logger(cfg)}
	defer func() { err = errors.Join(err, sc.undo()) }()
	if err := sc.build(ctx, cfg); err != nil {
		return -1, err
	}
	logger(cfg).Debug("chroot start", "rootfs", root, "args", cfg.Args)
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: !cfg.TTY}
	if cfg.TTY {
		attr.Setsid, attr.Setctty = true, true
	}
	reap := func(cmd *exec.Cmd) {
		_ = killGroup(cmd) // the command's background jobs
		killLeftovers(root)
	}
	return start(ctx, cfg, spec, launch{name: chrootInitName, attr: attr, kill: killGroup, reap: reap})
}

// killGroup kills the command's process group (its session with a TTY).
func killGroup(cmd *exec.Cmd) error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

// killLeftovers kills the processes whose root directory is root: what the command
// started and left running outside its process group. Without a PID namespace this is
// how a step ends for good. A process that left the group and either changed its root
// or runs as another user (whose root forge may not read without CAP_SYS_PTRACE) is not
// found.
func killLeftovers(root string) {
	for round := 0; round < 50; round++ {
		pids := processesIn(root)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processesIn lists the processes whose root directory is root or below it.
func processesIn(root string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		link, err := os.Readlink("/proc/" + e.Name() + "/root")
		if err == nil && (link == root || strings.HasPrefix(link, root+"/")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// chrootMain is the "forge-chroot" reexec entry point. It returns only by exec'ing the
// command or by exiting.
func chrootMain() { entry(chrootChild) }

// chrootChild enters the root filesystem and execs the command; it returns only on
// failure.
func chrootChild() report {
	spec, err := readSpec()
	if err != nil {
		return report{Message: err.Error()}
	}
	if err := unix.CloseRange(specFD, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return report{Message: fmt.Sprintf("close inherited files: %v", err)}
	}
	// The capability library reads /proc once; there is none after the chroot.
	if _, err := capability.LastCap(); err != nil {
		return report{Message: fmt.Sprintf("capabilities: %v", err)}
	}
	for _, step := range []func(*specs.Spec) error{enterRoot, setCredentials} {
		if err := step(spec); err != nil {
			return report{Message: err.Error()}
		}
	}
	return execute(spec.Process)
}

// enterRoot chroots into the root filesystem and changes into the working directory,
// which it creates if missing. The directory is found (inside the root, without magic
// links) before the chroot, while /proc, which that needs, is still there.
func enterRoot(spec *specs.Spec) error {
	cwd := spec.Process.Cwd
	root, err := os.OpenFile(spec.Root.Path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	defer root.Close()
	dir, err := pathrs.MkdirAllHandle(root, cwd, 0o755)
	if err != nil {
		return fmt.Errorf("workdir %s: %w", cwd, err)
	}
	defer dir.Close()
	if err := unix.Chroot(spec.Root.Path); err != nil {
		return fmt.Errorf("chroot %s: %w", spec.Root.Path, err)
	}
	if err := unix.Fchdir(int(dir.Fd())); err != nil {
		return fmt.Errorf("workdir %s: %w", cwd, err)
	}
	if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("workdir %s: outside the container", cwd)
	}
	return nil
}
