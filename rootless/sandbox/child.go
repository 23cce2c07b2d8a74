package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// report is what the child tells the parent when it does not execute the command.
// A successful exec closes the status pipe with nothing written.
type report struct {
	Status  int    `json:"status"` // 126 or 127 when the command cannot run, 0 for a sandbox failure
	Message string `json:"message"`
}

// childMain is the "forge-sandbox" reexec entry point: PID 1 of the sandbox's PID
// namespace. It returns only by exec'ing the command or by exiting.
func childMain() { entry(child) }

// entry runs a re-exec entry point's body, which returns only on failure, and reports
// that failure to the parent on the status descriptor before exiting.
func entry(body func() report) {
	// Capabilities and the bounding set are per thread: do all of it on this one, the
	// thread that execs.
	runtime.LockOSThread()
	status := os.NewFile(statusFD, "status")
	rep := body()
	_ = json.NewEncoder(status).Encode(rep)
	code := rep.Status
	if code == 0 {
		code = 1
	}
	os.Exit(code)
}

// child sets up the sandbox and execs the command; it returns only on failure.
func child() report {
	spec, err := readSpec()
	if err != nil {
		return report{Message: err.Error()}
	}
	// Nothing inherited beyond stdio may reach the command (CVE-2024-21626).
	if err := unix.CloseRange(specFD, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return report{Message: fmt.Sprintf("close inherited files: %v", err)}
	}
	steps := []func(*specs.Spec) error{setupRoot, setHostname, enterWorkDir, setCredentials}
	for _, step := range steps {
		if err := step(spec); err != nil {
			return report{Message: err.Error()}
		}
	}
	return execute(spec.Process)
}

func readSpec() (*specs.Spec, error) {
	f := os.NewFile(specFD, "spec")
	defer f.Close()
	var spec specs.Spec
	if err := json.NewDecoder(io.LimitReader(f, 64<<20)).Decode(&spec); err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	if spec.Root == nil || spec.Process == nil || spec.Linux == nil || len(spec.Process.Args) == 0 {
		return nil, errors.New("read spec: incomplete")
	}
	return &spec, nil
}

func setHostname(spec *specs.Spec) error {
	if spec.Hostname == "" {
		return nil
	}
	if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	return nil
}

// enterWorkDir creates the working directory if missing and changes into it. It runs
// after pivot_root, resolving the path inside the new root without magic links, so
// `/proc/self/fd/N` cannot lead out of it; getcwd then confirms where it landed.
func enterWorkDir(spec *specs.Spec) error {
	cwd := spec.Process.Cwd
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("workdir %s: %w", cwd, err)
	}
	defer root.Close()
	dir, err := pathrs.MkdirAllHandle(root, cwd, 0o755)
	if err != nil {
		return fmt.Errorf("workdir %s: %w", cwd, err)
	}
	defer dir.Close()
	if err := unix.Fchdir(int(dir.Fd())); err != nil {
		return fmt.Errorf("workdir %s: %w", cwd, err)
	}
	wd, err := unix.Getwd()
	if err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("workdir %s: outside the container", cwd)
	}
	return nil
}

// setCredentials applies the bounding set, switches to the process's user and groups,
// and leaves the effective, permitted and inheritable sets the spec asks for (none for a
// user other than root: the uid change clears them).
func setCredentials(spec *specs.Spec) error {
	p := spec.Process
	bounding, err := capList(p.Capabilities.Bounding)
	if err != nil {
		return err
	}
	caps, err := capability.NewPid2(0)
	if err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	caps.Clear(capability.CAPS | capability.BOUNDS | capability.AMBS)
	caps.Set(capability.BOUNDING|capability.EFFECTIVE|capability.PERMITTED, bounding...)
	if err := caps.Apply(capability.CAPS | capability.BOUNDS | capability.AMBS); err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	if err := setIDs(p.User); err != nil {
		return err
	}
	caps.Clear(capability.CAPS | capability.AMBS)
	for which, names := range map[capability.CapType][]string{
		capability.EFFECTIVE:   p.Capabilities.Effective,
		capability.PERMITTED:   p.Capabilities.Permitted,
		capability.INHERITABLE: p.Capabilities.Inheritable,
	} {
		list, err := capList(names)
		if err != nil {
			return err
		}
		caps.Set(which, list...)
	}
	if err := caps.Apply(capability.CAPS | capability.AMBS); err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	return nil
}

// setIDs switches groups, gid and uid (for every thread).
func setIDs(u specs.User) error {
	groups := make([]int, len(u.AdditionalGids))
	for i, g := range u.AdditionalGids {
		groups[i] = int(g)
	}
	// With setgroups denied (a single-ID user namespace) an empty list is left alone.
	if err := syscall.Setgroups(groups); err != nil && (len(groups) > 0 || !errors.Is(err, unix.EPERM)) {
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if err := syscall.Setgid(int(u.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", u.GID, err)
	}
	if err := syscall.Setuid(int(u.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", u.UID, err)
	}
	// Changing credentials clears the parent-death signal: without it a command run as
	// another user would outlive a killed forge where no PID namespace ends it (chroot).
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("set the parent-death signal: %w", err)
	}
	return nil
}

// capList turns "CAP_CHOWN"-style names into capabilities.
func capList(names []string) ([]capability.Cap, error) {
	known := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		known["CAP_"+strings.ToUpper(c.String())] = c
	}
	list := make([]capability.Cap, 0, len(names))
	for _, n := range names {
		c, ok := known[n]
		if !ok {
			return nil, fmt.Errorf("capabilities: unknown capability %s", n)
		}
		list = append(list, c)
	}
	return list, nil
}

// execute looks the command up in the container's PATH and execs it; it returns only
// when that fails, with the status a shell would give (127 not found, 126 not runnable).
func execute(p *specs.Process) report {
	name := p.Args[0]
	file, found := lookPath(name, envValue(p.Env, "PATH"))
	if !found {
		return report{Status: StatusNotFound, Message: name + ": command not found"}
	}
	err := unix.Exec(file, p.Args, p.Env)
	switch {
	case errors.Is(err, unix.ENOENT):
		return report{Status: StatusNotFound, Message: name + ": no such file or directory"}
	default:
		return report{Status: StatusNotExecutable, Message: fmt.Sprintf("%s: %v", name, err)}
	}
}

// lookPath finds name in the directories of pathEnv, like a shell. A name with a slash is
// used as it is. A file found but not executable is still returned so that exec reports
// why (126).
func lookPath(name, pathEnv string) (string, bool) {
	if strings.Contains(name, "/") {
		return name, true
	}
	denied := ""
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil || st.IsDir() {
			continue
		}
		if unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS) == nil {
			return p, true
		}
		if denied == "" {
			denied = p
		}
	}
	return denied, denied != ""
}

// envValue is the value of key in env (the last one wins).
func envValue(env []string, key string) string {
	value := ""
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			value = v
		}
	}
	return value
}

// readReport reads the child's report: nil when the pipe closed empty (the command was
// executed, or the child died before it could say anything).
func readReport(r io.Reader) (*report, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read sandbox status: %w", err)
	}
	if len(data) == 0 {
		return nil, nil
	}
	var rep report
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("read sandbox status: %w", err)
	}
	return &rep, nil
}
