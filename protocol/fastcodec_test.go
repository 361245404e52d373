package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The fast codecs (fastcodec.go) must write what encoding/json writes and
// decode what the strict encoding/json path decodes, to the same values and
// the same errors. These tests hold them to that against the slow path,
// which stays: slowEncode*/slowDecode* are the codecs as they were.

func slowEncodeTask(t Task) ([]byte, *Error) { return encodeValid(t, MaxMessageBytes) }
func slowDecodeTask(data []byte) (Task, *Error) {
	return decodeValid[Task](data, MaxMessageBytes)
}
func slowEncodeCompletion(c Completion) ([]byte, *Error) { return encodeValid(c, MaxMessageBytes) }
func slowDecodeCompletion(data []byte) (Completion, *Error) {
	return decodeValid[Completion](data, MaxMessageBytes)
}
func slowDecodeTaskBatch(data []byte) (TaskBatch, *Error) {
	return decodeValid[TaskBatch](data, MaxMessageBytes)
}
func slowDecodeCompletionBatch(data []byte) (CompletionBatch, *Error) {
	return decodeValid[CompletionBatch](data, MaxMessageBytes)
}

// fastParses reports whether parse reads data whole (the fast path takes
// it), and the value it read (before validation).
func fastParses[T any](data []byte, parse func(*parser, *T) bool) (T, bool) {
	var v T
	if !canonical(data, MaxMessageBytes) {
		return v, false
	}
	p := parser{data: data}
	ok := parse(&p, &v) && p.pos == len(data)
	return v, ok
}

var (
	fcT0    = time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC)
	fcNanos = time.Date(2025, 1, 15, 10, 30, 1, 123456789, time.UTC)
	fcZone  = time.Date(2024, 2, 29, 23, 59, 59, 100, time.FixedZone("IST", 5*3600+30*60))
	fcWest  = time.Date(9999, 12, 31, 1, 0, 0, 999000000, time.FixedZone("", -(23*3600+59*60)))
	fcEarly = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)
	fcSHA   = strings.Repeat("0f", 32)
)

// odd strings for the partition and messages: every escape encoding/json
// writes, multi-byte UTF-8, U+2028/9, and HTML that must not be escaped.
var fcOdd = []string{
	"2025-01-15", "default", "ünïcødé ✓ 日本語 🎉", "<a href=\"x\">&amp;</a>", `back\slash "quotes"`,
	"\x00\x01\x1f\x7f\b\f\n\r\t", "line\u2028para\u2029", "\ufffd", "/\\/", strings.Repeat("p", MaxPartitionBytes),
}

func fcTasks() []Task {
	base := Task{
		V: Version, ID: TaskID("r1", "sum", "2025-01-15", 1), RunID: "r1", Pipeline: "sales", Asset: "sum",
		Partition: "2025-01-15", Attempt: 1, EnqueuedAt: fcT0,
	}
	deadline := fcZone
	var out []Task
	out = append(out, base)
	full := base
	full.Priority = 3
	full.Force = true
	full.Storage = "s3"
	full.TimeoutMS = 60000
	full.Deadline = &deadline
	full.Attempt = 12
	full.EnqueuedAt = fcNanos
	full.RecordRev = 1<<64 - 1
	full.Deps = []DepRef{
		{Asset: "numbers", Partition: "2025-01-15", ResultRef: ResultRef{ObjectKey: "sales/numbers/MjAyNS0wMS0xNQ/r1", Storage: "s3", Size: 42, SHA256: fcSHA, Encoding: EncodingJSON}},
		{Asset: "small", Partition: "ünï\n", ResultRef: ResultRef{Storage: InlineStorage, Size: 5, SHA256: fcSHA, Encoding: EncodingRaw, Inline: []byte{0, 1, 0xfe, 0xff, '"'}}},
		{Asset: "empty", Partition: "x", ResultRef: ResultRef{Storage: InlineStorage, SHA256: fcSHA, Encoding: EncodingJSON}},
	}
	out = append(out, full)
	for i, s := range fcOdd {
		t := base
		t.Partition = s
		t.Priority = i % 4
		t.RecordRev = uint64(i)
		t.EnqueuedAt = []time.Time{fcT0, fcNanos, fcZone, fcWest, fcEarly}[i%5]
		out = append(out, t)
	}
	for _, n := range []int{1, 2, 3, 4, 57, 58, 59, 60, InlineResultLimit} {
		t := full
		inline := make([]byte, n)
		for i := range inline {
			inline[i] = byte(i * 7)
		}
		t.Deps = []DepRef{{Asset: "in", Partition: "p", ResultRef: ResultRef{Storage: InlineStorage, Size: int64(n), SHA256: fcSHA, Encoding: EncodingRaw, Inline: inline}}}
		out = append(out, t)
	}
	// A join's task, with its optional branches' outcomes: encoding/json
	// writes it, and the fast parser hands it to the slow path.
	join := full
	join.Absent = []AbsentDep{{Asset: "eu", Skipped: true}, {Asset: "us", Error: &Error{Code: CodeTimeout, Message: "late"}}}
	out = append(out, join)
	return out
}

func fcCompletions() []Completion {
	base := Completion{
		V: Version, TaskID: TaskID("r1", "sum", "2025-01-15", 1), RunID: "r1", Pipeline: "sales", Asset: "sum",
		Partition: "2025-01-15", OK: true,
		ResultRef: ResultRef{ObjectKey: "sales/sum/MjAyNS0wMS0xNQ/r1", Storage: "s3", Size: 42, SHA256: fcSHA, Encoding: EncodingJSON},
		Worker:    "w1", Attempt: 1, StartedAt: fcT0, FinishedAt: fcNanos, DurationMS: 1123,
	}
	var out []Completion
	out = append(out, base)
	inline := base
	inline.ResultRef = ResultRef{Storage: InlineStorage, Size: 3, SHA256: fcSHA, Encoding: EncodingRaw, Inline: []byte("a\"b")}
	out = append(out, inline)
	zero := base
	zero.ResultRef = ResultRef{ObjectKey: "k", Storage: "file", SHA256: fcSHA, Encoding: EncodingRaw}
	zero.DurationMS = 0
	out = append(out, zero)
	failed := base
	failed.OK = false
	failed.ResultRef = ResultRef{}
	failed.Error = &Error{Code: CodeExecutionFailed, Message: "boom: <b>&</b> \"x\"\n\u2028"}
	out = append(out, failed)
	withDetails := failed
	withDetails.Error = &Error{Code: CodeTimeout, Message: "", Details: map[string]any{
		"attempts": 3.0, "big": 1e21, "small": 1e-7, "neg": -0.5, "s": "ü\u2029<>", "b": true, "nil": nil,
		"list": []any{1.0, "two", map[string]any{"z": 1.0, "a": []any{}}}, "obj": map[string]any{}, "int": 7, "i64": int64(-9),
	}}
	out = append(out, withDetails)
	for i, s := range fcOdd {
		c := failed
		c.Partition = s
		c.Error = &Error{Code: "x_1", Message: s}
		c.StartedAt = []time.Time{fcT0, fcNanos, fcZone, fcEarly, fcEarly}[i%5]
		c.FinishedAt = []time.Time{fcNanos, fcNanos, fcWest, fcEarly, fcZone}[i%5]
		c.Attempt = i + 1
		c.DurationMS = int64(i) * 1e12
		out = append(out, c)
	}
	return out
}

// jsonBytes is v as encoding/json encodes it (encodeJSON, without the
// limit), whether or not v is valid.
func jsonBytes(t *testing.T, v any) []byte {
	t.Helper()
	data, err := encodeJSON(v, 4*MaxMessageBytes)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestFastTaskCodec(t *testing.T) {
	for i, task := range fcTasks() {
		want, werr := slowEncodeTask(task)
		got, gerr := EncodeTask(task)
		if werr != nil || gerr != nil {
			t.Fatalf("task %d: encode errors %v, %v", i, werr, gerr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("task %d: fast encoding differs\n fast %s\n json %s", i, got, want)
		}
		parsed, ok := fastParses(got, parseTask)
		if !ok {
			t.Fatalf("task %d: the fast path does not take %s", i, got)
		}
		slow, serr := slowDecodeTask(got)
		fast, ferr := DecodeTask(got)
		if serr != nil || ferr != nil {
			t.Fatalf("task %d: decode errors %v, %v", i, serr, ferr)
		}
		if !reflect.DeepEqual(fast, slow) || !reflect.DeepEqual(parsed, slow) {
			t.Fatalf("task %d: fast decoding differs\n fast %#v\n slow %#v", i, fast, slow)
		}
		checkTaskSame(t, jsonIndent(t, got))
	}
}

func TestFastCompletionCodec(t *testing.T) {
	for i, c := range fcCompletions() {
		want, werr := slowEncodeCompletion(c)
		got, gerr := EncodeCompletion(c)
		if werr != nil || gerr != nil {
			t.Fatalf("completion %d: encode errors %v, %v", i, werr, gerr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("completion %d: fast encoding differs\n fast %s\n json %s", i, got, want)
		}
		parsed, ok := fastParses(got, parseCompletion)
		if !ok {
			t.Fatalf("completion %d: the fast path does not take %s", i, got)
		}
		slow, serr := slowDecodeCompletion(got)
		fast, ferr := DecodeCompletion(got)
		if serr != nil || ferr != nil {
			t.Fatalf("completion %d: decode errors %v, %v", i, serr, ferr)
		}
		if !reflect.DeepEqual(fast, slow) || !reflect.DeepEqual(parsed, slow) {
			t.Fatalf("completion %d: fast decoding differs\n fast %#v\n slow %#v", i, fast, slow)
		}
		checkCompletionSame(t, jsonIndent(t, got))
	}
}

// TestFastAppendAnyStrings holds the writers to encoding/json on strings
// validation would refuse (invalid UTF-8 in every field), and the parsers
// to decodeJSON on what they write.
func TestFastAppendAnyStrings(t *testing.T) {
	for _, s := range append(fcOdd, "\xff", "a\xc3", "\xed\xa0\x80", "", "\U0010FFFF") {
		task := fcTasks()[1]
		task.ID, task.RunID, task.Pipeline, task.Asset, task.Partition, task.Storage = s, s, s, s, s, s+"x"
		task.Deps[0].ObjectKey, task.Deps[0].Encoding = s+"k", Encoding(s+"e")
		got, ok := appendTask(nil, &task)
		if want := jsonBytes(t, task); !ok || !bytes.Equal(got, want) {
			t.Fatalf("%q: task\n fast %s\n json %s", s, got, want)
		}
		var slow Task
		if err := decodeJSON(got, MaxMessageBytes, &slow); err != nil {
			t.Fatal(err)
		}
		if fast, ok := fastParses(got, parseTask); !ok || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: task parse %v\n fast %#v\n slow %#v", s, ok, fast, slow)
		}

		c := fcCompletions()[4]
		c.TaskID, c.RunID, c.Pipeline, c.Asset, c.Partition, c.Worker = s, s, s, s, s, s
		c.Error.Code, c.Error.Message = s, s
		c.Error.Details[s] = s
		c.ObjectKey, c.SHA256 = s+"k", s+"h"
		got, ok = appendCompletion(nil, &c)
		if want := jsonBytes(t, c); !ok || !bytes.Equal(got, want) {
			t.Fatalf("%q: completion\n fast %s\n json %s", s, got, want)
		}
		var slowC Completion
		if err := decodeJSON(got, MaxMessageBytes, &slowC); err != nil {
			t.Fatal(err)
		}
		if fast, ok := fastParses(got, parseCompletion); !ok || !reflect.DeepEqual(fast, slowC) {
			t.Fatalf("%q: completion parse %v\n fast %#v\n slow %#v", s, ok, fast, slowC)
		}
	}
}

func TestFastBatches(t *testing.T) {
	var tasks [][]byte
	for _, task := range fcTasks()[:8] {
		task.Priority, task.Partition = 2, task.Partition+"/"+string(rune('a'+len(tasks)))
		task.ID = TaskID(task.RunID, task.Asset, task.Partition, task.Attempt)
		data, err := EncodeTask(task)
		if err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, data)
	}
	for n := 1; n <= len(tasks); n++ {
		body := JoinTaskBatch(tasks[:n])
		if _, ok := fastParses(body, parseTaskBatch); !ok {
			t.Fatalf("the fast path does not take %s", body)
		}
		checkTaskBatchSame(t, body)
		checkTaskBatchSame(t, jsonIndent(t, body))
	}
	var comps [][]byte
	for _, c := range fcCompletions() {
		data, err := EncodeCompletion(c)
		if err != nil {
			t.Fatal(err)
		}
		comps = append(comps, data)
	}
	for n := 1; n <= len(comps); n++ {
		body := JoinCompletionBatch(comps[:n])
		if _, ok := fastParses(body, parseCompletionBatch); !ok {
			t.Fatalf("the fast path does not take %s", body)
		}
		checkCompletionBatchSame(t, body)
		checkCompletionBatchSame(t, jsonIndent(t, body))
	}
	// Refused batches: the same errors both ways.
	for _, body := range [][]byte{
		JoinTaskBatch(nil), JoinTaskBatch([][]byte{tasks[0], tasks[0]}), JoinTaskBatch([][]byte{tasks[0], []byte(`{}`)}),
		[]byte(`{"v":2,"tasks":[` + string(tasks[0]) + `]}`), JoinCompletionBatch(nil),
	} {
		checkTaskBatchSame(t, body)
		checkCompletionBatchSame(t, body)
	}
}

// TestFastDecodeOffPath feeds non-canonical and invalid variants of
// canonical messages: the fast path must give them to the slow one, or
// agree with it.
func TestFastDecodeOffPath(t *testing.T) {
	task, _ := EncodeTask(fcTasks()[1])
	comp, _ := EncodeCompletion(fcCompletions()[4])
	variants := func(data []byte) [][]byte {
		s := string(data)
		out := [][]byte{
			[]byte(s + " "), []byte(" " + s), []byte(s + "{}"), []byte(s[:len(s)-1]), []byte(strings.Replace(s, `"v":1`, `"v":2`, 1)),
			[]byte(strings.Replace(s, `"v":1`, `"V":1`, 1)), []byte(strings.Replace(s, `"v":1`, `"v":1.0`, 1)),
			[]byte(strings.Replace(s, `"v":1`, `"v":01`, 1)), []byte(strings.Replace(s, `"v":1`, `"v":-0`, 1)),
			[]byte(strings.Replace(s, `"v":1`, `"v":99999999999999999999`, 1)), []byte(strings.Replace(s, `"v":1,`, `"v":1,"x":0,`, 1)),
			[]byte(strings.Replace(s, `"v":1,`, `"v":1,"v":1,`, 1)), []byte(strings.Replace(s, `"attempt":`, `"attempt":0,"attempt":`, 1)),
			[]byte(strings.Replace(s, `"r1"`, `"\u0072\u00311"`, 1)), []byte(strings.Replace(s, `"r1"`, `"\ud800"`, 1)),
			[]byte(strings.Replace(s, `"r1"`, `"\uD83D\uDE00"`, 1)), []byte(strings.Replace(s, `"r1"`, "\"r\x01\"", 1)),
			[]byte(strings.Replace(s, `"r1"`, `"r\x"`, 1)), []byte(strings.Replace(s, `"r1"`, `null`, 1)),
			[]byte(strings.Replace(s, `Z"`, `z"`, 1)), []byte(strings.Replace(s, `Z"`, `+00:00"`, 1)),
			[]byte(strings.Replace(s, `Z"`, `\u005a"`, 1)), []byte(strings.Replace(s, `"ok":false`, `"ok":true`, 1)),
			[]byte(strings.Replace(s, `,"storage":"s3"`, `,"storage":""`, 1)), []byte(strings.Replace(s, `,"priority":3`, `,"priority":0`, 1)),
			[]byte(strings.Replace(s, `,"force":true`, `,"force":false`, 1)), []byte(strings.Replace(s, `"inline":"`, `"inline":"\n`, 1)),
			[]byte(strings.Replace(s, `"inline":"`, `"inline":"A`, 1)), []byte(strings.Replace(s, `"details":{`, `"details":{ "a" : 1 ,`, 1)),
			[]byte(strings.Replace(s, `"details":{`, `"details":{"a":1e999,`, 1)), []byte(strings.Replace(s, `"details":{`, `"details":null,"x":{`, 1)),
			[]byte(strings.Replace(s, `"deadline":"`, `"deadline":null,"x":"`, 1)), []byte(strings.Replace(s, `"record_rev":`, `"record_rev":-`, 1)),
			[]byte(strings.Replace(s, `"timeout_ms":60000`, `"timeout_ms":-60000`, 1)), []byte(strings.Replace(s, `"deps":[`, `"deps":[],"x":[`, 1)),
			[]byte(strings.Replace(s, `"size":42`, `"size":9223372036854775808`, 1)), []byte(strings.Replace(s, `"duration_ms":0`, `"duration_ms":-1`, 1)),
			append([]byte(s[:20]), 0xff), jsonIndent(t, data),
		}
		for i := 1; i < len(s); i += 7 {
			out = append(out, []byte(s[:i]))
		}
		return out
	}
	for _, v := range variants(task) {
		checkTaskSame(t, v)
	}
	for _, v := range variants(comp) {
		checkCompletionSame(t, v)
	}
}

func jsonIndent(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", " "); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func checkSame[T any](t *testing.T, data []byte, what string, fast, slow func([]byte) (T, *Error)) {
	t.Helper()
	fv, ferr := fast(data)
	sv, serr := slow(data)
	if !reflect.DeepEqual(ferr, serr) {
		t.Fatalf("%s %q: errors differ\n fast %v\n slow %v", what, data, ferr, serr)
	}
	if !reflect.DeepEqual(fv, sv) {
		t.Fatalf("%s %q: values differ\n fast %#v\n slow %#v", what, data, fv, sv)
	}
}

func checkTaskSame(t *testing.T, data []byte) {
	t.Helper()
	checkSame(t, data, "task", DecodeTask, slowDecodeTask)
}

func checkCompletionSame(t *testing.T, data []byte) {
	t.Helper()
	checkSame(t, data, "completion", DecodeCompletion, slowDecodeCompletion)
}

func checkTaskBatchSame(t *testing.T, data []byte) {
	t.Helper()
	checkSame(t, data, "task batch", DecodeTaskBatch, slowDecodeTaskBatch)
}

func checkCompletionBatchSame(t *testing.T, data []byte) {
	t.Helper()
	checkSame(t, data, "completion batch", DecodeCompletionBatch, slowDecodeCompletionBatch)
}

// benchTask is a task as the fleet benchmark sends them: one dependency,
// an id from TaskID and a record revision.
func benchTask() Task {
	return Task{
		V: Version, ID: TaskID("0194a6d2c1b37f0e9b1c2d3e4f5a6b7c", "sum", "2025-01-15", 1), RunID: "0194a6d2c1b37f0e9b1c2d3e4f5a6b7c",
		Pipeline: "sales", Asset: "sum", Partition: "2025-01-15", Priority: 1, TimeoutMS: 60000,
		Deps: []DepRef{{Asset: "numbers", Partition: "2025-01-15", ResultRef: ResultRef{
			ObjectKey: "sales/numbers/MjAyNS0wMS0xNQ/0194a6d2", Storage: "file", Size: 4096, SHA256: fcSHA, Encoding: EncodingJSON}}},
		Attempt: 1, EnqueuedAt: fcNanos, RecordRev: 123456,
	}
}

func benchCompletion() Completion {
	return Completion{
		V: Version, TaskID: TaskID("0194a6d2c1b37f0e9b1c2d3e4f5a6b7c", "sum", "2025-01-15", 1), RunID: "0194a6d2c1b37f0e9b1c2d3e4f5a6b7c",
		Pipeline: "sales", Asset: "sum", Partition: "2025-01-15", OK: true,
		ResultRef: ResultRef{Storage: InlineStorage, Size: 12, SHA256: fcSHA, Encoding: EncodingJSON, Inline: []byte(`{"sum":4242}`)},
		Worker:    "worker-1", Attempt: 1, StartedAt: fcT0, FinishedAt: fcNanos, DurationMS: 1123,
	}
}

// benchCodec runs encode and decode of v, through encoding/json (slow,
// the codecs as they were) and the fast codecs, and the decoding of a
// batch of 64.
func benchCodec[T any](b *testing.B, v T, slowEnc, fastEnc func(T) ([]byte, *Error), slowDec, fastDec func([]byte) (T, *Error),
	join func([][]byte) []byte, slowBatch, fastBatch func([]byte) *Error) {
	data, err := fastEnc(v)
	if err != nil {
		b.Fatal(err)
	}
	items := make([][]byte, 64)
	for i := range items {
		items[i] = data
	}
	batch := join(items)
	run := func(name string, f func() *Error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	run("encode/json", func() *Error { _, err := slowEnc(v); return err })
	run("encode/fast", func() *Error { _, err := fastEnc(v); return err })
	run("decode/json", func() *Error { _, err := slowDec(data); return err })
	run("decode/fast", func() *Error { _, err := fastDec(data); return err })
	run("decode_batch64/json", func() *Error { return slowBatch(batch) })
	run("decode_batch64/fast", func() *Error { return fastBatch(batch) })
}

func BenchmarkTaskCodec(b *testing.B) {
	// The batch benchmark needs distinct ids: validation refuses repeats.
	benchCodec(b, benchTask(), slowEncodeTask, EncodeTask, slowDecodeTask, DecodeTask,
		func(items [][]byte) []byte {
			out := make([][]byte, len(items))
			for i := range items {
				t := benchTask()
				t.Partition = "2025-01-" + string(rune('A'+i%26)) + string(rune('a'+i/26))
				t.ID = TaskID(t.RunID, t.Asset, t.Partition, 1)
				out[i], _ = EncodeTask(t)
			}
			return JoinTaskBatch(out)
		},
		func(data []byte) *Error { _, err := slowDecodeTaskBatch(data); return err },
		func(data []byte) *Error { _, err := DecodeTaskBatch(data); return err })
}

func BenchmarkCompletionCodec(b *testing.B) {
	benchCodec(b, benchCompletion(), slowEncodeCompletion, EncodeCompletion, slowDecodeCompletion, DecodeCompletion,
		JoinCompletionBatch,
		func(data []byte) *Error { _, err := slowDecodeCompletionBatch(data); return err },
		func(data []byte) *Error { _, err := DecodeCompletionBatch(data); return err })
}

// TestValidateDeps pins the errors of Task.Validate's dependency checks,
// which build field names only on failure and find repeats without a map
// for a few dependencies.
func TestValidateDeps(t *testing.T) {
	for _, n := range []int{3, 12} {
		task := fcTasks()[1]
		task.Deps = nil
		for i := range n {
			task.Deps = append(task.Deps, DepRef{Asset: "a" + string(rune('a'+i)), Partition: "p", ResultRef: ResultRef{ObjectKey: "k", Storage: "s3", SHA256: fcSHA, Encoding: EncodingJSON}})
		}
		if err := task.Validate(); err != nil {
			t.Fatal(err)
		}
		dup := task
		dup.Deps = append([]DepRef(nil), task.Deps...)
		dup.Deps[n-1].Asset = dup.Deps[1].Asset
		dup.Deps = append(dup.Deps, dup.Deps[1]) // a second repeat, reported after the first
		err := dup.Validate()
		want := fmt.Sprintf("deps[%d] repeats deps[1] (asset %q, same partition)", n-1, dup.Deps[1].Asset)
		if err == nil || err.Message != want || err.Details["field"] != fmt.Sprintf("deps[%d]", n-1) {
			t.Fatalf("%d deps: %v (%v), want %s", n, err, err.Details, want)
		}
		bad := task
		bad.Deps = append([]DepRef(nil), task.Deps...)
		bad.Deps[n-1].Storage = "no good"
		err = bad.Validate()
		if err == nil || err.Details["field"] != fmt.Sprintf("deps[%d].storage", n-1) || !strings.HasPrefix(err.Message, fmt.Sprintf("deps[%d].storage ", n-1)) {
			t.Fatalf("%d deps: %v (%v)", n, err, err.Details)
		}
	}
}

// TestFastDeepDetails: encoding/json refuses nesting past 10000 levels
// counted from the message; the fast path decodes details on their own,
// so it must leave deep ones to the slow path.
func TestFastDeepDetails(t *testing.T) {
	c := fcCompletions()[3]
	data, err := EncodeCompletion(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, depth := range []int{1, 999, 1000, 1001, 9997, 9998, 9999, 10000} {
		deep := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		body := bytes.Replace(data, []byte(`"message":"`), []byte(`"message":"`+strings.Repeat(`\"[`, 3)), 1)
		body = bytes.Replace(body, []byte(`"},"worker"`), []byte(`","details":{"d":`+deep+`}},"worker"`), 1)
		if !bytes.Contains(body, []byte(deep)) {
			t.Fatalf("depth %d: no details in %.200s", depth, body)
		}
		checkCompletionSame(t, body)
	}
}
