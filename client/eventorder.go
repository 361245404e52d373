package client

import (
	"slices"
	"strconv"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
)

// eventGapWait is how long Watch holds a worker's events waiting for one
// numbered before them that has not arrived. They arrive within the
// worker's batching delay (milliseconds) unless a message was lost (a
// slow subscriber, a publish the server refused): then the held events
// are delivered after this wait, in order, without the lost ones.
const eventGapWait = 2 * time.Second

// eventOrder puts the events of each worker back in the order they
// happened (see protocol.EventSeqKey): a worker publishes them in batches
// of one kind, so they arrive out of that order.
type eventOrder struct {
	epochs map[string]*epochOrder
}

// epochOrder is the order of one worker process's events.
type epochOrder struct {
	next  uint64                    // the lowest number not delivered yet
	held  map[uint64]protocol.Event // arrived, waiting for a lower number
	since time.Time                 // when the held events last saw progress
	seen  time.Time                 // when a message of the epoch last arrived
}

func newEventOrder() *eventOrder { return &eventOrder{epochs: map[string]*epochOrder{}} }

// add takes the events of a message and calls fn with each event that is
// due, in order. Events without a worker's stamps are due at once.
func (o *eventOrder) add(msg *nats.Msg, events []protocol.Event, now time.Time, fn func(protocol.Event)) {
	epoch := msg.Header.Get(protocol.EventEpochHeader)
	floor, err := strconv.ParseUint(msg.Header.Get(protocol.EventFloorHeader), 10, 64)
	if epoch == "" || err != nil || floor == 0 {
		for _, ev := range events {
			fn(ev)
		}
		return
	}
	e := o.epochs[epoch]
	if e == nil {
		e = &epochOrder{next: floor, held: map[uint64]protocol.Event{}}
		o.epochs[epoch] = e
	}
	e.seen = now
	for _, ev := range events {
		seq, ok := protocol.EventSeq(ev)
		if !ok || seq < e.next {
			fn(ev) // not numbered, or late: nothing to wait for
			continue
		}
		if len(e.held) == 0 {
			e.since = now
		}
		e.held[seq] = ev
	}
	if floor > e.next {
		// Everything below the floor was sent before this message:
		// what has not arrived is lost.
		e.release(floor, fn)
	}
	e.deliver(now, fn)
}

// release delivers the held events numbered below upto, in order, and
// moves next up to it.
func (e *epochOrder) release(upto uint64, fn func(protocol.Event)) {
	seqs := make([]uint64, 0, len(e.held))
	for seq := range e.held {
		if seq < upto {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		fn(e.held[seq])
		delete(e.held, seq)
	}
	e.next = max(e.next, upto)
}

// deliver delivers the held events that no lower number is missing for.
func (e *epochOrder) deliver(now time.Time, fn func(protocol.Event)) {
	progress := false
	for {
		ev, ok := e.held[e.next]
		if !ok {
			break
		}
		fn(ev)
		delete(e.held, e.next)
		e.next++
		progress = true
	}
	if progress {
		e.since = now // the events still held wait from now
	}
}

// due returns when the longest-held events are given up waiting for, and
// false if none are held.
func (o *eventOrder) due() (time.Time, bool) {
	var at time.Time
	for _, e := range o.epochs {
		if len(e.held) > 0 && (at.IsZero() || e.since.Before(at)) {
			at = e.since
		}
	}
	return at.Add(eventGapWait), !at.IsZero()
}

// expire delivers, in order, the events held since eventGapWait before
// now, past the gaps that kept them, and forgets the workers not heard of
// for a while.
func (o *eventOrder) expire(now time.Time, fn func(protocol.Event)) {
	for epoch, e := range o.epochs {
		if len(e.held) > 0 && !now.Before(e.since.Add(eventGapWait)) {
			top := e.next
			for seq := range e.held {
				top = max(top, seq+1)
			}
			e.release(top, fn)
		}
		if len(e.held) == 0 && now.Sub(e.seen) > epochForget {
			delete(o.epochs, epoch)
		}
	}
}

// epochForget is how long Watch remembers a worker process it has not
// heard from: one that comes back after it is treated as new (its next
// events are due at once, as if Watch had just started).
const epochForget = 10 * time.Minute
