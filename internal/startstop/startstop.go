// Package startstop gives the goroutines of a long-lived part of the fleet
// (the coordinator, a worker, the engine) an owner that can wait for them.
//
// A sync.WaitGroup is not enough for goroutines started from callbacks (a
// request handler, a message handler, a run resumed by a timer): such a
// callback may call Add while Stop is already in Wait, which the WaitGroup
// forbids and the race detector reports, and the goroutine it starts then
// runs on after Stop has returned. A Group closes its door first: once
// closing, Go starts nothing and says so, and the caller leaves the work
// where the next owner finds it (a run in its record, a request
// unanswered for its client to retry).
//
// The lifecycle of every part follows the same contract, after River's
// startstop:
//
//   - Start returns once the part works, or with an error after undoing
//     everything it did (subscriptions, services, consumers, stores it
//     opened, goroutines): a failed Start leaves nothing running.
//   - Stop(ctx) stops taking work, waits for the work under way until ctx
//     ends (a soft stop), then cancels what is left with ErrStopped as the
//     cause (a hard stop) and waits for it to return. It returns what went
//     wrong, joined; a hard stop is one of those things. Stop may be called
//     more than once, and concurrently: every call returns once the first
//     is done.
package startstop

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrStopped is the cause of a context cancelled because its owner stops
// (a hard stop): it tells a controlled stop from a failure or a caller's
// cancel.
var ErrStopped = errors.New("stopping")

// Group owns a set of goroutines. The zero value is ready to use; a Group
// must not be copied after first use.
type Group struct {
	mu      sync.Mutex
	n       int           // goroutines running
	closed  bool          // Go refuses
	drained chan struct{} // made by Close; closed once closed and n == 0
}

// Go runs f on a new goroutine owned by g and reports true; once g is
// closed it runs nothing and reports false.
func (g *Group) Go(f func()) bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.n++
	g.mu.Unlock()
	go func() {
		defer g.done()
		f()
	}()
	return true
}

// Do runs f on the calling goroutine, counted as one of g's, and reports
// true; once g is closed it runs nothing and reports false. It is for
// callbacks on goroutines the part does not start (a NATS subscription's):
// Wait then also waits for the calls under way.
func (g *Group) Do(f func()) bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.n++
	g.mu.Unlock()
	defer g.done()
	f()
	return true
}

func (g *Group) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.closed {
		close(g.drained)
	}
}

// Close makes every later Go refuse. The goroutines running go on. It is
// idempotent.
func (g *Group) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.closed = true
	g.drained = make(chan struct{})
	if g.n == 0 {
		close(g.drained)
	}
}

// Len returns how many of g's goroutines are running.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// Wait closes g and waits until every goroutine it started has returned.
// If ctx ends first it returns an error wrapping ctx's cause that says how
// many still run (they go on running).
func (g *Group) Wait(ctx context.Context) error {
	g.Close()
	select {
	case <-g.drained:
		return nil
	case <-ctx.Done():
	}
	select {
	case <-g.drained: // both ready: nothing is left
		return nil
	default:
	}
	return fmt.Errorf("%d goroutines still running: %w", g.Len(), context.Cause(ctx))
}

// Drain is a stop in two steps: it waits for g's goroutines until ctx
// ends (soft); if some still run then, it calls hard, which must make them
// return (cancel their context), and waits for them without a limit. The
// error, nil after a soft stop, says how many were cut short and wraps
// ctx's cause.
func (g *Group) Drain(ctx context.Context, hard func()) error {
	err := g.Wait(ctx)
	if err == nil {
		return nil
	}
	hard()
	<-g.drained
	return err
}
