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

// EncodeEvent validates e and encodes it alone. Events are published only
// inside an EventBatch; a publisher uses EncodeEvent to check an event and
// learn its encoded size before adding it to a batch.
func EncodeEvent(e Event) ([]byte, *Error) { return encodeValid(e, MaxMessageBytes) }

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

// DecodeEvent decodes and validates a lone event, with the rules of
// DecodeRequest and MaxMessageBytes.
func DecodeEvent(data []byte) (Event, *Error) { return decodeValid[Event](data, MaxMessageBytes) }
