package rootless

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Isolation is how forge keeps a RUN step apart from the host: in namespaces of its own
// (the default), or, where no namespace can be made, only by chroot into the step's root
// filesystem.
type Isolation string

const (
	// IsolationNamespaces: forge's user namespace (or real root), a sandbox with its own
	// mount, PID, IPC and UTS namespaces, any storage driver.
	IsolationNamespaces Isolation = "namespaces"
	// IsolationChroot: no new namespace and no mount at all: vfs storage, RUN steps
	// chroot into the container's root filesystem. For uid 0 in an unprivileged container.
	IsolationChroot Isolation = "chroot"
)

// IsolationChoice is the isolation in use and why, for the one start-up note and
// `forge info`.
type IsolationChoice struct {
	Isolation Isolation `json:"isolation"`
	Reason    string    `json:"reason"`
	// Detected is true when forge chose chroot by itself because namespaces do not work.
	Detected bool `json:"detected"`
}

// ParseIsolation reads a --isolation value: "auto" (or empty), "namespaces" or "chroot".
// Auto gives "".
func ParseIsolation(v string) (Isolation, error) {
	switch v {
	case "", "auto":
		return "", nil
	case string(IsolationNamespaces), string(IsolationChroot):
		return Isolation(v), nil
	}
	return "", fmt.Errorf("isolation %q: want auto, namespaces or chroot", v)
}

// ChooseIsolation settles the isolation before forge touches storage. requested is
// what ParseIsolation gave ("" = auto) and source names where it came from (e.g.
// "--isolation"). An ordinary user gets namespaces (its own user namespace); chroot needs
// uid 0. For uid 0, auto probes whether a mount namespace can be made and a mount done in
// it, which a default Docker or Kubernetes container refuses (no CAP_SYS_ADMIN, seccomp,
// AppArmor).
func ChooseIsolation(requested Isolation, source string) (IsolationChoice, error) {
	root := os.Geteuid() == 0
	switch {
	case requested == IsolationChroot && !root:
		return IsolationChoice{}, fmt.Errorf("%s chroot: needs root (uid 0), as in a container's default user; "+
			"as uid %d forge isolates RUN steps in its own user namespace", source, os.Geteuid())
	case requested != "":
		return IsolationChoice{Isolation: requested, Reason: "chosen with " + source}, nil
	case !root || insideOwnNamespace():
		return IsolationChoice{Isolation: IsolationNamespaces, Reason: "forge's own user namespace"}, nil
	}
	if err := <-probeNamespaces(); err != nil {
		return IsolationChoice{Isolation: IsolationChroot, Detected: true,
			Reason: "namespaces cannot be made here (" + err.Error() + "), as in a container without privileges"}, nil
	}
	return IsolationChoice{Isolation: IsolationNamespaces, Reason: "mount namespaces work as root here"}, nil
}

// insideOwnNamespace reports whether this process is one forge started in its user
// namespace (the outer process chose the isolation already).
func insideOwnNamespace() bool {
	if _, ok := os.LookupEnv(envStage1); ok {
		return true
	}
	if os.Getenv(envConfigured) != "done" {
		return false
	}
	m, err := readIDMap("/proc/self/uid_map")
	return err == nil && !isIdentity(m)
}

// probeNamespaces tries, on a thread of its own that is thrown away afterwards, what a RUN
// sandbox needs first: a new mount namespace and a mount in it (making / private there,
// which changes nothing outside it).
func probeNamespaces() <-chan error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread's namespace is not the process's any more, so Go
		// ends the thread when this goroutine returns.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNS): %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("mount in a new mount namespace: %w", err)
			return
		}
		errc <- nil
	}()
	return errc
}
