package flowstone

import (
	"sync"
	"sync/atomic"
	"time"
)

// EventKind names a telemetry event, as in the API proposal
// ([:flowstone, :run, :start] is "run.start").
type EventKind string

// The telemetry events.
const (
	EventRunStart         EventKind = "run.start"
	EventRunStop          EventKind = "run.stop"
	EventRunException     EventKind = "run.exception"
	EventStorageLoadStart EventKind = "storage.load.start"
	EventStorageLoadStop  EventKind = "storage.load.stop"
	EventStoreStart       EventKind = "storage.store.start"
	EventStoreStop        EventKind = "storage.store.stop"
	EventScatterStart     EventKind = "scatter.start"
	EventScatterItemStart EventKind = "scatter.item.start"
	EventScatterItemStop  EventKind = "scatter.item.stop"
	EventScatterStop      EventKind = "scatter.stop"
	// The gate events of an asset declared with Approval or WaitForSignal,
	// emitted by the engine that drives the run: its gate opened (and
	// waits), and how it was decided. Their metadata carries "gate" (the
	// kind), and "deadline" on gate.wait, "reason" on a decision that has
	// one.
	EventGateWait      EventKind = "gate.wait"
	EventGateApproved  EventKind = "gate.approved"
	EventGateRejected  EventKind = "gate.rejected"
	EventGateSignalled EventKind = "gate.signalled"
	EventGateExpired   EventKind = "gate.expired"
)

// Event is one telemetry event. A run event describes one asset's
// execution; a storage event one load or store of a result.
type Event struct {
	Kind      EventKind
	Pipeline  string
	Asset     string
	Partition string
	RunID     string
	Time      time.Time
	// Duration is set on stop and exception events.
	Duration time.Duration
	// Metadata: storage events carry "storage", "key" and "bytes"; scatter
	// item events "item"; run.stop "cached" is never sent (cache hits do
	// not execute).
	Metadata map[string]any
	// Err is set on run.exception and failed scatter items.
	Err *Error
}

// eventBus fans events out to subscribers. With none, emitting costs one
// atomic load.
type eventBus struct {
	mu   sync.Mutex
	next int
	subs atomic.Pointer[[]subscriber]
}

type subscriber struct {
	id int
	fn func(Event)
}

func (b *eventBus) active() bool {
	s := b.subs.Load()
	return s != nil && len(*s) > 0
}

func (b *eventBus) emit(ev Event) {
	s := b.subs.Load()
	if s == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	for _, sub := range *s {
		sub.fn(ev)
	}
}

func (b *eventBus) subscribe(fn func(Event)) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	id := b.next
	var cur []subscriber
	if s := b.subs.Load(); s != nil {
		cur = *s
	}
	next := append(append([]subscriber(nil), cur...), subscriber{id, fn})
	b.subs.Store(&next)
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		var kept []subscriber
		for _, s := range *b.subs.Load() {
			if s.id != id {
				kept = append(kept, s)
			}
		}
		b.subs.Store(&kept)
	}
}
