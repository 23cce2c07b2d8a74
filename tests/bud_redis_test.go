package tests

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// budRedisDockerfile is examples/redis/Dockerfile, the seed's example (the
// test binary runs where the source tree may not be readable, so it is here too).
const budRedisDockerfile = `FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y redis-server
CMD ["redis-server"]
`

// TestBudRedisSeed is the seed's promise: `forge bud -t usamaa/redis .` on a
// Debian base (from the local registry, through the docker.io mirror), with
// apt-get reaching the apt mirror from inside the RUN sandbox; the image then
// runs redis-server, and redis-cli in a second container gets PONG from it.
func TestBudRedisSeed(t *testing.T) {
	t.Parallel()
	checkRedisSeed(t, newStore(t))
}

// checkRedisSeed builds the seed's example on s, runs redis-server from the image and
// pings it from a second container.
func checkRedisSeed(t *testing.T, s *store) {
	t.Helper()
	ctx := budContext(t, budRedisDockerfile, nil)
	id, r := s.budOK(t, "", "-t", "usamaa/redis", ctx)
	checkBudOutput(t, r, []string{
		"STEP 1/3: FROM debian:bookworm-slim",
		"STEP 2/3: RUN apt-get update && apt-get install -y redis-server",
		"Setting up redis-server",
		"STEP 3/3: CMD [\"redis-server\"]",
		"COMMIT",
	})
	b := exportBuilt(t, s, id, r, false)
	budWantStrings(t, "Cmd", b.cfg.Config.Cmd, "redis-server")
	if n := len(b.cfg.RootFS.DiffIDs); n != 2 {
		t.Errorf("%d layers, want 2 (debian's and the RUN's)", n)
	}

	port := strconv.Itoa(budFreePort(t))
	server := s.workingContainer(t, "--pull", "never", "localhost/usamaa/redis")
	client := s.workingContainer(t, "--pull", "never", "localhost/usamaa/redis")
	p := budStart(t, s, "run", server, "--", "redis-server", "--port", port, "--save", "", "--daemonize", "no")
	pong := false
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if p.exited() {
			t.Errorf("forge run redis-server ended early: %v", p.err)
			break
		}
		if r := s.run(t, "run", client, "--", "redis-cli", "-p", port, "ping"); r.code == 0 && r.stdout == "PONG\n" {
			pong = true
			break
		}
	}
	if !pong {
		t.Errorf("redis-cli -p %s ping from a second container never got PONG; the server's output:\n%s", port, p.out)
	}

	if err := p.cmd.Process.Signal(os.Interrupt); err != nil && !p.exited() {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		t.Logf("forge run redis-server after SIGINT: %v", p.err)
	case <-time.After(30 * time.Second):
		t.Fatalf("forge run redis-server did not end within 30s of SIGINT; output:\n%s", p.out)
	}
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
		conn.Close()
		t.Errorf("redis-server still answers on port %s after forge ended", port)
	}
}

// budFreePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func budFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// budProc is a forge process running in the background.
type budProc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when it has exited; err is then set
	err  error
}

// syncBuffer is a bytes.Buffer that a process writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// budStart starts forge on s in the background, in a process group of its
// own, with stdout and stderr collected; the group is killed when the test ends.
func budStart(t *testing.T, s *store, args ...string) *budProc {
	t.Helper()
	p := &budProc{cmd: exec.Command(e2e.Bin, append(s.globalArgs(), args...)...), out: &syncBuffer{}, done: make(chan struct{})}
	if len(s.wrap) > 0 {
		p.cmd = exec.Command(s.wrap[0], append(append(append([]string{}, s.wrap[1:]...), e2e.Bin), append(s.globalArgs(), args...)...)...)
	}
	p.cmd.Env = mergeEnv(os.Environ(), s.env)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("started forge %s (pid %d)", strings.Join(args, " "), p.cmd.Process.Pid)
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// exited says whether the process has ended.
func (p *budProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
