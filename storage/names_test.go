package storage

import (
	"errors"
	"strings"
	"testing"
)

func TestLocalName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "mybox", want: "localhost/mybox:latest"},
		{in: "mybox:1", want: "localhost/mybox:1"},
		{in: "me/mybox:1", want: "localhost/me/mybox:1"},
		{in: "localhost/mybox", want: "localhost/mybox:latest"},
		{in: "127.0.0.1:5000/me/box:2", want: "127.0.0.1:5000/me/box:2"},
		{in: "quay.io/a/b", want: "quay.io/a/b:latest"},
		{in: "", bad: true},
		{in: "UPPER", bad: true},
		{in: "a::b", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := LocalName(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("LocalName(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("LocalName(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestRegistryKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"127.0.0.1:5000":          "127.0.0.1:5000",
		"https://quay.io/":        "quay.io",
		"docker://reg.example/me": "reg.example/me",
		"http://127.0.0.1:5000":   "127.0.0.1:5000",
		"":                        "",
		"user@host":               "",
	} {
		got, err := registryKey(in)
		if want == "" {
			if err == nil {
				t.Errorf("registryKey(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("registryKey(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseCreds(t *testing.T) {
	t.Parallel()
	a, err := parseCreds("me:pa:ss")
	if err != nil || a.Username != "me" || a.Password != "pa:ss" {
		t.Fatalf("parseCreds = %+v, %v", a, err)
	}
	if _, err := parseCreds(":x"); err == nil {
		t.Fatal("parseCreds(:x) accepted an empty user")
	}
}

func TestParsePullPolicy(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]PullPolicy{"always": PullAlways, "missing": PullIfMissing, "never": PullNever, "": PullIfMissing} {
		if got, err := ParsePullPolicy(in); err != nil || got != want {
			t.Errorf("ParsePullPolicy(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParsePullPolicy("sometimes"); err == nil {
		t.Error("ParsePullPolicy(sometimes) accepted")
	}
}

func TestDestinationReference(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"127.0.0.1:5000/me/box:1": "docker://127.0.0.1:5000/me/box:1",
		"docker://quay.io/a/b:1":  "docker://quay.io/a/b:1",
		"oci:/tmp/out:mybox":      "oci:/tmp/out:mybox",
		"oci-archive:/tmp/x.tar":  "oci-archive:/tmp/x.tar:",
		"dir:/tmp/d":              "dir:/tmp/d",
	} {
		ref, err := destinationReference(in)
		if err != nil {
			t.Errorf("destinationReference(%q): %v", in, err)
			continue
		}
		got := ref.Transport().Name() + ":" + ref.StringWithinTransport()
		if got != want {
			t.Errorf("destinationReference(%q) = %s, want %s", in, got, want)
		}
	}
	if _, err := destinationReference("docker://UPPER/x"); err == nil {
		t.Error("destinationReference accepted an upper-case repository")
	}
}

func TestExplainIDRange(t *testing.T) {
	t.Parallel()
	lib := errors.New(`writing blob: adding layer: processing tar file(potentially insufficient UIDs or GIDs available in user namespace (requested 4294967294:0 for /huge): Check /etc/subuid and /etc/subgid if configured locally and run "podman system migrate": lchown /huge: invalid argument)`)
	err := explainIDRange(lib)
	if !errors.Is(err, ErrIDRange) || strings.Contains(err.Error(), "podman") || !strings.Contains(err.Error(), "requested 4294967294:0 for /huge") {
		t.Errorf("explainIDRange = %v", err)
	}
	other := errors.New("something else")
	if explainIDRange(other) != other {
		t.Error("an unrelated error was changed")
	}
}
