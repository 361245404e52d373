package kv

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// memWatchBuffer is the capacity of a Memory watch channel: enough to let the
// delivering goroutine run ahead of a receiver that handles bursts.
const memWatchBuffer = 64

// memWatcher is one Watch on a Memory store. Writers append to queue under
// mu and signal wake; they never block on the receiver.
type memWatcher struct {
	prefix string
	mu     sync.Mutex
	queue  []Entry       // changes not yet delivered; values are store-owned
	wake   chan struct{} // capacity 1: "queue may be non-empty"
}

// push queues e and wakes the delivering goroutine. It never blocks.
func (w *memWatcher) push(e Entry) {
	w.mu.Lock()
	w.queue = append(w.queue, e)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Watch streams the live values under prefix in key order, then a zero
// Entry, then every later change (a deletion has a nil Value). The channel
// is closed when ctx is done or the store is closed. Changes wait in an
// unbounded queue while the receiver is slow (see Memory).
func (m *Memory) Watch(ctx context.Context, prefix string) (<-chan Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ValidPrefix(prefix); err != nil {
		return nil, err
	}
	w := &memWatcher{prefix: prefix, wake: make(chan struct{}, 1)}
	var initial []Entry

	// Snapshot and registration under one write lock: every change is either
	// in the snapshot or queued, never both, never neither.
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	for k, e := range m.entries {
		if e.value != nil && strings.HasPrefix(k, prefix) {
			initial = append(initial, Entry{Key: k, Value: e.value, Revision: e.rev})
		}
	}
	m.watchers[w] = struct{}{}
	m.wg.Add(1)
	m.mu.Unlock()

	slices.SortFunc(initial, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	initial = append(initial, Entry{}) // the end-of-initial-values marker
	out := make(chan Entry, memWatchBuffer)
	go m.deliver(ctx, w, initial, out)
	return out, nil
}

// deliver sends initial, then the queued changes, to out until ctx is done
// or the store is closed; then it unregisters w and closes out.
func (m *Memory) deliver(ctx context.Context, w *memWatcher, initial []Entry, out chan<- Entry) {
	defer m.wg.Done()
	defer close(out)
	defer func() {
		m.mu.Lock()
		delete(m.watchers, w)
		m.mu.Unlock()
	}()

	send := func(batch []Entry) bool {
		for _, e := range batch {
			if e.Value != nil {
				e.Value = clone(e.Value)
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return false
			case <-m.done:
				return false
			}
		}
		return true
	}
	if !send(initial) {
		return
	}
	var batch []Entry
	for {
		select {
		case <-w.wake:
		case <-ctx.Done():
			return
		case <-m.done:
			return
		}
		// Double buffering: the writers fill one slice while this goroutine
		// drains the other.
		w.mu.Lock()
		batch, w.queue = w.queue, batch[:0]
		w.mu.Unlock()
		if !send(batch) {
			return
		}
		clear(batch) // drop references to values the store may have replaced
	}
}
