package jskv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

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
// bucket.
func (s *Store) Keys(ctx context.Context, prefix string) ([]string, error) {
	if err := s.checkPrefix(prefix); err != nil {
		return nil, err
	}
	w, err := s.kv.WatchFiltered(ctx, []string{subjectFilter(prefix)}, jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return nil, fmt.Errorf("jskv: keys %q: %w", prefix, err)
	}
	defer stopWatcher(w)
	var keys []string
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("jskv: keys %q: %w", prefix, errWatchClosed)
			}
			if e == nil { // the initial values are complete
				slices.Sort(keys)
				return slices.Compact(keys), nil
			}
			if strings.HasPrefix(e.Key(), prefix) {
				keys = append(keys, e.Key())
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("jskv: keys %q: %w", prefix, context.Cause(ctx))
		case <-s.done:
			return nil, kv.ErrClosed
		}
	}
}

// Watch streams the live values under prefix (in bucket order), then the
// zero Entry, then every later change; a deletion, purge or expiry has a
// nil Value. The channel closes when ctx is done, the store is closed, or
// the NATS connection closes.
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
	w, err := s.kv.WatchFiltered(ctx, []string{subjectFilter(prefix)})
	if err != nil {
		return nil, fmt.Errorf("jskv: watch %q: %w", prefix, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		stopWatcher(w)
		return nil, kv.ErrClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()

	out := make(chan kv.Entry, 64)
	go s.forward(ctx, w, prefix, out)
	return out, nil
}

// forward maps the JetStream watcher's entries onto out until ctx is done,
// the store is closed or the watcher ends; then it stops the watcher and
// closes out.
func (s *Store) forward(ctx context.Context, w jetstream.KeyWatcher, prefix string, out chan<- kv.Entry) {
	defer s.wg.Done()
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
