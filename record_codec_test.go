package flowstone

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// checkRecordCodec fails t unless MarshalRecord and appendRecord agree with
// json.Marshal on m: the same bytes, or the same error.
func checkRecordCodec(t testing.TB, m *Materialization) {
	t.Helper()
	want, wantErr := json.Marshal(m)
	got, err := marshalRecord(m)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("MarshalRecord error = %v, json.Marshal error = %v", err, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("MarshalRecord =\n%s\njson.Marshal =\n%s", got, want)
	}
	// The fast path itself: where it answers, it answers json.Marshal's bytes;
	// where it does not, json.Marshal must fail (it never gives up on a record
	// json.Marshal encodes, apart from error details, which it hands over).
	fast, ok := appendRecord([]byte("prefix"), m)
	switch {
	case ok && wantErr != nil:
		t.Fatalf("appendRecord succeeded where json.Marshal fails: %v", wantErr)
	case ok && !bytes.Equal(fast, append([]byte("prefix"), want...)):
		t.Fatalf("appendRecord =\n%s\njson.Marshal =\n%s", fast, want)
	case !ok && wantErr == nil:
		t.Fatalf("appendRecord gave up on a record json.Marshal encodes:\n%s", want)
	}
}

func TestMarshalRecordMatchesJSON(t *testing.T) {
	at := func(tm time.Time) *time.Time { return &tm }
	odd := []string{
		"",
		"plain-name_1.2",
		`<script>alert("x&y")</script>`,
		"quote\" back\\slash /slash",
		"ctl \x00\x01\x07\b\f\n\r\t\x1f\x7f end",
		"unicode: héllo, 日本語, 🎉, \u00a0",
		"line sep \u2028 para sep \u2029 end",
		"invalid \xff\xfe utf8 \xc3 \xe2\x82 end",
		"\xed\xa0\x80 surrogate",
		"\ufffd literal replacement",
		strings.Repeat("long&<>", 200),
	}
	zones := []*time.Location{
		time.UTC,
		time.FixedZone("east", 5*3600+30*60),
		time.FixedZone("west", -(9*3600 + 45*60)),
		time.FixedZone("sec", 3600+17),
		time.FixedZone("max", 23*3600+59*60),
	}
	times := []*time.Time{
		nil,
		at(time.Date(2026, 11, 25, 23, 18, 49, 0, time.UTC)),
		at(time.Date(2026, 1, 2, 3, 4, 5, 123456789, zones[1])),
		at(time.Date(2026, 1, 2, 3, 4, 5, 120000000, zones[2])),
		at(time.Date(1, 1, 1, 0, 0, 0, 1, zones[3])),
		at(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)),
		at(time.Date(9999, 12, 31, 23, 59, 59, 999999999, zones[4])),
		at(time.Now()), // monotonic reading, local zone
		at(time.Time{}),
	}
	// Times time.Time.MarshalJSON rejects.
	bad := []*time.Time{
		at(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)),
		at(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)),
		at(time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("24h", 24*3600))),
		at(time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("-25h", -25*3600))),
		at(time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("neg", -2*3600))), // year 10000 in UTC, 9999 local
	}
	inlines := [][]byte{nil, {}, {0}, {1, 2}, {1, 2, 3}, []byte("<&>"), bytes.Repeat([]byte{0xfb, 0xff}, 100), make([]byte, InlineLimit)}
	errs := []*Error{
		nil,
		{},
		{Type: TypeExecutionFailed, Message: "boom <&> \u2028"},
		{Type: TypeTimeout, Message: "t", Details: map[string]any{}},
		{Type: TypeExecutionFailed, Message: "with details", Details: map[string]any{
			"z": 1, "a": "x<y", "m": map[string]any{"n": []any{1.5, nil, true, "\xff"}}, "f": 1e21, "b": []byte("hi"),
		}},
		{Type: TypeExecutionFailed, Message: "cause", cause: errors.New("hidden")},
	}
	badErrs := []*Error{
		{Type: TypeExecutionFailed, Details: map[string]any{"nan": math.NaN()}},
		{Type: TypeExecutionFailed, Details: map[string]any{"ch": make(chan int)}},
	}
	lineages := [][]Lineage{nil, {}, {{}}, {{Asset: "up<1>", Partition: "2026-01-01", RunID: "r&1"}, {Asset: "u2", Partition: "\u2028", RunID: "\xff"}}}
	scatters := []*ScatterStatus{nil, {}, {Total: 10, Completed: 3, Failed: -1, Pending: math.MaxInt}}

	full := func() *Materialization {
		return &Materialization{
			Pipeline: "pipe", Asset: "asset", Partition: "2026-11-25", State: StateCompleted, RunID: "run-1",
			QueuedBy: "coord-1", Worker: "w-1", Attempt: 2,
			LeaseUntil: times[1], StartedAt: times[2], CompletedAt: times[3], DurationMS: 1234,
			Error: errs[4], Scatter: scatters[2], Skip: &Skip{Router: "route<1>", Chosen: "bulk&", Dependency: "\u2028"},
			Value: &Value{RunID: "run-0", Storage: InlineStorage, ObjectKey: "pipe/asset/p/run-1", Encoding: EncodingJSON, Size: 42,
				SHA256: strings.Repeat("ab", 32), Inline: []byte(`{"v":1}`), CompletedAt: *times[3], DurationMS: 7, Upstream: lineages[3]},
		}
	}

	checkRecordCodec(t, nil)
	checkRecordCodec(t, &Materialization{})
	checkRecordCodec(t, full())
	for _, s := range odd {
		m := full()
		m.Pipeline, m.Asset, m.Partition, m.State, m.RunID, m.QueuedBy = s, s, s, State(s), s, s
		m.Value.RunID, m.Value.Storage, m.Value.ObjectKey, m.Value.Encoding, m.Value.SHA256, m.Worker = s, s, s, s, s, s
		m.Error = &Error{Type: ErrorType(s), Message: s, Details: map[string]any{s: s}}
		m.Value.Upstream = []Lineage{{Asset: s, Partition: s, RunID: s}}
		m.Skip = &Skip{Router: s, Chosen: s, Dependency: s}
		checkRecordCodec(t, m)
		// One string at a time, everything else unset.
		checkRecordCodec(t, &Materialization{Partition: s})
		checkRecordCodec(t, &Materialization{Worker: s})
		checkRecordCodec(t, &Materialization{QueuedBy: s})
		checkRecordCodec(t, &Materialization{Value: &Value{ObjectKey: s}})
	}
	for _, n := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64} {
		m := full()
		m.Value.Size, m.DurationMS, m.Attempt, m.Value.DurationMS = n, n, int(n), n
		checkRecordCodec(t, m)
		checkRecordCodec(t, &Materialization{Value: &Value{Size: n, DurationMS: n}})
		checkRecordCodec(t, &Materialization{Attempt: int(n)})
		checkRecordCodec(t, &Materialization{DurationMS: n})
	}
	for _, b := range inlines {
		m := full()
		m.Value.Inline = b
		checkRecordCodec(t, m)
		checkRecordCodec(t, &Materialization{Value: &Value{Inline: b}})
	}
	for _, tm := range append(times, bad...) {
		m := full()
		m.StartedAt = tm
		checkRecordCodec(t, m)
		m = full()
		m.CompletedAt = tm
		checkRecordCodec(t, m)
		m = full()
		m.LeaseUntil = tm
		checkRecordCodec(t, m)
		checkRecordCodec(t, &Materialization{StartedAt: tm, CompletedAt: tm, LeaseUntil: tm})
		if tm != nil {
			m = full()
			m.Value.CompletedAt = *tm
			checkRecordCodec(t, m)
		}
	}
	for _, e := range append(errs, badErrs...) {
		m := full()
		m.Error = e
		checkRecordCodec(t, m)
		checkRecordCodec(t, &Materialization{Error: e})
	}
	for _, l := range lineages {
		m := full()
		m.Value.Upstream = l
		checkRecordCodec(t, m)
		checkRecordCodec(t, &Materialization{Value: &Value{Upstream: l}})
	}
	for _, s := range scatters {
		m := full()
		m.Scatter = s
		checkRecordCodec(t, m)
		checkRecordCodec(t, &Materialization{Scatter: s})
	}
	for _, sk := range []*Skip{nil, {}, {Router: "r", Chosen: "c"}, {Router: "r", Chosen: "c", Dependency: "d"}} {
		m := full()
		m.Skip = sk
		checkRecordCodec(t, m)
		checkRecordCodec(t, &Materialization{State: StateSkipped, Skip: sk})
	}
	// Every subset of the optional fields.
	for mask := 0; mask < 1<<11; mask++ {
		f, m := full(), &Materialization{Pipeline: "p", Asset: "a", Partition: "x", State: StateRunning, RunID: "r"}
		set := func(bit int, apply func()) {
			if mask&(1<<bit) != 0 {
				apply()
			}
		}
		set(0, func() { m.QueuedBy = f.QueuedBy })
		set(1, func() { m.Worker = f.Worker })
		set(2, func() { m.Attempt = f.Attempt })
		set(3, func() { m.LeaseUntil = f.LeaseUntil })
		set(4, func() { m.StartedAt = f.StartedAt })
		set(5, func() { m.CompletedAt = f.CompletedAt })
		set(6, func() { m.DurationMS = f.DurationMS })
		set(7, func() { m.Error = f.Error })
		set(8, func() { m.Scatter = f.Scatter })
		set(9, func() { m.Value = f.Value })
		set(10, func() { m.Skip = f.Skip })
		checkRecordCodec(t, m)
	}
	// Every subset of the value's optional fields.
	for mask := 0; mask < 1<<7; mask++ {
		f, v := full().Value, &Value{RunID: "r", Storage: "s"}
		set := func(bit int, apply func()) {
			if mask&(1<<bit) != 0 {
				apply()
			}
		}
		set(0, func() { v.ObjectKey = f.ObjectKey })
		set(1, func() { v.Encoding = f.Encoding })
		set(2, func() { v.Size = f.Size })
		set(3, func() { v.SHA256 = f.SHA256 })
		set(4, func() { v.Inline = f.Inline })
		set(5, func() { v.DurationMS = f.DurationMS })
		set(6, func() { v.Upstream = f.Upstream })
		checkRecordCodec(t, &Materialization{State: StateFailed, Value: v})
	}
}

func FuzzMarshalRecord(f *testing.F) {
	f.Add("p", "a<b>", "x\u2028", "completed", "r&1", []byte("inline"), int64(42), 3, int64(1764112729), int64(123456789), 19800, uint16(0xffff), "msg", "k")
	f.Add("", "", "", "", "", []byte(nil), int64(0), 0, int64(0), int64(0), 0, uint16(0), "", "")
	f.Add("\xff", "\x00", "\t\n", "日本", "🎉", []byte{0xff}, int64(-1), -1, int64(253402300800), int64(0), 86400, uint16(0x3ff), "\xfe", "\u2029")
	f.Add("p", "a", "x", "s", "r", []byte{1, 2, 3}, int64(1), 1, int64(-62135596801), int64(999999999), -90000, uint16(0x300), "m", "d")
	f.Fuzz(func(t *testing.T, s1, s2, s3, s4, s5 string, inline []byte, size int64, attempt int, sec, nsec int64, offset int, flags uint16, msg, detail string) {
		tm := time.Unix(sec, nsec).In(time.FixedZone(s1, offset))
		tm2 := time.Unix(-sec, nsec/7).UTC()
		m := &Materialization{
			Pipeline: s1, Asset: s2, Partition: s3, State: State(s4), RunID: s5,
			Attempt: attempt, DurationMS: size / 3,
		}
		if flags&1 != 0 {
			m.Value = &Value{RunID: s1, Storage: s2, ObjectKey: s3 + "/" + s5, Encoding: s4, Size: size, Inline: inline, CompletedAt: tm}
		}
		if flags&2 != 0 {
			m.QueuedBy, m.Worker = s5, s1
			if m.Value != nil {
				m.Value.SHA256 = s5
			}
		}
		if flags&512 != 0 {
			m.LeaseUntil = &tm2
		}
		if flags&4 != 0 {
			m.StartedAt = &tm
		}
		if flags&8 != 0 {
			m.CompletedAt = &tm2
		}
		if flags&16 != 0 {
			m.Error = &Error{Type: ErrorType(s4), Message: msg}
			if flags&32 != 0 {
				m.Error.Details = map[string]any{detail: msg, "n": float64(size), "s": s1}
			}
		}
		if flags&64 != 0 && m.Value != nil {
			m.Value.Upstream = []Lineage{{Asset: s2, Partition: s3, RunID: s5}}
			if flags&128 != 0 {
				m.Value.Upstream = append(m.Value.Upstream, Lineage{Asset: msg, Partition: detail, RunID: s1})
			}
		}
		if flags&256 != 0 {
			m.Scatter = &ScatterStatus{Total: attempt, Completed: int(size), Failed: int(nsec), Pending: offset}
		}
		checkRecordCodec(t, m)
	})
}

func BenchmarkMarshalRecord(b *testing.B) {
	started := time.Date(2026, 11, 25, 23, 18, 49, 123456789, time.UTC)
	completed := started.Add(1234 * time.Millisecond)
	records := map[string]*Materialization{
		"claim": {
			Pipeline: "analytics", Asset: "daily_revenue", Partition: "2026-11-25", State: StateRunning,
			RunID: "01JDX5Q8Z3M4N5P6R7S8T9V0WX", Worker: "worker-17", Attempt: 1, LeaseUntil: &completed, StartedAt: &started,
		},
		"final": {
			Pipeline: "analytics", Asset: "daily_revenue", Partition: "2026-11-25", State: StateCompleted,
			RunID: "01JDX5Q8Z3M4N5P6R7S8T9V0WX", Worker: "worker-17", Attempt: 1,
			StartedAt: &started, CompletedAt: &completed, DurationMS: 1234,
			Value: &Value{RunID: "01JDX5Q8Z3M4N5P6R7S8T9V0WX", Storage: InlineStorage, Encoding: EncodingJSON, Size: 256,
				SHA256: strings.Repeat("9f", 32), Inline: bytes.Repeat([]byte(`{"v":1}`), 36), CompletedAt: completed, DurationMS: 1234,
				Upstream: []Lineage{{Asset: "orders", Partition: "2026-11-25", RunID: "01JDX5Q8Z3M4N5P6R7S8T9V0AA"}}},
		},
	}
	for name, m := range records {
		b.Run(name+"/json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := marshalRecord(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRecordSizeHint checks that the common records are written in one
// allocation.
func TestRecordSizeHint(t *testing.T) {
	started := time.Date(2026, 11, 25, 23, 18, 49, 123456789, time.FixedZone("x", 3600))
	m := &Materialization{
		Pipeline: "analytics", Asset: "daily_revenue", Partition: "2026-11-25", State: StateCompleted,
		RunID: "01JDX5Q8Z3M4N5P6R7S8T9V0WX", QueuedBy: "coord-a", Worker: "worker-17", Attempt: 100,
		LeaseUntil: &started, StartedAt: &started, CompletedAt: &started, DurationMS: 1 << 40,
		Error:   &Error{Type: TypeExecutionFailed, Message: "boom"},
		Scatter: &ScatterStatus{Total: 1 << 30, Completed: 1 << 30, Failed: 1 << 30, Pending: 1 << 30},
		Value: &Value{RunID: "01JDX5Q8Z3M4N5P6R7S8T9V0WX", Storage: InlineStorage, ObjectKey: "k", Encoding: EncodingJSON, Size: 1 << 40,
			SHA256: strings.Repeat("9f", 32), Inline: make([]byte, InlineLimit), CompletedAt: started, DurationMS: 1 << 40,
			Upstream: []Lineage{{Asset: "orders", Partition: "2026-11-25", RunID: "01JDX5Q8Z3M4N5P6R7S8T9V0AA"}}},
	}
	b, ok := appendRecord(make([]byte, 0, recordSizeHint(m)), m)
	if !ok || len(b) > recordSizeHint(m) {
		t.Fatalf("record of %d bytes, hint %d", len(b), recordSizeHint(m))
	}
}
