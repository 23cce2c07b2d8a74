package faultproxy

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProxy(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer backend.Close()
	p := Start(strings.TrimPrefix(backend.URL, "http://"),
		Rule{PathContains: "/blobs/", Fault: Status503, Times: 2},
		Rule{Method: http.MethodGet, PathContains: "/manifests/", Fault: Reset, Times: 1},
		Rule{PathContains: "/stall", Fault: Stall, Times: 1},
	)
	defer p.Close()
	// No keep-alive: Go retries a GET by itself when a reused connection is reset.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (string, error) {
		resp, err := client.Get("http://" + p.Addr + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.Status + " " + string(b), err
	}
	for i, want := range []string{"503", "503", "200 OK ok /v2/x/blobs/a"} {
		got, err := get("/v2/x/blobs/a")
		if err != nil || !strings.HasPrefix(got, want) {
			t.Errorf("blob request %d: got %q, %v; want %s", i+1, got, err, want)
		}
	}
	if _, err := get("/v2/x/manifests/1"); !errors.Is(err, syscall.ECONNRESET) && (err == nil || !strings.Contains(err.Error(), "EOF")) {
		t.Errorf("manifest request 1: got %v, want a reset connection", err)
	}
	if got, err := get("/v2/x/manifests/1"); err != nil || !strings.HasPrefix(got, "200") {
		t.Errorf("manifest request 2: got %q, %v; want it forwarded", got, err)
	}
	if _, err := get("/stall"); err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Errorf("stalled request: got %v, want the client's timeout", err)
	}
	if seen, broken := p.Count("", "/blobs/"); seen != 3 || broken != 2 {
		t.Errorf("Count(blobs) = %d seen, %d broken; want 3, 2", seen, broken)
	}
}
