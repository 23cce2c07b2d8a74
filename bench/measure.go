package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sample is one timed command.
type sample struct {
	Wall   time.Duration // measured around the command
	User   time.Duration // CPU time in user mode, from /usr/bin/time -v
	Sys    time.Duration // CPU time in kernel mode
	MaxRSS int64         // peak resident set size in kB ("Maximum resident set size")
	Load   float64       // the 1-minute load average when the command started
	Others time.Duration // CPU time the rest of the machine used meanwhile (busy CPU time - User - Sys)
	Steal  time.Duration // CPU time the hypervisor took from this machine meanwhile
}

// CPU is the command's CPU time, user and kernel.
func (s sample) CPU() time.Duration { return s.User + s.Sys }

// loadAverage returns the 1-minute load average, or -1 when it cannot be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	first, _, _ := strings.Cut(string(b), " ")
	v, err := strconv.ParseFloat(first, 64)
	if err != nil {
		return -1
	}
	return v
}

// runner runs commands under /usr/bin/time -v, as the unprivileged user or as root.
type runner struct {
	work     string // work directory; logs go to work/logs
	uid, gid uint32
	env      []string // the user's base environment
}

func newRunner(work, name string) (*runner, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user %s: %w", name, err)
	}
	env := []string{
		"HOME=" + filepath.Join(work, "home"),
		"XDG_RUNTIME_DIR=" + filepath.Join(work, "run"),
		"TMPDIR=" + filepath.Join(work, "tmp"),
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"BUILDAH_ISOLATION=chroot",
	}
	if err := os.MkdirAll(filepath.Join(work, "logs"), 0o755); err != nil {
		return nil, err
	}
	return &runner{work: work, uid: uint32(uid), gid: uint32(gid), env: env}, nil
}

// invocation is one command to run: its argv, extra environment, and whether it runs as
// root (the push's physical reference, the chroot measure) instead of as the unprivileged user.
type invocation struct {
	Log    string   // name of the log file in work/logs
	Argv   []string // the command
	Env    []string // added to the base environment (later entries win)
	AsRoot bool
}

// run runs inv under /usr/bin/time -v and returns its sample; its output goes to the log.
func (r *runner) run(ctx context.Context, inv invocation) (sample, error) {
	timeFile := filepath.Join(r.work, "tmp", "time-v.txt")
	os.Remove(timeFile)
	logPath := filepath.Join(r.work, "logs", inv.Log)
	logFile, err := os.Create(logPath)
	if err != nil {
		return sample{}, err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "$ %s\n", strings.Join(inv.Argv, " "))
	args := append([]string{"-v", "-o", timeFile}, inv.Argv...)
	cmd := exec.CommandContext(ctx, "/usr/bin/time", args...)
	cmd.Dir = r.work
	cmd.Env = append(append([]string{}, r.env...), inv.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if !inv.AsRoot {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: r.uid, Gid: r.gid, Groups: []uint32{}}}
	}
	load := loadAverage()
	busy0, steal0 := cpuTimes()
	start := time.Now()
	runErr := cmd.Run()
	wall := time.Since(start)
	busy1, steal1 := cpuTimes()
	s, err := parseTimeV(timeFile)
	s.Wall, s.Load, s.Steal = wall, load, steal1-steal0
	s.Others = max(0, busy1-busy0-s.CPU())
	if runErr != nil {
		return s, fmt.Errorf("%s: %w (log: %s)%s", filepath.Base(inv.Argv[0]), runErr, logPath, tail(logPath, 5))
	}
	return s, err
}

// cpuTimes returns the CPU time all CPUs spent busy (user, nice, system, irq, softirq)
// and the time the hypervisor stole, from /proc/stat; zeros when it cannot be read.
func cpuTimes() (busy, steal time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	tick := func(i int) time.Duration {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		return time.Duration(v) * time.Second / 100 // USER_HZ is 100 on Linux
	}
	return tick(1) + tick(2) + tick(3) + tick(6) + tick(7), tick(8)
}

// parseTimeV reads the report of GNU time -v.
func parseTimeV(path string) (sample, error) {
	var s sample
	f, err := os.Open(path)
	if err != nil {
		return s, fmt.Errorf("time -v report: %w", err)
	}
	defer f.Close()
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), ": ")
		if !ok {
			continue
		}
		switch key {
		case "User time (seconds)":
			s.User = seconds(value)
		case "System time (seconds)":
			s.Sys = seconds(value)
		case "Maximum resident set size (kbytes)":
			s.MaxRSS, err = strconv.ParseInt(value, 10, 64)
			found = err == nil
		}
	}
	if !found {
		return s, fmt.Errorf("time -v report %s: no maximum resident set size", path)
	}
	return s, sc.Err()
}

func seconds(v string) time.Duration {
	f, _ := strconv.ParseFloat(v, 64)
	return time.Duration(f * float64(time.Second))
}

// tail returns the last n lines of a file, indented, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n    " + strings.Join(lines, "\n    ")
}

// userDir makes dir (and its parents) and gives it to the unprivileged user.
func (r *runner) userDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chown(dir, int(r.uid), int(r.gid))
}
