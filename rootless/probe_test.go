package rootless

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.podman.io/storage/pkg/unshare"
)

// probeEnv turns the test binary into the probe: a stand-in for forge's main that calls
// Enter and then does what its arguments say. The real tests run a copy of the test
// binary with it set, as an unprivileged user.
const probeEnv = "FORGE_ROOTLESS_PROBE"

func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) == "1" {
		os.Exit(probe(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// probeReport is what `probe info` prints, as JSON.
type probeReport struct {
	Info       Info
	IDU        string   // output of `id -u`
	Euid       int      // os.Geteuid()
	CapEff     string   // from /proc/self/status
	CapBnd     string   // from /proc/self/status
	RootShared bool     // / is a shared mount (it must be private)
	Cwd        string   // os.Getwd()
	ForgeEnv   []string // names of _FORGE_USERNS_* variables in the final process
	// What go.podman.io/storage concludes from the environment Enter set.
	StorageRootless bool
	StorageUID      int
	StorageGID      int
}

// probe mirrors main.go: a signal-aware ctx, Enter, and the child's status as its own.
func probe(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	reexeced, err := Enter(ctx, Options{Logger: log})
	var exit *ExitError
	switch {
	case errors.As(err, &exit):
		if exit.Message != "" {
			fmt.Fprintln(os.Stderr, "probe:", exit.Message)
		}
		return exit.Code
	case err != nil:
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	case reexeced:
		return 0
	}
	if err := runProbe(ctx, args); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	return 0
}

func runProbe(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("no probe command")
	}
	switch args[0] {
	case "info":
		return probeInfo(ctx)
	case "exit":
		n, _ := strconv.Atoi(args[1])
		os.Exit(n)
	case "kill-self":
		return syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case "chown":
		if err := os.WriteFile(args[1], nil, 0o644); err != nil {
			return err
		}
		return os.Lchown(args[1], 1000, 1000)
	case "nested": // forge started from inside, as `forge unshare` does
		cmd := exec.CommandContext(ctx, "/proc/self/exe", "info")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		return cmd.Run()
	case "wait-signal":
		fmt.Printf("ready %d\n", os.Getpid())
		<-ctx.Done()
		fmt.Println("child got the signal")
		os.Exit(7)
	}
	return fmt.Errorf("unknown probe command %q", args[0])
}

func probeInfo(ctx context.Context) error {
	var r probeReport
	var err error
	if r.Info, err = Current(); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "id", "-u").Output()
	if err != nil {
		return fmt.Errorf("id -u: %w", err)
	}
	r.IDU, r.Euid = strings.TrimSpace(string(out)), os.Geteuid()
	r.CapEff, r.CapBnd, r.RootShared = procStatus("CapEff"), procStatus("CapBnd"), rootShared()
	r.Cwd, _ = os.Getwd()
	r.StorageRootless, r.StorageUID, r.StorageGID = unshare.IsRootless(), unshare.GetRootlessUID(), unshare.GetRootlessGID()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "_FORGE_USERNS_") && name != envEarly { // the test's own
			r.ForgeEnv = append(r.ForgeEnv, name)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// procStatus returns a field of /proc/self/status.
func procStatus(field string) string {
	b, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// rootShared reports whether / carries a "shared:N" propagation tag in mountinfo.
func rootShared() bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 6 && fields[4] == "/" && strings.Contains(sc.Text(), " shared:") {
			return true
		}
	}
	return false
}
