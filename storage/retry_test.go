package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"syscall"
	"testing"
	"time"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/types"
)

func TestTransient(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("pull x: %w", err) }
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", wrap(&url.Error{Op: "Get", URL: "http://r/v2/", Err: syscall.ECONNREFUSED}), true},
		{"connection reset", wrap(syscall.ECONNRESET), true},
		{"cut short", wrap(io.ErrUnexpectedEOF), true},
		{"503", wrap(docker.UnexpectedHTTPStatusError{StatusCode: 503}), true},
		{"429", wrap(docker.ErrTooManyRequests), true},
		{"stalled", wrap(fmt.Errorf("%w: %w", ErrStalled, context.Canceled)), true},
		{"404", wrap(docker.UnexpectedHTTPStatusError{StatusCode: 404}), false},
		{"cancelled", wrap(context.Canceled), false},
		{"layer too large", wrap(ErrLayerTooLarge), false},
		{"no space", wrap(syscall.ENOSPC), false},
		{"other", errors.New("manifest unknown"), false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	fail := func(n int, err error) (attemptFunc, *int) {
		calls := 0
		return func(context.Context, *types.SystemContext, *activity) error {
			calls++
			if calls <= n {
				return err
			}
			return nil
		}, &calls
	}
	r := RegistryOptions{Retry: 2, RetryDelay: time.Millisecond}
	op, calls := fail(2, syscall.ECONNRESET)
	if err := retry(context.Background(), &types.SystemContext{}, r, nil, op); err != nil || *calls != 3 {
		t.Errorf("two resets, two retries: err %v after %d calls, want success after 3", err, *calls)
	}
	op, calls = fail(3, syscall.ECONNRESET)
	if err := retry(context.Background(), &types.SystemContext{}, r, nil, op); err == nil || *calls != 3 {
		t.Errorf("three resets, two retries: err %v after %d calls, want failure after 3", err, *calls)
	}
	op, calls = fail(1, errors.New("manifest unknown"))
	if err := retry(context.Background(), &types.SystemContext{}, r, nil, op); err == nil || *calls != 1 {
		t.Errorf("permanent failure: err %v after %d calls, want failure after 1", err, *calls)
	}
	stall := func(ctx context.Context, _ *types.SystemContext, _ *activity) error {
		<-ctx.Done()
		return ctx.Err()
	}
	err := retry(context.Background(), &types.SystemContext{}, RegistryOptions{StallTimeout: 50 * time.Millisecond}, nil, stall)
	if !errors.Is(err, ErrStalled) {
		t.Errorf("stalled attempt: err %v, want ErrStalled", err)
	}
}
