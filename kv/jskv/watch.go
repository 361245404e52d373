package jskv

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/nats-io/nats.go/jetstream"
)

// errWatchClosed reports that the server side of a watch ended (connection
// closed) before the initial values were complete.
var errWatchClosed = errors.New("jskv: watch ended before the initial values were complete")

// subjectFilter returns the narrowest key filter that covers every key
// starting with prefix: everything up to the last dot is exact tokens, the
// rest is matched on the client. "a.b." gives "a.b.>" (exact); "a.bc" gives
// "a.>"; "abc" and "" give ">".
func subjectFilter(prefix string) string {
	i := strings.LastIndexByte(prefix, '.')
	if i < 0 {
		return jetstream.AllKeys
	}
	return prefix[:i+1] + jetstream.AllKeys
}

// Keys lists the live keys starting with prefix, sorted. The server filters
// on the prefix up to its last dot and sends only key names (no values), so
// a prefix ending in "." lists a subtree without reading the rest of the
// bucket. A listing fails with a *transient.TimeoutError when the server
// sends nothing for the store's request timeout.
func (s *Store) Keys(ctx context.Context, prefix string) ([]string, error) {
	if err := s.checkPrefix(prefix); err != nil {
		return nil, err
	}
	wctx, clock := s.stallClock(ctx, "jetstream kv listing")
	defer clock.stop()
	w, err := s.kv().WatchFiltered(wctx, []string{subjectFilter(prefix)}, jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return nil, s.mapError(ctx, "keys", prefix, stalled(wctx, err))
	}
	defer stopWatcher(w)
	var keys []string
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, s.mapError(ctx, "keys", prefix, stalled(wctx, transient.Mark(errWatchClosed)))
			}
			clock.reset()
			if e == nil { // the initial values are complete
				slices.Sort(keys)
				return slices.Compact(keys), nil
			}
			if strings.HasPrefix(e.Key(), prefix) {
				keys = append(keys, e.Key())
			}
		case <-wctx.Done():
			return nil, s.mapError(ctx, "keys", prefix, stalled(wctx, context.Cause(wctx)))
		case <-s.done:
			return nil, kv.ErrClosed
		}
	}
}

// stallClock returns ctx with a clock that cancels it, with a
// *transient.TimeoutError naming op as the cause, once the store's request
// timeout passes without the clock being reset or stopped.
func (s *Store) stallClock(ctx context.Context, op string) (context.Context, *clock) {
	ctx, cancel := context.WithCancelCause(ctx)
	cause := &transient.TimeoutError{Op: op, After: s.timeout}
	return ctx, &clock{
		limit:  s.timeout,
		timer:  time.AfterFunc(s.timeout, func() { cancel(cause) }),
		cancel: cancel,
	}
}

// clock is a stall clock; see stallClock.
type clock struct {
	limit  time.Duration
	timer  *time.Timer
	cancel context.CancelCauseFunc
}

// reset gives the call its limit again from now, after progress.
func (c *clock) reset() { c.timer.Reset(c.limit) }

// disarm stops the clock and reports whether it had not run out; the
// context stays alive until stop.
func (c *clock) disarm() bool { return c.timer.Stop() }

// stop stops the clock and releases its context.
func (c *clock) stop() {
	c.timer.Stop()
	c.cancel(context.Canceled)
}

// stalled returns the stall clock's TimeoutError if it ended ctx, else err.
func stalled(ctx context.Context, err error) error {
	var te *transient.TimeoutError
	if errors.As(context.Cause(ctx), &te) {
		return te
	}
	return err
}

// Watch streams the live values under prefix (in bucket order), then the
// zero Entry, then every later change; a deletion, purge or expiry has a
// nil Value. The channel closes when ctx is done, the store is closed, or
// the NATS connection closes. A server restart does not end it: once the
// client has reconnected and missed the watch's heartbeats, the watch
// resumes after the last revision it delivered. Setting the watch up is
// bounded by the store's request timeout.
//
// A receiver that falls behind never blocks writers: JetStream holds back
// delivery to the watch's ordered consumer until it catches up. Meanwhile
// the bucket keeps only each key's latest revision, so the receiver may
// skip intermediate values of keys written again in the meantime; it
// always gets each key's latest change (see kv.Store).
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan kv.Entry, error) {
	if err := s.checkPrefix(prefix); err != nil {
		return nil, err
	}
	w, clock, err := s.startWatch(ctx, prefix)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		stopWatcher(w)
		clock.stop()
		return nil, kv.ErrClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()

	out := make(chan kv.Entry, 64)
	go s.forward(ctx, w, clock, prefix, out)
	return out, nil
}

// startWatch creates the watcher within the store's request timeout; the
// watcher then lives until ctx ends or its clock is stopped.
func (s *Store) startWatch(ctx context.Context, prefix string) (jetstream.KeyWatcher, *clock, error) {
	wctx, clock := s.stallClock(ctx, "jetstream kv watch")
	w, err := s.kv().WatchFiltered(wctx, []string{subjectFilter(prefix)})
	if !clock.disarm() {
		// Set up too late: the limit has ended the watch.
		clock.stop()
		if err == nil {
			stopWatcher(w)
		}
		return nil, nil, s.mapError(ctx, "watch", prefix, stalled(wctx, err))
	}
	if err != nil {
		clock.stop()
		return nil, nil, s.mapError(ctx, "watch", prefix, err)
	}
	return w, clock, nil
}

// forward maps the JetStream watcher's entries onto out until ctx is done,
// the store is closed or the watcher ends; then it stops the watcher,
// closes out and releases the watch's context.
func (s *Store) forward(ctx context.Context, w jetstream.KeyWatcher, clock *clock, prefix string, out chan<- kv.Entry) {
	defer s.wg.Done()
	defer clock.stop()
	defer close(out)
	defer stopWatcher(w)
	initial := true
	for {
		var e kv.Entry
		select {
		case je, ok := <-w.Updates():
			if !ok {
				return
			}
			if je == nil {
				initial = false // e stays the zero Entry: the marker
				break
			}
			if !strings.HasPrefix(je.Key(), prefix) {
				continue
			}
			e = kv.Entry{Key: je.Key(), Revision: je.Revision()}
			if je.Operation() == jetstream.KeyValuePut {
				e.Value = nonNil(je.Value())
			} else if initial {
				continue // a deleted key has no current value to report
			}
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
		select {
		case out <- e:
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}

// stopWatcher unsubscribes w and empties its buffer. After Stop the client
// runs at most one more delivery callback, which sends at most two entries;
// with the buffer empty that callback cannot block, so the client's
// delivery goroutine always finishes even though nobody reads any more.
func stopWatcher(w jetstream.KeyWatcher) {
	_ = w.Stop() // an error means it was stopped already (ctx or connection)
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// checkPrefix rejects calls on a closed store and invalid prefixes.
func (s *Store) checkPrefix(prefix string) error {
	select {
	case <-s.done:
		return kv.ErrClosed
	default:
	}
	return kv.ValidPrefix(prefix)
}
