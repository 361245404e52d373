package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The event encoder (appendEvent) must write exactly what encoding/json
// wrote before it, through encodeJSON: consumers and golden files depend on
// the bytes. These tests hold it to that, and keep the encoding/json path
// (referenceAdd) to compare and to benchmark against.

// referenceEncodeEvent is the event as encoding/json encodes it, extra
// merged into a copy of its metadata.
func referenceEncodeEvent(e Event, extra metaExtras) ([]byte, *Error) {
	return encodeJSON(e.withMetadata(extra), 2*MaxMessageBytes)
}

// referenceAdd is EventBatchBuilder.Add as it was before appendEvent:
// the field-by-field validation, then encoding/json for the event and the
// batch's head.
func referenceAdd(b *EventBatchBuilder, e Event, limit int) *Error {
	if err := e.check(""); err != nil {
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

// checkEventEncoding fails t unless appendEvent and encoding/json agree on
// e with extra: the same bytes, or both refusing it.
func checkEventEncoding(t *testing.T, e Event, extra metaExtras) {
	t.Helper()
	if valid, err := e.valid(), e.check(""); valid != (err == nil) {
		t.Fatalf("event %#v: valid() = %v, check says %v", e, valid, err)
	}
	want, werr := referenceEncodeEvent(e, extra)
	prefix := []byte("prefix,")
	got, ok := appendEvent(prefix[:len(prefix):len(prefix)], &e, extra)
	if werr != nil {
		if ok {
			t.Fatalf("encoding/json refuses %#v (%v), appendEvent wrote\n%s", e, werr, got)
		}
		return
	}
	if !ok {
		t.Fatalf("appendEvent refuses %#v; encoding/json wrote\n%s", e, want)
	}
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("appendEvent changed dst: %q", got)
	}
	if got = got[len(prefix):]; !bytes.Equal(got, want) {
		t.Fatalf("event %#v (extra %+v):\nappendEvent:   %s\nencoding/json: %s", e, extra, got, want)
	}
	// The builder, which validates, writes the same and errs alike.
	var b, ref EventBatchBuilder
	var berr *Error
	switch {
	case extra.n == 2:
		berr = b.AddStamped(e, extra.e[1].value, extra.e[0].num, MaxMessageBytes)
	case extra.n == 1:
		berr = b.AddWithMetadata(e, extra.e[0].key, extra.e[0].value, MaxMessageBytes)
	default:
		berr = b.Add(e, MaxMessageBytes)
	}
	rerr := referenceAdd(&ref, e.withMetadata(extra), MaxMessageBytes)
	if !reflect.DeepEqual(berr, rerr) {
		t.Fatalf("event %#v: Add says %v, the encoding/json path %v", e, berr, rerr)
	}
	if !bytes.Equal(b.Bytes(), ref.Bytes()) {
		t.Fatalf("event %#v:\nAdd:           %s\nencoding/json: %s", e, b.Bytes(), ref.Bytes())
	}
}

// oneExtra is one string entry to merge into the metadata.
func oneExtra(key, value string) metaExtras {
	var x metaExtras
	x.add(metaEntry{key: key, value: value})
	return x
}

// stamped is what AddStamped merges into the metadata.
func stamped(worker string, seq uint64) metaExtras {
	var x metaExtras
	x.add(metaEntry{key: EventWorkerKey, value: worker})
	x.add(metaEntry{key: EventSeqKey, num: seq, isNum: true})
	return x
}

type jsonText string

func (s jsonText) MarshalJSON() ([]byte, error) { return []byte(s), nil }

type textKey string

func (s textKey) MarshalText() ([]byte, error) { return []byte("<" + s + ">"), nil }

func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	base := Event{V: Version, Kind: EventRunStop, Pipeline: "sales", Asset: "sum", Partition: "2025-01-15", RunID: "r1",
		Time: time.Date(2025, 1, 15, 10, 30, 1, 234000000, time.UTC), DurationNS: 1234e6,
		Metadata: map[string]any{"bytes": 42, "storage": "s3", "key": "sales/sum/k"}}
	odd := "a<b>&c\"d\\e\x00\x01\x1f\x7f\b\f\n\r\t é中😀\u2028\u2029\xff\xc3(\xed\xa0\x80\xf4\x90\x80\x80end"
	plus14 := time.FixedZone("", 14*3600)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		berlin = time.FixedZone("CET", 3600)
	}
	cases := map[string]func(e *Event){
		"worker event":     func(e *Event) {},
		"no metadata":      func(e *Event) { e.Metadata, e.DurationNS = nil, 0 },
		"empty metadata":   func(e *Event) { e.Metadata = map[string]any{} },
		"odd strings":      func(e *Event) { e.Partition, e.Metadata = odd, map[string]any{odd: odd, "": ""} },
		"odd kind":         func(e *Event) { e.Kind, e.Pipeline, e.Asset, e.RunID = EventKind(odd), odd, odd, odd },
		"negative":         func(e *Event) { e.V, e.DurationNS = -7, math.MinInt64 },
		"nanos":            func(e *Event) { e.Time = time.Date(2025, 1, 15, 10, 30, 1, 1, time.UTC) },
		"micros":           func(e *Event) { e.Time = time.Date(2025, 1, 15, 10, 30, 1, 100000, time.UTC) },
		"offset":           func(e *Event) { e.Time = time.Date(9999, 12, 31, 23, 59, 59, 999999999, plus14) },
		"negative offset":  func(e *Event) { e.Time = time.Date(1, 1, 1, 0, 0, 0, 0, time.FixedZone("X", -(23*3600+59*60))) },
		"location":         func(e *Event) { e.Time = time.Date(2025, 7, 1, 12, 0, 0, 5e8, berlin) },
		"zero time":        func(e *Event) { e.Time = time.Time{} },
		"year 10000":       func(e *Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"year -1":          func(e *Event) { e.Time = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) },
		"offset 24h":       func(e *Event) { e.Time = time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)) },
		"offset seconds":   func(e *Event) { e.Time = time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600+30*60+17)) },
		"monotonic":        func(e *Event) { e.Time = time.Now() },
		"error":            func(e *Event) { e.Kind, e.Error = EventRunException, &Error{Code: "timeout", Message: odd} },
		"error no message": func(e *Event) { e.Error = &Error{} },
		"error details": func(e *Event) {
			e.Error = &Error{Code: "execution_failed", Message: "boom", Details: map[string]any{"attempts": 3.0, "field": "x", "z": nil, "a": []any{1, "b"}}}
		},
		"error empty details": func(e *Event) { e.Error = &Error{Code: "x", Details: map[string]any{}} },
		"numbers": func(e *Event) {
			e.Metadata = map[string]any{
				"i": -1, "i64": int64(math.MaxInt64), "i32": int32(math.MinInt32), "u": uint(7), "u64": uint64(math.MaxUint64),
				"f0": 0.0, "fneg0": math.Copysign(0, -1), "f1": 1.5, "fbig": 1e21, "fbig2": 123456789012345678901.0, "fsmall": 1e-7,
				"fsmall2": 0.000001, "fmax": math.MaxFloat64, "ftiny": 5e-324, "f32": float32(1e-7), "f32b": float32(3.4e38),
				"f32c": float32(0.1), "t": true, "f": false, "nil": nil,
			}
		},
		"nan":          func(e *Event) { e.Metadata = map[string]any{"x": math.NaN()} },
		"inf":          func(e *Event) { e.Metadata = map[string]any{"x": math.Inf(-1)} },
		"nan32 nested": func(e *Event) { e.Metadata = map[string]any{"x": []any{map[string]any{"y": float32(math.Inf(1))}}} },
		"nan in error": func(e *Event) { e.Error = &Error{Code: "x", Details: map[string]any{"x": math.NaN()}} },
		"channel":      func(e *Event) { e.Metadata = map[string]any{"x": make(chan int)} },
		"nested": func(e *Event) {
			e.Metadata = map[string]any{"m": map[string]any{"b": 1, "a": []any{nil, []any{}, map[string]any{}, odd}},
				"nilmap": map[string]any(nil), "nilslice": []any(nil)}
		},
		"other types": func(e *Event) {
			e.Metadata = map[string]any{"time": time.Date(2025, 1, 1, 0, 0, 0, 0, plus14), "dur": time.Second, "num": json.Number("12.50"),
				"bytes": []byte("a<b>"), "strs": []string{"<", odd}, "u8": uint8(3), "ptr": new(int), "struct": struct {
					A string `json:"a"`
					B int    `json:"b,omitempty"`
				}{A: "<&>"},
				"marshaler": jsonText(`{ "b" : "<&>" , "a":[1, 2] }`), "textkeys": map[textKey]int{"b": 1, "a": 2},
				"intkeys": map[int]string{10: "x", 9: "y"}, "kind": EventRunStart,
			}
		},
		"bad marshaler": func(e *Event) { e.Metadata = map[string]any{"m": jsonText(`{`)} },
		"many keys": func(e *Event) {
			e.Metadata = map[string]any{}
			for i := range 40 {
				e.Metadata[strings.Repeat("k", 40-i)+string(rune('a'+i%26))] = i
			}
		},
		"deep": func(e *Event) {
			var v any = "leaf"
			for i := range 100 {
				if i%2 == 0 {
					v = map[string]any{"x": v}
				} else {
					v = []any{v}
				}
			}
			e.Metadata = map[string]any{"deep": v}
		},
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	cases["cycle"] = func(e *Event) { e.Metadata = map[string]any{"c": cyclic} }

	extras := []metaExtras{{}, oneExtra("worker", "w1"), oneExtra("", ""), oneExtra("a", "first"), oneExtra("zzz", "last"),
		oneExtra("storage", "replaced"), oneExtra(odd, odd), stamped("w1", 1), stamped(odd, math.MaxUint64), stamped("", 0)}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			for _, extra := range extras {
				e := base
				e.Metadata = map[string]any{}
				for k, v := range base.Metadata {
					e.Metadata[k] = v
				}
				mutate(&e)
				if name == "cycle" {
					checkEventEncoding(t, e, extra)
					continue
				}
				before := fmt.Sprint(e.Metadata)
				checkEventEncoding(t, e, extra)
				if fmt.Sprint(e.Metadata) != before {
					t.Fatalf("encoding changed the metadata: %v", e.Metadata)
				}
			}
		})
	}
}

// TestEventBatchBuilderErrors: the builder refuses what the encoding/json
// path refused, with the same error, and keeps its batch.
func TestEventBatchBuilderErrors(t *testing.T) {
	ev := Event{V: Version, Kind: EventRunStop, Pipeline: "sales", Asset: "sum", Partition: "p", RunID: "r1",
		Time: time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC), Metadata: map[string]any{"s": strings.Repeat("x", 1000)}}
	bad := ev
	bad.Metadata = map[string]any{"nan": math.NaN()}
	bigEvent := ev
	bigEvent.Metadata = map[string]any{"s": strings.Repeat("x", MaxMessageBytes)}
	for _, limit := range []int{0, 100, 1100, 2200, 2250, 3000, 5000, MaxMessageBytes, 2 * MaxMessageBytes} {
		var b, ref EventBatchBuilder
		for i, e := range []Event{ev, bad, ev, bigEvent, ev, ev, ev} {
			got, want := b.Add(e, limit), referenceAdd(&ref, e, limit)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("limit %d, event %d: Add says %v, the encoding/json path %v", limit, i, got, want)
			}
			if !bytes.Equal(b.Bytes(), ref.Bytes()) || b.Len() != ref.Len() || b.Size() != ref.Size() {
				t.Fatalf("limit %d, event %d:\nAdd:           %s\nencoding/json: %s", limit, i, b.Bytes(), ref.Bytes())
			}
		}
	}
}

// FuzzEventEncoding holds appendEvent to encoding/json's bytes over
// arbitrary strings (odd characters, invalid UTF-8), times (zones, nanos,
// years out of range), metadata of varied types and errors with details.
func FuzzEventEncoding(f *testing.F) {
	f.Add("sales", "run.stop", "2025-01-15", "r1", "storage", "s3", "execution_failed", "boom",
		int64(1736937000), int64(234000000), 0, int64(1234e6), 42.0, int64(7), uint8(0), "worker", "w1")
	f.Add("a<b>&", "run.exception", "\u2028\u2029\xff\x00\x1f\"\\", "é中😀", "\xed\xa0\x80", "\t\n\r\b\f\x7f", "", "",
		int64(-62135596800), int64(1), -(23*3600 + 59*60), int64(-1), math.Copysign(0, -1), int64(math.MinInt64), uint8(0xff), "", "\xc3")
	f.Add("p", "", "x", "y", "bytes", "", "c", "m", int64(253402300799), int64(999999999), 14*3600, int64(0), 1e21, int64(-3),
		uint8(0x55), "bytes", "z")
	f.Add("p", "k", "x", "y", "k", "v", "c", "m", int64(253402300800), int64(0), 24*3600, int64(1), 1e-7, int64(0),
		uint8(0xaa), "a", "b")
	f.Fuzz(func(t *testing.T, name, kind, partition, runID, key, str, code, message string,
		sec, nsec int64, offset int, duration int64, fl float64, n int64, shape uint8, extraKey, extraValue string) {
		loc := time.UTC
		if offset != 0 {
			loc = time.FixedZone(str, offset)
		}
		e := Event{V: int(n % 3), Kind: EventKind(kind), Pipeline: name, Asset: key, Partition: partition, RunID: runID,
			Time: time.Unix(sec, nsec).In(loc), DurationNS: duration}
		if shape&1 != 0 {
			e.Metadata = map[string]any{key: str, str: n, "f": fl, "i": int(n), "b": shape&2 != 0, "n": nil,
				partition: map[string]any{runID: []any{fl, str, float32(fl), uint64(n)}}}
		} else if shape&2 != 0 {
			e.Metadata = map[string]any{}
		}
		if shape&4 != 0 {
			e.Metadata = map[string]any{key: time.Unix(n, nsec).In(loc), "d": time.Duration(n), "s": []string{str}}
		}
		if shape&8 != 0 {
			e.Error = &Error{Code: code, Message: message}
			if shape&16 != 0 {
				e.Error.Details = map[string]any{"field": str, key: fl, message: []any{n, code}}
			}
		}
		if shape&32 != 0 {
			// A valid event, so that the builder writes it.
			e.V, e.Pipeline, e.Asset, e.RunID = Version, "sales", "sum", "r1"
			if !EventKind(kind).valid() {
				e.Kind = EventRunStart
			}
			if partition == "" {
				e.Partition = "x"
			}
			if e.Error != nil {
				e.Error.Code = "execution_failed"
			}
		}
		var extra metaExtras
		switch {
		case shape&128 != 0:
			extra = stamped(extraValue, uint64(n))
		case shape&64 != 0:
			extra = oneExtra(extraKey, extraValue)
		}
		checkEventEncoding(t, e, extra)
	})
}

// BenchmarkEventBatchAdd compares adding a worker's event to a batch
// through encoding/json (before) with appendEvent (after). "worker" is
// what a worker does: stamp its id in the metadata, which the encoding/json
// path did on a copy of the map.
func BenchmarkEventBatchAdd(b *testing.B) {
	ev := Event{V: Version, Kind: EventStorageStoreStop, Pipeline: "sales", Asset: "sum", Partition: "2025-01-15",
		RunID: "0194a6d2c1b37f0e9b1c2d3e4f5a6b7c", Time: time.Date(2025, 1, 15, 10, 30, 1, 234567891, time.UTC),
		DurationNS: 1234567, Metadata: map[string]any{"storage": "file", "key": "sales/sum/MjAyNS0wMS0xNQ/0194a6d2", "bytes": 4096}}
	run := func(b *testing.B, add func(*EventBatchBuilder) *Error) {
		var batch EventBatchBuilder
		b.ReportAllocs()
		for b.Loop() {
			if batch.Len() == MaxEventBatch {
				batch.Reset()
			}
			if err := add(&batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("encoding_json", func(b *testing.B) {
		run(b, func(batch *EventBatchBuilder) *Error { return referenceAdd(batch, ev, MaxMessageBytes) })
	})
	b.Run("append", func(b *testing.B) {
		run(b, func(batch *EventBatchBuilder) *Error { return batch.Add(ev, MaxMessageBytes) })
	})
	b.Run("worker/encoding_json", func(b *testing.B) {
		run(b, func(batch *EventBatchBuilder) *Error {
			md := make(map[string]any, len(ev.Metadata)+1)
			for k, v := range ev.Metadata {
				md[k] = v
			}
			md["worker"] = "worker-1"
			e := ev
			e.Metadata = md
			return referenceAdd(batch, e, MaxMessageBytes)
		})
	})
	b.Run("worker/append", func(b *testing.B) {
		run(b, func(batch *EventBatchBuilder) *Error {
			return batch.AddWithMetadata(ev, "worker", "worker-1", MaxMessageBytes)
		})
	})
}
