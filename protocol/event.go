package protocol

import "time"

// EventKind names a telemetry event: the API proposal's event names joined
// by dots.
type EventKind string

// The event kinds.
const (
	EventRunStart          EventKind = "run.start"           // an asset's execution began
	EventRunStop           EventKind = "run.stop"            // it succeeded
	EventRunException      EventKind = "run.exception"       // it failed; Error says why
	EventStorageLoadStart  EventKind = "storage.load.start"  // loading a dependency's result began
	EventStorageLoadStop   EventKind = "storage.load.stop"   // it ended
	EventStorageStoreStart EventKind = "storage.store.start" // storing the result began
	EventStorageStoreStop  EventKind = "storage.store.stop"  // it ended
	EventScatterStart      EventKind = "scatter.start"       // a scatter asset fanned out
	EventScatterItemStart  EventKind = "scatter.item.start"  // one item began
	EventScatterItemStop   EventKind = "scatter.item.stop"   // one item ended
	EventScatterStop       EventKind = "scatter.stop"        // every item ended
)

func (k EventKind) valid() bool {
	switch k {
	case EventRunStart, EventRunStop, EventRunException,
		EventStorageLoadStart, EventStorageLoadStop, EventStorageStoreStart, EventStorageStoreStop,
		EventScatterStart, EventScatterItemStart, EventScatterItemStop, EventScatterStop:
		return true
	}
	return false
}

// Event is one telemetry event. On the wire events travel in an EventBatch,
// never alone.
type Event struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Kind names the event.
	Kind EventKind `json:"kind"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partition is the resolved partition.
	Partition string `json:"partition"`
	// RunID is the run the event belongs to.
	RunID string `json:"run_id"`
	// Time is when the event happened.
	Time time.Time `json:"time"`
	// DurationNS is how long the operation took, in nanoseconds, on stop
	// and exception events.
	DurationNS int64 `json:"duration_ns,omitempty"`
	// Metadata carries the event's measurements and facts (sizes, item
	// counts, the storage backend, the worker).
	Metadata map[string]any `json:"metadata,omitempty"`
	// Error is why the operation failed; always set on run.exception.
	Error *Error `json:"error,omitempty"`
}

// Validate checks every field; a run.exception must carry an Error.
func (e Event) Validate() *Error { return e.validate("") }

// validate checks e, naming its fields with prefix ("events[3].").
func (e Event) validate(prefix string) *Error {
	if err := checkVersion(e.V); err != nil {
		if prefix != "" {
			err.Details["field"] = prefix + "v"
		}
		return err
	}
	if !e.Kind.valid() {
		return fieldErrorf(prefix+"kind", "%skind %s is not a known event kind", prefix, quote(string(e.Kind)))
	}
	if err := checkName(prefix+"pipeline", e.Pipeline); err != nil {
		return err
	}
	if err := checkName(prefix+"asset", e.Asset); err != nil {
		return err
	}
	if err := checkPartition(prefix+"partition", e.Partition, false); err != nil {
		return err
	}
	if err := checkID(prefix+"run_id", e.RunID); err != nil {
		return err
	}
	if err := checkTime(prefix+"time", e.Time); err != nil {
		return err
	}
	if err := checkNonNegative(prefix+"duration_ns", e.DurationNS); err != nil {
		return err
	}
	if e.Error != nil {
		return e.Error.validate(prefix + "error")
	}
	if e.Kind == EventRunException {
		return fieldErrorf(prefix+"error", "a run.exception event must say why in %serror", prefix)
	}
	return nil
}

// EventBatch is the message published to EventSubject(pipeline, kind): one
// or more events of one pipeline and one kind, in the order they happened,
// so that subscribers filtering by subject ("flowstone.event.sales.run.>")
// see whole batches of what they asked for. A worker publishes its events in
// batches to spare the server one message per event.
type EventBatch struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline of every event.
	Pipeline string `json:"pipeline"`
	// Kind is the kind of every event.
	Kind EventKind `json:"kind"`
	// Events are the events, oldest first: 1 to MaxEventBatch of them.
	Events []Event `json:"events"`
}

// Validate checks the batch and every event in it: each must be valid and
// of the batch's pipeline and kind.
func (b EventBatch) Validate() *Error {
	if err := checkVersion(b.V); err != nil {
		return err
	}
	if err := checkName("pipeline", b.Pipeline); err != nil {
		return err
	}
	if !b.Kind.valid() {
		return fieldErrorf("kind", "kind %s is not a known event kind", quote(string(b.Kind)))
	}
	if len(b.Events) == 0 {
		return fieldErrorf("events", "events is empty: a batch carries at least one event")
	}
	if len(b.Events) > MaxEventBatch {
		e := fieldErrorf("events", "batch has %d events; the limit is %d: publish several batches", len(b.Events), MaxEventBatch)
		e.Details["limit"] = MaxEventBatch
		return e
	}
	for i, ev := range b.Events {
		prefix := indexed("events", i) + "."
		if err := ev.validate(prefix); err != nil {
			return err
		}
		if ev.Pipeline != b.Pipeline {
			return fieldErrorf(prefix+"pipeline", "%spipeline is %q, not the batch's pipeline %q: batch each pipeline's events apart", prefix, ev.Pipeline, b.Pipeline)
		}
		if ev.Kind != b.Kind {
			return fieldErrorf(prefix+"kind", "%skind is %q, not the batch's kind %q: batch each kind's events apart", prefix, ev.Kind, b.Kind)
		}
	}
	return nil
}

// EncodeEventBatch validates b and encodes it.
func EncodeEventBatch(b EventBatch) ([]byte, *Error) { return encodeValid(b, MaxMessageBytes) }

// DecodeEventBatch decodes and validates a batch of events, with the rules
// of DecodeRequest and MaxMessageBytes.
func DecodeEventBatch(data []byte) (EventBatch, *Error) {
	return decodeValid[EventBatch](data, MaxMessageBytes)
}

// EventBatchBuilder encodes an EventBatch one event at a time, for a
// publisher that collects events as they happen: each event is validated
// and encoded when it is added, so the batch's size is known exactly and
// later changes to the event's metadata do not reach the wire. Bytes is
// what EncodeEventBatch returns for the same batch.
//
// The zero value is an empty batch; the first event added sets the batch's
// pipeline and kind. An EventBatchBuilder is not safe for concurrent use.
type EventBatchBuilder struct {
	pipeline string
	kind     EventKind
	buf      []byte // the batch so far, without the closing "]}"
	n        int
}

// Add validates e and appends it to the batch. It refuses, leaving the
// batch as it was, an invalid event or one of another pipeline or kind than
// the batch's (CodeBadRequest), and an event that would make the batch
// hold more than MaxEventBatch events or encode to more than
// min(limit, MaxMessageBytes) bytes (CodePayloadTooLarge).
func (b *EventBatchBuilder) Add(e Event, limit int) *Error {
	if err := e.Validate(); err != nil {
		return err
	}
	if b.n > 0 && e.Pipeline != b.pipeline {
		return fieldErrorf("pipeline", "pipeline is %q, not the batch's pipeline %q", e.Pipeline, b.pipeline)
	}
	if b.n > 0 && e.Kind != b.kind {
		return fieldErrorf("kind", "kind is %q, not the batch's kind %q", e.Kind, b.kind)
	}
	if b.n == MaxEventBatch {
		return Errorf(CodePayloadTooLarge, "the batch holds %d events, the most it may", MaxEventBatch)
	}
	limit = min(limit, MaxMessageBytes)
	data, err := encodeJSON(e, limit)
	if err != nil {
		return err
	}
	head := b.buf
	if b.n == 0 {
		h, err := encodeJSON(struct {
			V        int       `json:"v"`
			Pipeline string    `json:"pipeline"`
			Kind     EventKind `json:"kind"`
		}{Version, e.Pipeline, e.Kind}, limit)
		if err != nil {
			return err
		}
		head = append(append(b.buf[:0], h[:len(h)-1]...), `,"events":[`...)
	}
	size := len(head) + len(data) + len("]}")
	if b.n > 0 {
		size++ // the comma
	}
	if size > limit {
		e := Errorf(CodePayloadTooLarge, "the event would make the batch %d bytes; the limit is %d", size, limit)
		e.Details = map[string]any{"size": size, "limit": limit}
		return e
	}
	if b.n > 0 {
		head = append(head, ',')
	}
	b.buf = append(head, data...)
	b.pipeline, b.kind = e.Pipeline, e.Kind
	b.n++
	return nil
}

// Len returns the number of events in the batch.
func (b *EventBatchBuilder) Len() int { return b.n }

// Pipeline returns the pipeline of the batch's events, "" while it is
// empty.
func (b *EventBatchBuilder) Pipeline() string { return b.pipeline }

// Kind returns the kind of the batch's events, "" while it is empty.
func (b *EventBatchBuilder) Kind() EventKind { return b.kind }

// Size returns the size of the encoded batch in bytes, 0 while it is empty.
func (b *EventBatchBuilder) Size() int {
	if b.n == 0 {
		return 0
	}
	return len(b.buf) + len("]}")
}

// Bytes returns the encoded batch, in a fresh slice, or nil if it is empty.
func (b *EventBatchBuilder) Bytes() []byte {
	if b.n == 0 {
		return nil
	}
	out := make([]byte, 0, b.Size())
	return append(append(out, b.buf...), "]}"...)
}

// Reset empties the batch, keeping its memory.
func (b *EventBatchBuilder) Reset() {
	*b = EventBatchBuilder{buf: b.buf[:0]}
}
