// Command nons runs a command the way a default Docker or Kubernetes container runs its
// processes, as far as creating namespaces and mounting go: a seccomp filter refuses
// unshare, setns, mount, umount2 and pivot_root (EPERM), clone with any CLONE_NEW* flag
// (EPERM) and clone3 (ENOSYS, so that the C library falls back to clone), and the
// capability bounding set is cut down to Docker's default set (no CAP_SYS_ADMIN). As in
// Docker, no_new_privs stays unset: the filter is installed while nons still holds
// CAP_SYS_ADMIN, which seccomp accepts instead. nons must start as root.
//
//	nons COMMAND [ARG...]
//
// The end-to-end tests run forge as root under it to check chroot isolation; `nons unshare
// -U true` must fail, which shows the simulation is real.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dockerCaps is Docker's default capability set, the bounding set nons leaves.
var dockerCaps = []uintptr{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FSETID, unix.CAP_FOWNER, unix.CAP_MKNOD,
	unix.CAP_NET_RAW, unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_SETFCAP, unix.CAP_SETPCAP,
	unix.CAP_NET_BIND_SERVICE, unix.CAP_SYS_CHROOT, unix.CAP_KILL, unix.CAP_AUDIT_WRITE,
}

// newNamespaceFlags are the clone flags Docker's default profile refuses without
// CAP_SYS_ADMIN.
const newNamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nons COMMAND [ARG...]")
		os.Exit(2)
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "nons: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	runtime.LockOSThread()
	path, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	filter, err := seccompFilter()
	if err != nil {
		return err
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	// TSYNC: every thread of this process gets the filter, not only this one.
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog))); errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	if err := dropBoundingSet(); err != nil {
		return err
	}
	return fmt.Errorf("exec %s: %w", path, syscall.Exec(path, args, os.Environ()))
}

// dropBoundingSet removes every capability but Docker's default ones from the bounding
// set; the exec then leaves root with only those.
func dropBoundingSet() error {
	keep := map[uintptr]bool{}
	for _, c := range dockerCaps {
		keep[c] = true
	}
	for c := uintptr(0); c <= unix.CAP_LAST_CAP; c++ {
		if keep[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	return nil
}

// seccompFilter is the BPF program: refuse the namespace and mount calls, allow the rest.
func seccompFilter() ([]unix.SockFilter, error) {
	arch, ok := map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}[runtime.GOARCH]
	if !ok {
		return nil, fmt.Errorf("seccomp: no filter for %s", runtime.GOARCH)
	}
	const (
		ld    = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
		nrOff = 0  // seccomp_data.nr
		arOff = 4  // seccomp_data.arch
		a0Off = 16 // seccomp_data.args[0], low 32 bits (little endian)
	)
	eperm := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	enosys := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
	p := []unix.SockFilter{
		{Code: ld, K: arOff},
		{Code: jeq, K: arch, Jt: 1},
		{Code: ret, K: eperm},
		{Code: ld, K: nrOff},
	}
	deny := func(nr uintptr, action uint32) {
		p = append(p, unix.SockFilter{Code: jeq, K: uint32(nr), Jf: 1}, unix.SockFilter{Code: ret, K: action})
	}
	for _, nr := range []uintptr{unix.SYS_UNSHARE, unix.SYS_SETNS, unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT,
		unix.SYS_OPEN_TREE, unix.SYS_MOVE_MOUNT, unix.SYS_FSOPEN, unix.SYS_FSMOUNT} {
		deny(nr, eperm)
	}
	deny(unix.SYS_CLONE3, enosys)
	// clone: the flags are its first argument on both architectures.
	p = append(p,
		unix.SockFilter{Code: jeq, K: uint32(unix.SYS_CLONE), Jf: 3},
		unix.SockFilter{Code: ld, K: a0Off},
		unix.SockFilter{Code: jset, K: newNamespaceFlags, Jf: 1},
		unix.SockFilter{Code: ret, K: eperm},
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	)
	return p, nil
}
