// Package faultproxy is a reverse proxy in front of a real registry that breaks the
// requests a test chooses: it answers 500 or 503, resets the connection, or stalls,
// for the first N requests that match a rule, and passes everything else through. It
// records every request, so that a test can see what a client retried or re-uploaded.
package faultproxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// Fault is what the proxy does to a request instead of forwarding it.
type Fault string

// The faults a rule can inject.
const (
	Status500 Fault = "500"   // answer 500 Internal Server Error
	Status503 Fault = "503"   // answer 503 Service Unavailable
	Reset     Fault = "reset" // close the connection with a TCP reset, answering nothing
	Stall     Fault = "stall" // answer nothing and keep the connection open until the client leaves
)

// Rule breaks the first Times requests that match Method and PathContains.
type Rule struct {
	Method       string // "" matches any method
	PathContains string // "" matches any path
	Fault        Fault
	Times        int
}

func (r Rule) matches(req *http.Request) bool {
	return (r.Method == "" || r.Method == req.Method) && strings.Contains(req.URL.Path, r.PathContains)
}

// Request is one request the proxy saw, and the fault it injected ("" = forwarded).
type Request struct {
	Method, Path string
	Fault        Fault
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// Addr is host:port to give clients instead of the registry's.
	Addr string
	srv  *httptest.Server
	stop chan struct{}

	mu       sync.Mutex
	left     []int // per rule: how many more requests it breaks
	rules    []Rule
	requests []Request
}

// Start starts a proxy for the plain-HTTP registry at target (host:port).
func Start(target string, rules ...Rule) *Proxy {
	p := &Proxy{rules: rules, stop: make(chan struct{})}
	for _, r := range rules {
		p.left = append(p.left, r.Times)
	}
	// The registry builds upload URLs from the Host header, which the proxy keeps, so
	// that a client's follow-up requests come back through the proxy.
	forward := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fault := p.record(r)
		switch fault {
		case "":
			forward.ServeHTTP(w, r)
		case Status500:
			http.Error(w, "injected fault", http.StatusInternalServerError)
		case Status503:
			http.Error(w, "injected fault", http.StatusServiceUnavailable)
		case Reset:
			reset(w)
		case Stall:
			select {
			case <-r.Context().Done():
			case <-p.stop:
			}
		}
	}))
	p.Addr = strings.TrimPrefix(p.srv.URL, "http://")
	return p
}

// record logs r and chooses its fault.
func (p *Proxy) record(r *http.Request) Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	var fault Fault
	for i, rule := range p.rules {
		if p.left[i] > 0 && rule.matches(r) {
			p.left[i]--
			fault = rule.Fault
			break
		}
	}
	p.requests = append(p.requests, Request{Method: r.Method, Path: r.URL.Path, Fault: fault})
	return fault
}

// reset closes the client's connection with an RST instead of an answer.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	conn.Close()
}

// Requests returns the requests seen so far.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.requests...)
}

// Count returns how many requests matched method and pathContains, and how many of
// those the proxy broke.
func (p *Proxy) Count(method, pathContains string) (seen, broken int) {
	m := Rule{Method: method, PathContains: pathContains}
	for _, r := range p.Requests() {
		if m.matches(&http.Request{Method: r.Method, URL: &url.URL{Path: r.Path}}) {
			seen++
			if r.Fault != "" {
				broken++
			}
		}
	}
	return seen, broken
}

// Close releases stalled requests and stops the proxy.
func (p *Proxy) Close() {
	close(p.stop)
	p.srv.CloseClientConnections()
	p.srv.Close()
}
