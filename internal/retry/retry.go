// Package retry calls a function again while it fails with an error worth
// retrying, waiting a capped, jittered, exponentially growing time between
// attempts, until it succeeds, fails for good, or the context ends.
//
// # Backoff
//
// The wait after the n-th failed attempt is drawn uniformly from
// [0, min(MaxDelay, InitialDelay·2^(n-1))] ("full jitter"): 0–50 ms after
// the first failure, 0–100 ms after the second, and so on up to 0–2 s with
// the defaults. Randomizing the whole wait spreads the retries of many
// callers that failed together (every task of a fleet when its NATS server
// restarts) instead of sending them back in waves.
//
// # Giving up
//
// Do returns the first error that is not retryable as it is. When ctx ends
// while it waits, or its deadline would pass before the next attempt could
// start, Do returns an *Error that matches both the context's error and the
// last attempt's error under errors.Is and errors.As; it is not transient
// (see package transient), so callers up the stack do not retry it again.
package retry

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/flowstone-go/flowstone/internal/transient"
)

const (
	// InitialDelayDefault bounds the first wait: 50 ms.
	InitialDelayDefault = 50 * time.Millisecond
	// MaxDelayDefault caps every wait: 2 s.
	MaxDelayDefault = 2 * time.Second
)

// Policy says which errors Do retries and how long it waits between
// attempts. The zero Policy retries transient errors with the default
// backoff.
type Policy struct {
	// InitialDelay bounds the wait after the first failed attempt; the
	// bound doubles with every further failure, up to MaxDelay. Defaults to
	// InitialDelayDefault (50 ms).
	InitialDelay time.Duration
	// MaxDelay caps the bound of every wait. Defaults to MaxDelayDefault
	// (2 s), or InitialDelay if that is larger.
	MaxDelay time.Duration
	// Retryable reports whether an attempt's error is worth another
	// attempt. Defaults to transient.Is.
	Retryable func(error) bool
	// OnRetry, if set, is called after each failed attempt that will be
	// retried, before the wait: a place to log the attempt, its error and
	// the wait. It runs on Do's goroutine. Defaults to nil.
	OnRetry func(Attempt)

	// draw picks a wait in [0, bound]; nil draws uniformly. Tests set it
	// to make waits predictable.
	draw func(bound time.Duration) time.Duration
}

// Attempt describes a failed attempt that Do is about to retry.
type Attempt struct {
	// N counts the attempts made so far, from 1.
	N int
	// Err is the attempt's error.
	Err error
	// Delay is how long Do waits before the next attempt.
	Delay time.Duration
}

// WithDefaults returns p with its zero fields set to their defaults.
func (p Policy) WithDefaults() Policy {
	p.InitialDelay = cmp.Or(p.InitialDelay, InitialDelayDefault)
	p.MaxDelay = max(cmp.Or(p.MaxDelay, MaxDelayDefault), p.InitialDelay)
	if p.Retryable == nil {
		p.Retryable = transient.Is
	}
	return p
}

// Do calls fn with the default Policy: see Policy.Do.
func Do(ctx context.Context, fn func(context.Context) error) error {
	return Policy{}.Do(ctx, fn)
}

// Do calls fn(ctx) until it returns nil or an error that is not
// Retryable, which Do returns as it is, waiting between attempts as the
// package documentation says. When ctx ends first, or its deadline would
// pass during the next wait, Do returns an *Error wrapping the context's
// error and the last attempt's. fn is always called at least once. Whether
// repeating fn is safe (an attempt may have taken effect before it failed)
// is for the caller to know.
func (p Policy) Do(ctx context.Context, fn func(context.Context) error) error {
	p = p.WithDefaults()
	for n := 1; ; n++ {
		err := fn(ctx)
		if err == nil || !p.Retryable(err) {
			return err
		}
		if ctx.Err() != nil {
			return &Error{Attempts: n, Last: err, Ctx: contextErr(ctx)}
		}
		delay := p.delay(n)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= delay {
			return &Error{Attempts: n, Last: err, Ctx: context.DeadlineExceeded}
		}
		if p.OnRetry != nil {
			p.OnRetry(Attempt{N: n, Err: err, Delay: delay})
		}
		if wait(ctx, delay) != nil {
			return &Error{Attempts: n, Last: err, Ctx: contextErr(ctx)}
		}
	}
}

// delay draws the wait after the n-th failed attempt.
func (p Policy) delay(n int) time.Duration {
	if p.draw != nil {
		return p.draw(p.bound(n))
	}
	return rand.N(p.bound(n) + 1)
}

// bound is min(MaxDelay, InitialDelay·2^(n-1)), without overflowing.
func (p Policy) bound(n int) time.Duration {
	b := p.InitialDelay
	for i := 1; i < n && b < p.MaxDelay; i++ {
		if b > p.MaxDelay/2 {
			return p.MaxDelay
		}
		b *= 2
	}
	return min(b, p.MaxDelay)
}

func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// contextErr is ctx's error with its cause, when one was given.
func contextErr(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

// Error is what Do returns when it stops retrying because its context ended
// or would end before the next attempt. It matches Ctx and Last under
// errors.Is and errors.As, and is not transient.
type Error struct {
	// Attempts is how many times fn was called.
	Attempts int
	// Last is the last attempt's error.
	Last error
	// Ctx is why Do stopped: context.Canceled or context.DeadlineExceeded
	// (with the context's cause, if any). It is context.DeadlineExceeded
	// too when the deadline would have passed during the next wait.
	Ctx error
}

// Error names the attempts, why Do stopped and the last error.
func (e *Error) Error() string {
	return fmt.Sprintf("gave up after %d attempt(s) (%v); last error: %v", e.Attempts, e.Ctx, e.Last)
}

// Unwrap returns the context's error and the last attempt's.
func (e *Error) Unwrap() []error { return []error{e.Ctx, e.Last} }
