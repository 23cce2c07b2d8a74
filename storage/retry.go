package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/types"
)

// ErrStalled is the cause of an attempt that a registry stopped answering.
var ErrStalled = errors.New("the registry sent and accepted nothing")

// transfer runs op once, or with retries (see retry) when remote is a registry: other
// transports (archives, layouts) fail the same way each time.
// Each retry is announced on progress (nil: silently).
func transfer(ctx context.Context, sys *types.SystemContext, r RegistryOptions, remote types.ImageReference, progress io.Writer, op attemptFunc) error {
	if remote.Transport().Name() != docker.Transport.Name() {
		return op(ctx, sys, nil)
	}
	return retry(ctx, sys, r, progress, op)
}

// attemptFunc is one try of a pull or push: it must use sys for image/v5 and report blob
// progress to seen.
type attemptFunc func(ctx context.Context, sys *types.SystemContext, seen *activity) error

// retry runs op until it succeeds, fails for a reason that trying again cannot fix, or
// has been retried r.Retry times. The first retry waits r.RetryDelay, each later one twice
// as long as the one before. Each attempt runs under a watchdog that cancels it when
// r.StallTimeout (if > 0) passes without any registry activity.
func retry(ctx context.Context, sys *types.SystemContext, r RegistryOptions, progress io.Writer, op attemptFunc) error {
	delay := r.RetryDelay
	for attempt := 1; ; attempt++ {
		err := attempt1(ctx, sys, r.StallTimeout, op)
		if err == nil || ctx.Err() != nil || attempt > r.Retry || !Transient(err) {
			if err != nil && attempt > 1 {
				err = fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
			}
			return err
		}
		if progress != nil {
			fmt.Fprintf(progress, "Retrying in %v (%d/%d) after: %v\n", delay, attempt, r.Retry, err)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return err
		}
		delay *= 2
	}
}

// attempt1 runs op once, cancelled with ErrStalled when stall > 0 passes without activity.
func attempt1(ctx context.Context, sys *types.SystemContext, stall time.Duration, op attemptFunc) error {
	seen := newActivity()
	if stall <= 0 {
		return op(ctx, sys, seen)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watched := *sys
	watched.DockerProxy = seen.proxy
	done := make(chan struct{})
	defer close(done)
	go seen.watch(stall, done, cancel)
	err := op(ctx, &watched, seen)
	if errors.Is(context.Cause(ctx), ErrStalled) {
		return fmt.Errorf("%w for %v: %w", ErrStalled, stall, err)
	}
	return err
}

// activity records when an attempt last made progress: each HTTP request it starts (seen
// through the proxy hook of image/v5's client) and each progress event of a blob copy.
type activity struct {
	mu   sync.Mutex
	last time.Time
}

func newActivity() *activity { return &activity{last: time.Now()} }

func (a *activity) touch() {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.last = time.Now()
	a.mu.Unlock()
}

func (a *activity) idle() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return time.Since(a.last)
}

// proxy is a SystemContext.DockerProxy that notes a request and then picks the proxy the
// environment names, as the client does without the hook.
func (a *activity) proxy(u *url.URL) (*url.URL, error) {
	a.touch()
	return http.ProxyFromEnvironment(&http.Request{URL: u})
}

// watch cancels the attempt once it has been idle for stall.
func (a *activity) watch(stall time.Duration, done <-chan struct{}, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(min(stall/4, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			if a.idle() >= stall {
				cancel(ErrStalled)
				return
			}
		}
	}
}

// Transient reports whether err is a failure that the same request may not meet again: a
// refused, reset or timed-out connection, a response cut short, a registry that stalled,
// or a registry answering 5xx or 429. Unknown images, denied access, bad digests and
// cancellation are not.
func Transient(err error) bool {
	var status docker.UnexpectedHTTPStatusError
	var netErr net.Error
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrStalled), errors.Is(err, docker.ErrTooManyRequests):
		return true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &status):
		return status.StatusCode >= 500 || status.StatusCode == http.StatusTooManyRequests
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	case errors.As(err, &netErr):
		return netErr.Timeout()
	}
	return false
}
