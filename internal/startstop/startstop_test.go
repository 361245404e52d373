package startstop_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/startstop"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every wait: generous for a busy machine, short of a hang.
const wait = 30 * time.Second

// Once Wait has begun, Go starts nothing and says so; what started before
// is waited for.
func TestWaitClosesTheDoorAndWaits(t *testing.T) {
	var g startstop.Group
	release := make(chan struct{})
	if !g.Go(func() { <-release }) {
		t.Fatal("Go on a fresh group refused")
	}
	waited := make(chan error, 1)
	go func() { waited <- g.Wait(context.Background()) }()
	// Wait closes the group before it blocks: wait for that.
	deadline := time.Now().Add(wait)
	for g.Go(func() {}) {
		if time.Now().After(deadline) {
			t.Fatal("Go still starts goroutines while Wait waits")
		}
	}
	select {
	case err := <-waited:
		t.Fatalf("Wait returned (%v) while a goroutine ran", err)
	default:
	}
	close(release)
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("Wait did not return once the goroutine did")
	}
}

// A Wait whose context ends first says how many still run, with the
// context's cause.
func TestWaitReportsWhatIsStillRunning(t *testing.T) {
	var g startstop.Group
	release := make(chan struct{})
	defer close(release)
	g.Go(func() { <-release })
	g.Go(func() { <-release })
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("shutdown grace over")
	cancel(cause)
	err := g.Wait(ctx)
	if !errors.Is(err, cause) {
		t.Fatalf("Wait = %v, want it to wrap the context's cause", err)
	}
	if n := g.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
}

// Drain calls hard only when the soft wait ran out, and returns once the
// goroutines it cancelled have returned.
func TestDrainCancelsWhatOutlivesTheGrace(t *testing.T) {
	var g startstop.Group
	work, cancelWork := context.WithCancelCause(context.Background())
	started := make(chan struct{})
	g.Go(func() { close(started); <-work.Done() })
	<-started
	grace, cancel := context.WithCancel(context.Background())
	cancel()
	err := g.Drain(grace, func() { cancelWork(startstop.ErrStopped) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Drain = %v, want it to wrap context.Canceled", err)
	}
	if n := g.Len(); n != 0 {
		t.Fatalf("%d goroutines still run after Drain", n)
	}
	if !errors.Is(context.Cause(work), startstop.ErrStopped) {
		t.Fatalf("cause = %v", context.Cause(work))
	}

	var idle startstop.Group
	if err := idle.Drain(grace, func() { t.Error("hard stop of a group with nothing running") }); err != nil {
		t.Fatal(err)
	}
}

// Go racing Wait never starts a goroutine Wait does not wait for (the
// race detector and the leak check in TestMain watch this).
func TestGoRacingWait(t *testing.T) {
	for range 100 {
		var g startstop.Group
		var ran, after sync.WaitGroup
		ran.Add(8)
		for range 8 {
			go func() {
				defer ran.Done()
				g.Go(func() {})
			}()
		}
		after.Add(1)
		go func() {
			defer after.Done()
			if err := g.Wait(context.Background()); err != nil {
				t.Error(err)
			}
			if n := g.Len(); n != 0 {
				t.Errorf("%d goroutines run after Wait returned", n)
			}
		}()
		ran.Wait()
		after.Wait()
	}
}

// Do runs a callback on the caller's goroutine, and Wait waits for the
// calls under way; once closed, Do runs nothing.
func TestDoCountsCallbacks(t *testing.T) {
	var g startstop.Group
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan bool, 1)
	go func() { done <- g.Do(func() { close(entered); <-release }) }()
	<-entered
	waited := make(chan error, 1)
	go func() { waited <- g.Wait(context.Background()) }()
	deadline := time.Now().Add(wait)
	for g.Do(func() {}) {
		if time.Now().After(deadline) {
			t.Fatal("Do still runs callbacks while Wait waits")
		}
	}
	select {
	case err := <-waited:
		t.Fatalf("Wait returned (%v) during a call", err)
	default:
	}
	close(release)
	if !<-done {
		t.Fatal("Do of an open group reported false")
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
}
