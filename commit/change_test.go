package commit

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forge-build/forge/storage"
)

// base is the config the Apply tests start from.
func base() storage.ImageConfig {
	cfg := storage.ScratchConfig()
	cfg.Config = storage.ContainerConfig{
		Env:          []string{"PATH=/usr/bin:/bin", "HOME=/root"},
		Cmd:          []string{"sh"},
		Labels:       map[string]string{"keep": "1"},
		ExposedPorts: map[string]struct{}{"22/tcp": {}},
		Volumes:      map[string]struct{}{"/old": {}},
		WorkingDir:   "/srv",
	}
	return cfg
}

func TestApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		changes []string
		want    func(c *storage.ImageConfig) // edits base() into the expected config
	}{
		{"cmd json", []string{`CMD ["redis-server", "--port", "6380"]`}, func(c *storage.ImageConfig) {
			c.Config.Cmd = []string{"redis-server", "--port", "6380"}
		}},
		{"cmd single quotes are shell form", []string{`CMD ['redis-server']`}, func(c *storage.ImageConfig) {
			c.Config.Cmd = []string{"/bin/sh", "-c", "['redis-server']"}
		}},
		{"cmd shell form", []string{`CMD echo "$HOME"  x`}, func(c *storage.ImageConfig) {
			c.Config.Cmd = []string{"/bin/sh", "-c", `echo "$HOME"  x`}
		}},
		{"cmd unterminated bracket is shell form", []string{`CMD [`}, func(c *storage.ImageConfig) {
			c.Config.Cmd = []string{"/bin/sh", "-c", "["}
		}},
		{"lower-case instruction", []string{`cmd ["a"]`}, func(c *storage.ImageConfig) {
			c.Config.Cmd = []string{"a"}
		}},
		{"shell then cmd shell form", []string{`SHELL ["/bin/bash", "-eu", "-c"]`, `CMD make`}, func(c *storage.ImageConfig) {
			c.Config.Shell = []string{"/bin/bash", "-eu", "-c"}
			c.Config.Cmd = []string{"/bin/bash", "-eu", "-c", "make"}
		}},
		{"entrypoint json clears cmd", []string{`ENTRYPOINT ["/init"]`}, func(c *storage.ImageConfig) {
			c.Config.Entrypoint = []string{"/init"}
			c.Config.Cmd = nil
		}},
		{"entrypoint shell form", []string{`ENTRYPOINT exec nginx`}, func(c *storage.ImageConfig) {
			c.Config.Entrypoint = []string{"/bin/sh", "-c", "exec nginx"}
			c.Config.Cmd = nil
		}},
		{"cmd then entrypoint keeps cmd", []string{`CMD ["-g"]`, `ENTRYPOINT ["nginx"]`}, func(c *storage.ImageConfig) {
			c.Config.Cmd = []string{"-g"}
			c.Config.Entrypoint = []string{"nginx"}
		}},
		{"entrypoint empty array", []string{`ENTRYPOINT []`}, func(c *storage.ImageConfig) {
			c.Config.Cmd = nil
		}},
		{"env equals form, replace and append", []string{`ENV HOME=/home/u A="x y" B=$HOME`}, func(c *storage.ImageConfig) {
			c.Config.Env = []string{"PATH=/usr/bin:/bin", "HOME=/home/u", "A=x y", "B=/root"}
		}},
		{"env legacy form", []string{`ENV GREETING hello   world`}, func(c *storage.ImageConfig) {
			c.Config.Env = append(c.Config.Env, "GREETING=hello   world")
		}},
		{"env expands against the config", []string{`ENV PATH=/opt/bin:$PATH`}, func(c *storage.ImageConfig) {
			c.Config.Env[0] = "PATH=/opt/bin:/usr/bin:/bin"
		}},
		{"env then label sees the new value", []string{`ENV V=2`, `LABEL version=$V`}, func(c *storage.ImageConfig) {
			c.Config.Env = append(c.Config.Env, "V=2")
			c.Config.Labels["version"] = "2"
		}},
		{"label merges", []string{`LABEL k=v "a b"="c d" keep=2`}, func(c *storage.ImageConfig) {
			c.Config.Labels = map[string]string{"keep": "2", "k": "v", "a b": "c d"}
		}},
		{"expose adds tcp", []string{`EXPOSE 80 53/udp 8000-8001/TCP 127.0.0.1:8080:9090`}, func(c *storage.ImageConfig) {
			for _, p := range []string{"80/tcp", "53/udp", "8000/tcp", "8001/tcp", "9090/tcp"} {
				c.Config.ExposedPorts[p] = struct{}{}
			}
		}},
		{"volume adds, json and plain", []string{`VOLUME /data /logs`, `VOLUME ["/cache"]`}, func(c *storage.ImageConfig) {
			c.Config.Volumes = map[string]struct{}{"/old": {}, "/data": {}, "/logs": {}, "/cache": {}}
		}},
		{"user", []string{`USER 1000:1000`}, func(c *storage.ImageConfig) { c.Config.User = "1000:1000" }},
		{"workdir absolute", []string{`WORKDIR /x/../y/`}, func(c *storage.ImageConfig) { c.Config.WorkingDir = "/y" }},
		{"workdir relative", []string{`WORKDIR app`, `WORKDIR $HOME`}, func(c *storage.ImageConfig) {
			c.Config.WorkingDir = "/root"
		}},
		{"workdir relative joins", []string{`WORKDIR app`}, func(c *storage.ImageConfig) { c.Config.WorkingDir = "/srv/app" }},
		{"stopsignal", []string{`STOPSIGNAL SIGQUIT`}, func(c *storage.ImageConfig) { c.Config.StopSignal = "SIGQUIT" }},
		{"stopsignal number and realtime", []string{`STOPSIGNAL 9`, `STOPSIGNAL RTMIN+3`}, func(c *storage.ImageConfig) {
			c.Config.StopSignal = "RTMIN+3"
		}},
		{"onbuild keeps raw trigger", []string{`ONBUILD RUN echo  "$A"`, `ONBUILD COPY . /src`}, func(c *storage.ImageConfig) {
			c.Config.OnBuild = []string{`RUN echo  "$A"`, `COPY . /src`}
		}},
		{"healthcheck", []string{`HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD curl -f http://localhost/`}, func(c *storage.ImageConfig) {
			c.Config.Healthcheck = &storage.HealthConfig{
				Test: []string{"CMD-SHELL", "curl -f http://localhost/"}, Interval: 5 * time.Second, Timeout: 2 * time.Second, Retries: 3,
			}
		}},
		{"healthcheck json", []string{`HEALTHCHECK CMD ["/bin/check", "-q"]`}, func(c *storage.ImageConfig) {
			c.Config.Healthcheck = &storage.HealthConfig{Test: []string{"CMD", "/bin/check", "-q"}}
		}},
		{"healthcheck none", []string{`HEALTHCHECK NONE`}, func(c *storage.ImageConfig) {
			c.Config.Healthcheck = &storage.HealthConfig{Test: []string{"NONE"}}
		}},
		{"maintainer", []string{`MAINTAINER Jane <j@example.com>`}, func(c *storage.ImageConfig) { c.Author = "Jane <j@example.com>" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			changes, err := ParseChanges(tt.changes)
			if err != nil {
				t.Fatalf("ParseChanges(%q): %v", tt.changes, err)
			}
			got, want := base(), base()
			if err := Apply(&got, changes); err != nil {
				t.Fatalf("Apply(%q): %v", tt.changes, err)
			}
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Apply(%q)\n got %+v\nwant %+v", tt.changes, got.Config, want.Config)
			}
		})
	}
}

func TestApplyDoesNotAliasInput(t *testing.T) {
	t.Parallel()
	orig := base()
	cfg := orig.Clone()
	changes, err := ParseChanges([]string{"ENV HOME=/x", "LABEL keep=2", "EXPOSE 1", "VOLUME /v"})
	if err != nil {
		t.Fatal(err)
	}
	shared := cfg // shares slices and maps with cfg
	if err := Apply(&cfg, changes); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(shared, orig) {
		t.Errorf("Apply changed the slices and maps of its input: %+v", shared.Config)
	}
}

func TestParseChangesErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		change string
		want   string // substring of the error
	}{
		{`CMD [1, 2]`, "arrays must be comprised of strings only"},
		{`EXPOSE abc/xyz`, `invalid port "abc/xyz": "abc" is not a port number`},
		{`EXPOSE 80/xyz`, `unknown protocol "xyz"`},
		{`EXPOSE 90-80`, `invalid port "90-80"`},
		{`EXPOSE 70000`, `invalid port "70000"`},
		{`ENV`, "ENV requires at least one argument"},
		{`ENV A="x`, "matching double-quote"},
		{`LABEL`, "LABEL requires at least one argument"},
		{`USER`, "USER requires exactly one argument"},
		{`WORKDIR`, "WORKDIR requires exactly one argument"},
		{`VOLUME`, "VOLUME requires at least one argument"},
		{`SHELL /bin/bash -c`, "SHELL requires the arguments to be in JSON form"},
		{`STOPSIGNAL SIGNOPE`, `invalid signal "SIGNOPE"`},
		{`STOPSIGNAL 0`, `invalid signal "0"`},
		{`HEALTHCHECK`, "HEALTHCHECK requires at least one argument"},
		{`HEALTHCHECK NONE now`, "HEALTHCHECK NONE takes no arguments"},
		{`HEALTHCHECK --interval=1ns CMD true`, "cannot be less than 1ms"},
		{`HEALTHCHECK --retries=x CMD true`, "invalid syntax"},
		{`HEALTHCHECK WHEN true`, "Unknown type"},
		{`ONBUILD ONBUILD RUN x`, "Chaining ONBUILD"},
		{`ONBUILD FROM x`, "FROM isn't allowed as an ONBUILD trigger"},
		{`FOO bar`, "unknown instruction: FOO"},
		{"CMD a\nCMD b", "2 instructions"},
		{"", "empty change"},
		{"# only a comment", "no instructions"},
	}
	for _, tt := range tests {
		t.Run(tt.change, func(t *testing.T) {
			t.Parallel()
			_, err := ParseChanges([]string{`CMD ["ok"]`, tt.change})
			if err == nil {
				t.Fatalf("ParseChanges(%q): no error", tt.change)
			}
			var ce *ChangeError
			if !errors.As(err, &ce) || ce.Change != tt.change {
				t.Errorf("error %v is not a *ChangeError for %q", err, tt.change)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "--change") {
				t.Errorf("ParseChanges(%q) = %q, want it to name --change and contain %q", tt.change, err, tt.want)
			}
			if !strings.Contains(err.Error(), strconv.Quote(tt.change)) {
				t.Errorf("error %q does not name the change %q", err, tt.change)
			}
		})
	}
}

func TestParseChangesUnsupported(t *testing.T) {
	t.Parallel()
	for _, change := range []string{"RUN make", "run make", "FROM alpine", "COPY a /b", "ADD a /b", "ARG X=1", "FROM"} {
		t.Run(change, func(t *testing.T) {
			t.Parallel()
			_, err := ParseChanges([]string{change})
			instr := strings.ToUpper(strings.Fields(change)[0])
			if want := "unsupported instruction in --change: " + instr; err == nil || err.Error() != want {
				t.Errorf("ParseChanges(%q) = %v, want %q", change, err, want)
			}
			if !errors.Is(err, ErrUnsupportedInstruction) {
				t.Errorf("error %v is not ErrUnsupportedInstruction", err)
			}
		})
	}
}

// TestApplyErrors covers what only the config's environment can make wrong.
func TestApplyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env    []string
		change string
		want   string
	}{
		{[]string{"P=http"}, "EXPOSE $P", `invalid port "http"`},
		{[]string{"S=NOPE"}, "STOPSIGNAL $S", `invalid signal "NOPE"`},
		{nil, "VOLUME $UNSET", "can not be an empty string"},
		{nil, "ENV ${EMPTY}=x", "empty name"},
	}
	for _, tt := range tests {
		t.Run(tt.change, func(t *testing.T) {
			t.Parallel()
			changes, err := ParseChanges([]string{tt.change})
			if err != nil {
				t.Fatalf("ParseChanges(%q): %v", tt.change, err)
			}
			cfg := storage.ScratchConfig()
			cfg.Config.Env = tt.env
			err = Apply(&cfg, changes)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), strconv.Quote(tt.change)) {
				t.Errorf("Apply(%q) = %v, want an error naming it and containing %q", tt.change, err, tt.want)
			}
		})
	}
}

func FuzzParseChanges(f *testing.F) {
	for _, seed := range []string{
		`CMD [`, `CMD ['redis-server']`, `CMD [1]`, `EXPOSE abc/xyz`, `ENV`, `ENV A="x`, `ENV A=${B`,
		`HEALTHCHECK --interval=1ns CMD x`, `ONBUILD ONBUILD x`, "CMD a\nCMD b", "CMD a \\\n b", `WORKDIR ..`,
		`EXPOSE 1-65535`, `STOPSIGNAL RTMAX-14`, `LABEL "a=b`, `FOO bar`, "\x00", `SHELL ["a"`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, change string) {
		changes, err := ParseChanges([]string{change})
		if err != nil {
			var ce *ChangeError
			if !errors.As(err, &ce) {
				t.Fatalf("ParseChanges(%q): error %v is not a *ChangeError", change, err)
			}
			return
		}
		cfg := storage.ScratchConfig()
		_ = Apply(&cfg, changes) // must not panic
	})
}
