package sandbox_test

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/forge-build/forge/rootless/sandbox"
)

// openTestPTY gives the test its own terminal, as a user's shell would have.
func openTestPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	master = os.NewFile(uintptr(m), "ptmx")
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		t.Fatal(errno)
	}
	slave = os.NewFile(s, "pts")
	t.Cleanup(func() { master.Close(); slave.Close() })
	return master, slave
}

func TestRunTTY(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	_, slave := openTestPTY(t)
	fd := int(slave.Fd())
	if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sandbox.Config{TTY: true, Stdin: slave}
	got := mustRun(t, cfg, `test -t 0 && test -t 1 && test -t 2 && echo tty; stty size; test -c /dev/console && echo console; echo $TERM`)
	if got != "tty\r\n33 101\r\nconsole\r\nxterm" {
		t.Errorf("with a TTY: %q", got)
	}
	after, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Error("the caller's terminal mode was not restored")
	}
}
