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

// Event is one telemetry event, published to EventSubject(pipeline, kind).
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
func (e Event) Validate() *Error {
	if err := checkVersion(e.V); err != nil {
		return err
	}
	if !e.Kind.valid() {
		return fieldErrorf("kind", "kind %s is not a known event kind", quote(string(e.Kind)))
	}
	if err := checkName("pipeline", e.Pipeline); err != nil {
		return err
	}
	if err := checkName("asset", e.Asset); err != nil {
		return err
	}
	if err := checkPartition("partition", e.Partition, false); err != nil {
		return err
	}
	if err := checkID("run_id", e.RunID); err != nil {
		return err
	}
	if err := checkTime("time", e.Time); err != nil {
		return err
	}
	if err := checkNonNegative("duration_ns", e.DurationNS); err != nil {
		return err
	}
	if e.Error != nil {
		return e.Error.validate("error")
	}
	if e.Kind == EventRunException {
		return fieldErrorf("error", "a run.exception event must say why in error")
	}
	return nil
}

// EncodeEvent validates e and encodes it.
func EncodeEvent(e Event) ([]byte, *Error) { return encodeValid(e, MaxMessageBytes) }

// DecodeEvent decodes and validates an event, with the rules of
// DecodeRequest and MaxMessageBytes.
func DecodeEvent(data []byte) (Event, *Error) { return decodeValid[Event](data, MaxMessageBytes) }
