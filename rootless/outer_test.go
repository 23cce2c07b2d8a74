package rootless

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestWaitChild(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		script  string
		forward os.Signal // sent on the signal channel after start
		cancel  bool      // cancel ctx after start (and after forwarding)
		want    int       // 0 = nil error
	}{
		{name: "success", script: "exit 0"},
		{name: "failure", script: "exit 3", want: 3},
		{name: "cancel sends SIGTERM", script: "exec sleep 30", cancel: true, want: 128 + int(syscall.SIGTERM)},
		// SIGHUP: a background job may start with SIGINT ignored, and sleep would keep that.
		{name: "forwarded signal", script: "exec sleep 30", forward: syscall.SIGHUP, want: 128 + int(syscall.SIGHUP)},
		{name: "no SIGTERM after a forwarded signal", script: "sleep 30 & trap 'kill $!; exit 5' INT; trap 'kill $!; exit 6' TERM; wait",
			forward: syscall.SIGINT, cancel: true, want: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			cmd := exec.Command("sh", "-c", tt.script)
			must(t, cmd.Start())
			time.Sleep(100 * time.Millisecond) // let sh install its traps
			sigs := make(chan os.Signal, 1)
			if tt.forward != nil {
				sigs <- tt.forward
				time.Sleep(100 * time.Millisecond)
			}
			if tt.cancel {
				cancel()
			}
			err := waitChild(ctx, cmd, sigs)
			var exit *ExitError
			switch {
			case tt.want == 0 && err != nil:
				t.Errorf("waitChild = %v, want nil", err)
			case tt.want != 0 && (!errors.As(err, &exit) || exit.Code != tt.want):
				t.Errorf("waitChild = %v, want exit status %d", err, tt.want)
			}
		})
	}
}

func TestCurrentOutside(t *testing.T) {
	t.Parallel()
	info, err := Current()
	switch {
	case os.Geteuid() != 0:
		if err == nil {
			t.Errorf("Current() as uid %d outside the namespace = %+v, want an error", os.Geteuid(), info)
		}
	case err != nil:
		t.Errorf("Current() as root: %v", err)
	case os.Getenv(envConfigured) != "done" && info.Mode != ModeHost:
		t.Errorf("Current() as root = %+v, want mode host", info)
	}
}
