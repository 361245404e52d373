package retry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flowstone-go/flowstone/internal/transient"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var errBlip = transient.Mark(errors.New("server restarting"))

// fast keeps real waits short: the tests assert what happens, not when.
var fast = Policy{InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}

func TestRetriesTransientErrorsUntilSuccess(t *testing.T) {
	var retries []Attempt
	p := fast
	p.OnRetry = func(a Attempt) { retries = append(retries, a) }
	calls := 0
	err := p.Do(context.Background(), func(context.Context) error {
		if calls++; calls <= 3 {
			return fmt.Errorf("attempt %d: %w", calls, errBlip)
		}
		return nil
	})
	if err != nil || calls != 4 {
		t.Fatalf("Do = %v after %d calls, want nil after 4", err, calls)
	}
	if len(retries) != 3 {
		t.Fatalf("OnRetry called %d times, want 3", len(retries))
	}
	for i, a := range retries {
		if a.N != i+1 || !errors.Is(a.Err, errBlip) || a.Delay < 0 || a.Delay > p.WithDefaults().bound(a.N) {
			t.Errorf("retry %d = %+v", i, a)
		}
	}
}

func TestReturnsPermanentErrorAtOnce(t *testing.T) {
	permanent := errors.New("not found")
	calls := 0
	err := fast.Do(context.Background(), func(context.Context) error { calls++; return permanent })
	if err != permanent || calls != 1 {
		t.Fatalf("Do = %v after %d calls, want the error itself after 1", err, calls)
	}
}

func TestDefaultRetriesOwnTimeouts(t *testing.T) {
	calls := 0
	err := Do(context.Background(), func(context.Context) error {
		if calls++; calls == 1 {
			return &transient.TimeoutError{Op: "request", After: time.Second}
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("Do = %v after %d calls, want nil after 2", err, calls)
	}
}

func TestStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := errors.New("worker stopping")
	p := Policy{InitialDelay: time.Hour, OnRetry: func(Attempt) { cancel(stop) }}
	err := p.Do(ctx, func(context.Context) error { return errBlip })
	var re *Error
	if !errors.As(err, &re) || re.Attempts != 1 {
		t.Fatalf("Do = %v, want *Error after 1 attempt", err)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, stop) || !errors.Is(err, errBlip) {
		t.Errorf("Do = %v, want it to match context.Canceled, the cause and the last error", err)
	}
	if transient.Is(err) {
		t.Errorf("giving up is transient: callers would retry it again")
	}
}

func TestGivesUpWhenTheDeadlineWouldPassDuringTheWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	p := Policy{InitialDelay: 2 * time.Hour, draw: func(b time.Duration) time.Duration { return b }}
	p.OnRetry = func(Attempt) { t.Error("waited although the deadline would pass first") }
	calls := 0
	err := p.Do(ctx, func(context.Context) error { calls++; return errBlip })
	if calls != 1 || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errBlip) {
		t.Fatalf("Do = %v after %d calls, want DeadlineExceeded and the last error after 1", err, calls)
	}
	if ctx.Err() != nil {
		t.Fatal("Do waited for the deadline")
	}
}

func TestCallsOnceWithContextAlreadyDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	err := fast.Do(ctx, func(ctx context.Context) error { calls++; return ctx.Err() })
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("Do = %v after %d calls", err, calls)
	}
}

func TestBoundDoublesUpToTheCap(t *testing.T) {
	p := Policy{}.WithDefaults()
	want := []time.Duration{50, 100, 200, 400, 800, 1600, 2000, 2000}
	for i, w := range want {
		if got := p.bound(i + 1); got != w*time.Millisecond {
			t.Errorf("bound(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := p.bound(1 << 20); got != MaxDelayDefault {
		t.Errorf("bound after a million attempts = %v, want the cap", got)
	}
	big := Policy{InitialDelay: time.Duration(1 << 62), MaxDelay: time.Duration(1<<63 - 1)}
	if got := big.bound(10); got <= 0 {
		t.Errorf("bound overflowed to %v", got)
	}
	if got := (Policy{InitialDelay: 5 * time.Second}).WithDefaults().MaxDelay; got != 5*time.Second {
		t.Errorf("MaxDelay below InitialDelay = %v, want InitialDelay", got)
	}
}

func TestDelayIsJittered(t *testing.T) {
	p := Policy{}.WithDefaults()
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := p.delay(7)
		if d < 0 || d > MaxDelayDefault {
			t.Fatalf("delay %v outside [0, %v]", d, MaxDelayDefault)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Errorf("1000 delays took %d values: no jitter", len(seen))
	}
}
