package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/forge-build/forge/tests/internal/faultproxy"
)

// signalCases are the signals that stop forge, and the exit status a shell expects.
var signalCases = []struct {
	sig  syscall.Signal
	name string
	code int
}{
	{syscall.SIGINT, "SIGINT", 130},
	{syscall.SIGTERM, "SIGTERM", 143},
}

// TestSignalStopsRunStep: SIGINT or SIGTERM during a RUN step of `forge bud`, or during
// `forge run`, kills the sandboxed command, removes the build's temporary containers and
// makes forge exit 130 or 143 with one error line naming the step and the signal.
func TestSignalStopsRunStep(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctr := s.workingContainer(t, "busybox")
	for i, sc := range signalCases {
		t.Run("bud/"+sc.name, func(t *testing.T) {
			token := fmt.Sprintf("%d", 7100+i)
			ctx := budContext(t, "FROM busybox\nRUN echo ready; exec sleep "+token+"\n", nil)
			p := budStart(t, s, "bud", "-t", uniqueRepo("signal"), ctx)
			r := stopWith(t, p, sc.sig, "ready")
			line := oneLineErrorOf(t, r, sc.code)
			for _, want := range []string{"Dockerfile:2", "RUN echo ready", sc.name} {
				if !strings.Contains(line, want) {
					t.Errorf("error line does not name %q: %s", want, line)
				}
			}
			noProcess(t, "sleep", token)
			if names := s.containerNames(t); len(names) != 1 || names[0] != ctr {
				t.Errorf("containers after the interrupted build: %q, want only %s (the build's must be removed)", names, ctr)
			}
		})
		t.Run("run/"+sc.name, func(t *testing.T) {
			token := fmt.Sprintf("%d", 7200+i)
			// One signal reaches forge in its namespace itself, the other the outer of
			// two forge processes (the way in where the early one does not apply).
			if sc.sig == syscall.SIGTERM {
				s.env[earlyEnv] = "0"
				defer delete(s.env, earlyEnv)
			}
			p := budStart(t, s, "run", ctr, "--", "sh", "-c", "echo ready; exec sleep "+token)
			r := stopWith(t, p, sc.sig, "ready")
			if line := oneLineErrorOf(t, r, sc.code); !strings.Contains(line, sc.name) {
				t.Errorf("error line does not name the signal %s: %s", sc.name, line)
			}
			noProcess(t, "sleep", token)
			if out := s.must(t, "run", ctr, "--", "echo", "again"); out != "again\n" {
				t.Errorf("forge run after the interrupted one printed %q", out)
			}
		})
	}
}

// TestSignalStopsTransfer: SIGINT or SIGTERM while a pull or a push waits on a registry
// that stopped answering makes forge exit 130 or 143 at once, naming the signal, and the
// pull leaves no image behind.
func TestSignalStopsTransfer(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	id := s.pull(t, "oci-archive:"+filepath.Join(e2e.Fixtures, "variant.tar"))
	for _, sc := range signalCases {
		t.Run("pull/"+sc.name, func(t *testing.T) {
			proxy := faultproxy.Start(e2e.Registry, faultproxy.Rule{PathContains: "/blobs/", Fault: faultproxy.Stall, Times: 1000})
			defer proxy.Close()
			before := summary(s.images(t))
			p := budStart(t, s, "pull", "--tls-verify=false", proxy.Addr+"/library/busybox:latest")
			r := stopWhenStalled(t, p, proxy, sc.sig)
			if line := oneLineErrorOf(t, r, sc.code); !strings.Contains(line, sc.name) {
				t.Errorf("error line does not name the signal %s: %s", sc.name, line)
			}
			if after := summary(s.images(t)); !equalStrings(before, after) {
				t.Errorf("the interrupted pull changed the store:\nbefore %q\nafter  %q", before, after)
			}
		})
		t.Run("push/"+sc.name, func(t *testing.T) {
			proxy := faultproxy.Start(e2e.Registry, faultproxy.Rule{PathContains: "/blobs/uploads/", Fault: faultproxy.Stall, Times: 1000})
			defer proxy.Close()
			p := budStart(t, s, "push", "--tls-verify=false", id, proxy.Addr+"/"+uniqueRepo("signal")+":1")
			r := stopWhenStalled(t, p, proxy, sc.sig)
			if line := oneLineErrorOf(t, r, sc.code); !strings.Contains(line, sc.name) {
				t.Errorf("error line does not name the signal %s: %s", sc.name, line)
			}
		})
	}
}

// TestSignalStopsCachePushes: SIGINT or SIGTERM while the end of a build waits for its
// --cache-to pushes (held up by the registry) makes forge exit 130 or 143 naming the
// signal, without tagging the image.
func TestSignalStopsCachePushes(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for i, sc := range signalCases {
		t.Run(sc.name, func(t *testing.T) {
			proxy := faultproxy.Start(e2e.Registry, faultproxy.Rule{PathContains: "/blobs/uploads/", Fault: faultproxy.Stall, Times: 1000})
			defer proxy.Close()
			ctx := budContext(t, fmt.Sprintf("FROM busybox\nRUN echo %d > /one\nRUN echo two > /two\nRUN echo three > /three\n", 7300+i), nil)
			name := "localhost/" + uniqueRepo("signal")
			p := budStart(t, s, "bud", "--tls-verify=false", "--cache-to", proxy.Addr+"/"+uniqueRepo("cache"), "-t", name, ctx)
			// The first step's push stalls: the two after it are still queued.
			r := stopWith(t, p, sc.sig, "Waiting for the --cache-to pushes of 2 more steps")
			if line := oneLineErrorOf(t, r, sc.code); !strings.Contains(line, sc.name) {
				t.Errorf("error line does not name the signal %s: %s", sc.name, line)
			}
			for _, img := range s.images(t) {
				if slices.Contains(img.Names, name+":latest") {
					t.Errorf("the interrupted build tagged its image %s: %v", name, img)
				}
			}
		})
	}
}

// stopWith waits until p has printed ready, sends it sig and waits for it to end.
func stopWith(t *testing.T, p *budProc, sig syscall.Signal, ready string) result {
	t.Helper()
	waitUntil(t, p, func() bool { return strings.Contains(p.out.String(), ready) }, "printed "+ready)
	return signalAndWait(t, p, sig)
}

// stopWhenStalled waits until the proxy holds a stalled request of p, then sends sig.
func stopWhenStalled(t *testing.T, p *budProc, proxy *faultproxy.Proxy, sig syscall.Signal) result {
	t.Helper()
	waitUntil(t, p, func() bool { _, stalled := proxy.Count("", ""); return stalled > 0 }, "reached the stalled registry")
	return signalAndWait(t, p, sig)
}

func waitUntil(t *testing.T, p *budProc, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("forge never %s; exited: %v, output:\n%s", what, p.exited(), p.out)
		}
	}
}

// signalAndWait sends sig to the forge process it started (as a shell or CI runner does)
// and waits up to 20 s for it to exit.
func signalAndWait(t *testing.T, p *budProc, sig syscall.Signal) result {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("forge did not exit within 20s of %v; output:\n%s", sig, p.out)
	}
	r := result{args: p.cmd.Args, stderr: p.out.String(), code: p.cmd.ProcessState.ExitCode()}
	t.Logf("forge after %v: exit %d, last line %q", sig, r.code, lastLine(r.stderr))
	return r
}

// oneLineErrorOf checks that r ended with exit status code and one `forge: ...` line
// as the last line of its output, and returns that line.
func oneLineErrorOf(t *testing.T, r result, code int) string {
	t.Helper()
	if r.code != code {
		t.Errorf("exit status %d, want %d; output:\n%s", r.code, code, r.stderr)
	}
	out := lines(r.stderr)
	if len(out) == 0 || !strings.HasPrefix(out[len(out)-1], "forge: ") {
		t.Fatalf("the last line of the output is not a `forge: ...` error:\n%s", r.stderr)
	}
	for _, l := range out {
		if strings.Contains(l, "panic:") || strings.HasPrefix(l, "goroutine ") {
			t.Fatalf("forge crashed:\n%s", r.stderr)
		}
	}
	return out[len(out)-1]
}

// containerNames lists every container in the store, by name.
func (s *store) containerNames(t *testing.T) []string {
	t.Helper()
	var list []struct {
		Name string `json:"name"`
	}
	decodeJSON(t, "containers --all --json", s.must(t, "containers", "--all", "--json"), &list)
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	return names
}

// noProcess fails when a process whose command line is exactly args is still running
// (after a grace period of 5 s): a sandboxed command that outlived forge.
func noProcess(t *testing.T, args ...string) {
	t.Helper()
	want := []byte(strings.Join(args, "\x00") + "\x00")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		pids := processesWith(want)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%q still runs after forge exited (pids %v)", strings.Join(args, " "), pids)
			return
		}
	}
}

func processesWith(cmdline []byte) []string {
	var pids []string
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && bytes.Equal(b, cmdline) {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}
