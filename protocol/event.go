package protocol

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowstone-go/flowstone/internal/jsonw"
)

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
	// The gate events (added within Version 1), published by the
	// coordinator that drives the run.
	EventGateWait      EventKind = "gate.wait"      // an asset's gate opened and waits
	EventGateApproved  EventKind = "gate.approved"  // it was approved: the asset runs
	EventGateRejected  EventKind = "gate.rejected"  // it was rejected; Error says so
	EventGateSignalled EventKind = "gate.signalled" // its signal came: the asset runs
	EventGateExpired   EventKind = "gate.expired"   // its timeout passed
)

func (k EventKind) valid() bool {
	switch k {
	case EventRunStart, EventRunStop, EventRunException,
		EventStorageLoadStart, EventStorageLoadStop, EventStorageStoreStart, EventStorageStoreStop,
		EventScatterStart, EventScatterItemStart, EventScatterItemStop, EventScatterStop,
		EventGateWait, EventGateApproved, EventGateRejected, EventGateSignalled, EventGateExpired:
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
func (e *Event) validate(prefix string) *Error {
	if e.valid() {
		return nil
	}
	return e.check(prefix)
}

// valid reports whether check finds nothing wrong with e, cheaply: without
// building field names or errors.
func (e *Event) valid() bool {
	ok := e.V == Version && e.Kind.valid() &&
		isToken(e.Pipeline, MaxNameBytes) && isLetter(e.Pipeline[0]) &&
		isToken(e.Asset, MaxNameBytes) && isLetter(e.Asset[0]) &&
		e.Partition != "" && len(e.Partition) <= MaxPartitionBytes && utf8.ValidString(e.Partition) &&
		isToken(e.RunID, MaxIDBytes) && e.DurationNS >= 0 && !e.Time.IsZero()
	if !ok {
		return false
	}
	if y := e.Time.Year(); y < 1 || y > 9999 {
		return false
	}
	if _, offset := e.Time.Zone(); offset <= -24*60*60 || offset >= 24*60*60 {
		return false
	}
	if e.Error == nil {
		return e.Kind != EventRunException
	}
	return validCode(e.Error.Code) && utf8.ValidString(e.Error.Message)
}

// check checks e field by field, naming the first at fault with prefix.
func (e *Event) check(prefix string) *Error {
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

// The metadata a worker stamps on every event it publishes
// (EventBatchBuilder.AddStamped), and the headers of its event messages.
//
// A worker batches its events by kind, so a subscriber receives one
// worker's events of different kinds out of the order they happened (a
// run.exception before its run.start). The stamps restore it exactly: an
// event's EventSeqKey numbers it among the events of its pipeline that its
// worker process published, from 1, in the order they happened; every
// message carries EventEpochHeader, the process's id for those numbers,
// and EventFloorHeader, the lowest number that process had not yet
// published when it sent the message. Every event numbered below a
// message's floor was in an earlier message; every event numbered from the
// floor up to one of the message's events is in this message or in one
// sent after it (within the worker's batching delay). A subscriber holds an
// event until every lower number from the floor has arrived, and after a
// gap that does not fill (a message lost) gives up waiting.
const (
	// EventWorkerKey is the metadata key of the worker's id.
	EventWorkerKey = "worker"
	// EventSeqKey is the metadata key of the event's number (a JSON
	// number; read it with EventSeq).
	EventSeqKey = "seq"
	// EventEpochHeader is the header of an event message naming the
	// worker process whose numbers its events carry.
	EventEpochHeader = "Flowstone-Event-Epoch"
	// EventFloorHeader is the header of an event message holding its
	// floor, in decimal.
	EventFloorHeader = "Flowstone-Event-Floor"
)

// EventSeq returns the number a worker stamped on e (EventSeqKey), and
// false if it has none.
func EventSeq(e Event) (uint64, bool) {
	switch v := e.Metadata[EventSeqKey].(type) {
	case float64: // as encoding/json decodes a number
		if v >= 1 && v <= 1<<53 && v == float64(uint64(v)) {
			return uint64(v), true
		}
	case uint64:
		return v, v > 0
	}
	return 0, false
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
	for i := range b.Events {
		ev := &b.Events[i]
		if ev.valid() && ev.Pipeline == b.Pipeline && ev.Kind == b.Kind {
			continue
		}
		prefix := indexed("events", i) + "."
		if err := ev.check(prefix); err != nil {
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
	return b.add(&e, metaExtras{}, limit)
}

// AddWithMetadata is Add for e with Metadata[key] = value (replacing any
// value e.Metadata has for key), without touching or copying e.Metadata:
// the bytes are those Add writes for the event with that entry added to a
// copy of its metadata.
func (b *EventBatchBuilder) AddWithMetadata(e Event, key, value string, limit int) *Error {
	var x metaExtras
	x.add(metaEntry{key: key, value: value})
	return b.add(&e, x, limit)
}

// AddStamped is Add for e with the worker's stamps in its metadata, as
// AddWithMetadata adds one entry: EventWorkerKey = worker and EventSeqKey
// = seq (a JSON number). A worker stamps every event it publishes so.
func (b *EventBatchBuilder) AddStamped(e Event, worker string, seq uint64, limit int) *Error {
	var x metaExtras
	x.add(metaEntry{key: EventWorkerKey, value: worker})
	x.add(metaEntry{key: EventSeqKey, num: seq, isNum: true})
	return b.add(&e, x, limit)
}

func (b *EventBatchBuilder) add(e *Event, extra metaExtras, limit int) *Error {
	if err := e.validate(""); err != nil {
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
	// The event is encoded in place, after the batch so far (and its head
	// or comma). b.buf is only set once the event is accepted, so a refusal
	// leaves the batch as it was: the bytes written past its end are
	// scratch.
	buf := b.buf
	if b.n == 0 {
		// {"v":1,"pipeline":"...","kind":"...","events":[
		buf = append(buf[:0], `{"v":`...)
		buf = strconv.AppendInt(buf, Version, 10)
		buf = append(buf, `,"pipeline":`...)
		buf = jsonw.String(buf, e.Pipeline)
		buf = append(buf, `,"kind":`...)
		buf = jsonw.String(buf, string(e.Kind))
		buf = append(buf, `,"events":[`...)
	} else {
		buf = append(buf, ',')
	}
	start := len(buf)
	buf, ok := appendEvent(buf, e, extra)
	if !ok {
		// encoding/json refuses the event (a metadata value it cannot
		// encode): let it say why, in its words.
		data, err := encodeJSON(e.withMetadata(extra), limit)
		if err != nil {
			return err
		}
		buf = append(buf[:start], data...) // only if the encoders disagree
	}
	if n := len(buf) - start; n > limit {
		perr := Errorf(CodePayloadTooLarge, "encoded %T is %d bytes; the limit is %d: send less, or store it and send a reference", *e, n, limit)
		perr.Details = map[string]any{"size": n, "limit": limit}
		return perr
	}
	if size := len(buf) + len("]}"); size > limit {
		perr := Errorf(CodePayloadTooLarge, "the event would make the batch %d bytes; the limit is %d", size, limit)
		perr.Details = map[string]any{"size": size, "limit": limit}
		return perr
	}
	b.buf = buf
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

// The event encoder. EventBatchBuilder.Add writes each event with
// appendEvent instead of encoding/json: the same bytes (encodeJSON's, that
// is encoding/json without HTML escaping), for a fraction of the time and
// no allocations for the metadata workers send. Fields are written in
// struct order; metadata values of the common types are written directly,
// any other through encoding/json. FuzzEventEncoding holds the two to the
// same output.

// metaEntry is one metadata entry merged into an event's metadata as it is
// encoded: the string value, or num when isNum.
type metaEntry struct {
	key, value string
	num        uint64
	isNum      bool
}

// any returns the entry's value as the map would hold it.
func (m metaEntry) any() any {
	if m.isNum {
		return m.num
	}
	return m.value
}

// metaExtras are the (up to two) entries merged into an event's metadata,
// sorted by key, each replacing the metadata's own value for its key.
type metaExtras struct {
	n int
	e [2]metaEntry
}

// add puts m among the entries, in key order; a second entry of a key
// replaces the first.
func (x *metaExtras) add(m metaEntry) {
	for i := range x.n {
		if x.e[i].key == m.key {
			x.e[i] = m
			return
		}
	}
	x.e[x.n] = m
	x.n++
	if x.n == 2 && x.e[1].key < x.e[0].key {
		x.e[0], x.e[1] = x.e[1], x.e[0]
	}
}

// has reports whether key is one of the entries.
func (x *metaExtras) has(key string) bool {
	for i := range x.n {
		if x.e[i].key == key {
			return true
		}
	}
	return false
}

// withMetadata returns e with extra in (a copy of) its metadata.
func (e *Event) withMetadata(extra metaExtras) Event {
	ev := *e
	if extra.n > 0 {
		md := make(map[string]any, len(e.Metadata)+extra.n)
		for k, v := range e.Metadata {
			md[k] = v
		}
		for i := range extra.n {
			md[extra.e[i].key] = extra.e[i].any()
		}
		ev.Metadata = md
	}
	return ev
}

// appendEvent appends e, with extra in its metadata, as encodeJSON encodes
// it. It reports false, having appended part of the event, where
// encoding/json would fail: a metadata value it cannot encode, or a time
// RFC 3339 cannot write.
func appendEvent(dst []byte, e *Event, extra metaExtras) ([]byte, bool) {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(e.V), 10)
	dst = append(dst, `,"kind":`...)
	dst = jsonw.String(dst, string(e.Kind))
	dst = append(dst, `,"pipeline":`...)
	dst = jsonw.String(dst, e.Pipeline)
	dst = append(dst, `,"asset":`...)
	dst = jsonw.String(dst, e.Asset)
	dst = append(dst, `,"partition":`...)
	dst = jsonw.String(dst, e.Partition)
	dst = append(dst, `,"run_id":`...)
	dst = jsonw.String(dst, e.RunID)
	dst = append(dst, `,"time":`...)
	dst, ok := jsonw.Time(dst, e.Time)
	if !ok {
		return dst, false
	}
	if e.DurationNS != 0 {
		dst = append(dst, `,"duration_ns":`...)
		dst = strconv.AppendInt(dst, e.DurationNS, 10)
	}
	if len(e.Metadata) > 0 || extra.n > 0 {
		dst = append(dst, `,"metadata":`...)
		if dst, ok = appendJSONObject(dst, e.Metadata, extra, 0); !ok {
			return dst, false
		}
	}
	if e.Error != nil {
		dst = append(dst, `,"error":{"code":`...)
		dst = jsonw.String(dst, e.Error.Code)
		dst = append(dst, `,"message":`...)
		dst = jsonw.String(dst, e.Error.Message)
		if len(e.Error.Details) > 0 {
			dst = append(dst, `,"details":`...)
			if dst, ok = appendJSONObject(dst, e.Error.Details, metaExtras{}, 0); !ok {
				return dst, false
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, '}'), true
}

// maxJSONDepth is how deep appendJSONValue follows nested maps and slices
// itself; deeper values go to encoding/json (which finds cycles).
const maxJSONDepth = 32

// appendJSONObject appends m, with extra in it, as encoding/json writes a
// map[string]any: entries sorted by key. A nil m without extra is null.
func appendJSONObject(dst []byte, m map[string]any, extra metaExtras, depth int) ([]byte, bool) {
	if m == nil && extra.n == 0 {
		return append(dst, "null"...), true
	}
	type entry struct {
		key   string
		value any
	}
	var stack [16]entry
	entries := stack[:0]
	for k, v := range m {
		if extra.n > 0 && extra.has(k) {
			continue // extra replaces it
		}
		entries = append(entries, entry{k, v})
	}
	if len(entries) <= len(stack) {
		// Insertion sort: metadata has a handful of entries.
		for i := 1; i < len(entries); i++ {
			for j := i; j > 0 && entries[j].key < entries[j-1].key; j-- {
				entries[j], entries[j-1] = entries[j-1], entries[j]
			}
		}
	} else {
		slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	}
	dst = append(dst, '{')
	first := true
	ok := true
	next := 0 // the first extra not written yet
	for _, en := range entries {
		for ; next < extra.n && extra.e[next].key < en.key; next++ {
			dst = appendJSONEntry(dst, first, extra.e[next])
			first = false
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = jsonw.String(dst, en.key)
		dst = append(dst, ':')
		if dst, ok = appendJSONValue(dst, en.value, depth+1); !ok {
			return dst, false
		}
	}
	for ; next < extra.n; next++ {
		dst = appendJSONEntry(dst, first, extra.e[next])
		first = false
	}
	return append(dst, '}'), true
}

func appendJSONEntry(dst []byte, first bool, m metaEntry) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = jsonw.String(dst, m.key)
	dst = append(dst, ':')
	if m.isNum {
		return strconv.AppendUint(dst, m.num, 10)
	}
	return jsonw.String(dst, m.value)
}

// appendJSONValue appends v as encoding/json writes it, reporting false
// where encoding/json fails.
func appendJSONValue(dst []byte, v any, depth int) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case string:
		return jsonw.String(dst, v), true
	case bool:
		return strconv.AppendBool(dst, v), true
	case int:
		return strconv.AppendInt(dst, int64(v), 10), true
	case int64:
		return strconv.AppendInt(dst, v, 10), true
	case int32:
		return strconv.AppendInt(dst, int64(v), 10), true
	case uint64:
		return strconv.AppendUint(dst, v, 10), true
	case uint:
		return strconv.AppendUint(dst, uint64(v), 10), true
	case float64:
		return appendJSONFloat(dst, v, 64)
	case float32:
		return appendJSONFloat(dst, float64(v), 32)
	case map[string]any:
		if depth < maxJSONDepth {
			return appendJSONObject(dst, v, metaExtras{}, depth)
		}
	case []any:
		if depth < maxJSONDepth {
			if v == nil {
				return append(dst, "null"...), true
			}
			dst = append(dst, '[')
			ok := true
			for i, x := range v {
				if i > 0 {
					dst = append(dst, ',')
				}
				if dst, ok = appendJSONValue(dst, x, depth+1); !ok {
					return dst, false
				}
			}
			return append(dst, ']'), true
		}
	}
	// Any other type (time.Time, json.Number, structs, named types...)
	// is encoding/json's.
	data, err := encodeJSON(v, MaxMessageBytes+1)
	if err != nil {
		return dst, false
	}
	return append(dst, data...), true
}

// appendJSONFloat appends f as encoding/json writes a float of bits bits:
// like strconv 'g' but with ES6's exponent cutoffs. NaN and infinities are
// not JSON.
func appendJSONFloat(dst []byte, f float64, bits int) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// e-09 to e-9
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}
