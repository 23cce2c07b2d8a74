package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// stdio connects the child to the caller's streams: directly, or through a
// pseudo-terminal whose master the parent copies to and from.
type stdio struct {
	cfg      Config
	master   *os.File // nil without a TTY
	slave    *os.File
	restore  *term.State // the caller's terminal mode before MakeRaw
	termFD   int
	winch    chan os.Signal
	copied   sync.WaitGroup // the master-to-Stdout copy
	stopOnce sync.Once
}

// attachStdio sets cmd's standard streams for cfg.
func attachStdio(cmd *exec.Cmd, cfg Config) (*stdio, error) {
	s := &stdio{cfg: cfg, termFD: -1}
	if !cfg.TTY {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr
		return s, nil
	}
	master, slave, err := openPTY()
	if err != nil {
		return nil, err
	}
	s.master, s.slave = master, slave
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	s.termFD = callerTerminal(cfg)
	if s.termFD >= 0 {
		s.resize()
	}
	return s, nil
}

// openPTY allocates a pseudo-terminal pair from /dev/ptmx.
func openPTY() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	master = os.NewFile(uintptr(m), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER opens the slave without a path lookup in /dev/pts.
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER,
		uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		master.Close()
		return nil, nil, fmt.Errorf("open pty slave: %w", errno)
	}
	return master, os.NewFile(s, "pty-slave"), nil
}

// callerTerminal is the descriptor of the caller's terminal (Stdin first, then Stdout),
// or -1.
func callerTerminal(cfg Config) int {
	for _, v := range []any{cfg.Stdin, cfg.Stdout} {
		if f, ok := v.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return int(f.Fd())
		}
	}
	return -1
}

// started runs once the child has started: the parent's copy of the slave is closed,
// the caller's terminal made raw, and the copies begin.
func (s *stdio) started() {
	if s.master == nil {
		return
	}
	s.slave.Close()
	if f, ok := s.cfg.Stdin.(*os.File); ok && int(f.Fd()) == s.termFD {
		if st, err := term.MakeRaw(s.termFD); err == nil {
			s.restore = st
		}
	}
	if s.termFD >= 0 {
		s.winch = make(chan os.Signal, 1)
		signal.Notify(s.winch, syscall.SIGWINCH)
		go func() {
			for range s.winch {
				s.resize()
			}
		}()
	}
	if s.cfg.Stdin != nil {
		go func() { _, _ = io.Copy(s.master, s.cfg.Stdin) }()
	}
	s.copied.Add(1)
	go func() {
		defer s.copied.Done()
		out := s.cfg.Stdout
		if out == nil {
			out = io.Discard
		}
		_, _ = io.Copy(out, s.master) // ends with EIO once every slave is closed
	}()
}

// resize copies the caller's window size to the pty.
func (s *stdio) resize() {
	ws, err := unix.IoctlGetWinsize(s.termFD, unix.TIOCGWINSZ)
	if err == nil {
		_ = unix.IoctlSetWinsize(int(s.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// wait waits (briefly) for the command's output to be copied out.
func (s *stdio) wait() {
	if s.master == nil {
		return
	}
	done := make(chan struct{})
	go func() { s.copied.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(killDeadline):
	}
}

// close restores the caller's terminal and releases the pty.
func (s *stdio) close() {
	s.stopOnce.Do(func() {
		if s.master == nil {
			return
		}
		if s.winch != nil {
			signal.Stop(s.winch)
			close(s.winch)
		}
		if s.restore != nil {
			_ = term.Restore(s.termFD, s.restore)
		}
		_ = s.slave.Close() // already closed once the child started
		_ = s.master.Close()
	})
}
