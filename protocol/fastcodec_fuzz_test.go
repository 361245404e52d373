package protocol

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// Fuzz tests of the fast codecs against the slow path. For any input,
// DecodeTask and friends (fast path first) must return what the strict
// encoding/json path returns, value and error alike. For messages built
// from the fuzzer's values, the fast encoder must write what encoding/json
// writes (or fail alike), the fast parser must take what it writes, and
// decoding must give the slow path's value and encode back to the same
// bytes.

// fuzzTime builds a time from the fuzzer's numbers: years around 1..9999
// and zone offsets of whole minutes up to two days either way (some
// invalid on purpose).
func fuzzTime(sec, nsec int64, off int32) time.Time {
	const span = 10000 * 366 * 24 * 3600
	sec %= span
	t := time.Unix(sec-62135596800+span/2, nsec%2e9)
	// Whole minutes: RFC 3339 drops an offset's seconds, so a time in a
	// zone of 30m15s comes back 15s off (both paths; validation does not
	// refuse such zones).
	switch o := int(off) % (2 * 24 * 60) * 60; {
	case off == 0:
		return t.UTC()
	case off == 1:
		return t.Local()
	default:
		return t.In(time.FixedZone("Z"+string(rune('A'+off&15)), o))
	}
}

func seedCodec(f *testing.F, valid ...[]byte) {
	for _, v := range valid {
		f.Add(v, "2025-01-15", "s3", int64(60000), uint64(7), uint16(0xffff), int64(1736937000), int64(123456789), int32(19800))
		f.Add(v, "", "", int64(0), uint64(0), uint16(0), int64(0), int64(0), int32(0))
	}
	for _, s := range []string{``, `{}`, `null`, `{"v":1}`, `{"v":2}`, "\xff", `{"v":1,"tasks":[{}]}`, `{"v":1,"completions":[]}`} {
		f.Add([]byte(s), "\u2028\"\\\x00<", "ü", int64(-1), uint64(1<<63), uint16(0x5555), int64(-1), int64(-1), int32(-86400))
	}
}

func FuzzTaskCodec(f *testing.F) {
	var seeds [][]byte
	tasks := fcTasks()
	for _, task := range append(tasks[:4:4], tasks[len(tasks)-1]) {
		data, _ := EncodeTask(task)
		seeds = append(seeds, data, JoinTaskBatch([][]byte{data}))
	}
	seedCodec(f, seeds...)
	f.Fuzz(func(t *testing.T, data []byte, s1, s2 string, n1 int64, n2 uint64, flags uint16, sec, nsec int64, off int32) {
		checkTaskSame(t, data)
		checkTaskBatchSame(t, data)

		task := Task{
			V: Version, ID: "r1.a.0.1", RunID: "r1", Pipeline: "p", Asset: "a", Partition: s1,
			Priority: int(n1 & 3), Force: flags&2 != 0, Attempt: 1 + int(n2%3), EnqueuedAt: fuzzTime(sec, nsec, off),
		}
		if flags&1 != 0 {
			task.V, task.Priority, task.Attempt = int(n1%3), int(n1), int(n2)
		}
		if flags&4 != 0 {
			task.Storage = s2
		}
		if flags&8 != 0 {
			task.TimeoutMS = n1
		}
		if flags&16 != 0 {
			d := fuzzTime(nsec, sec, off>>3)
			task.Deadline = &d
		}
		if flags&32 != 0 {
			task.RecordRev = n2
		}
		if flags&64 != 0 {
			ref := ResultRef{Storage: InlineStorage, Size: int64(len(s2)), SHA256: fcSHA, Encoding: EncodingRaw, Inline: []byte(s2)}
			if flags&128 != 0 {
				ref = ResultRef{ObjectKey: "k/" + s2, Storage: "s3", Size: n1, SHA256: s2, Encoding: Encoding(s1)}
			}
			if flags&512 != 0 {
				ref.ValueRunID = s1
			}
			task.Deps = append(task.Deps, DepRef{Asset: "b", Partition: s2, ResultRef: ref})
			if flags&256 != 0 {
				task.Deps = append(task.Deps, DepRef{Asset: "c", Partition: s1, ResultRef: ref})
			}
		}
		if flags&1024 != 0 {
			task.Absent = append(task.Absent, AbsentDep{Asset: "d", Skipped: flags&2048 != 0})
			if flags&4096 != 0 {
				task.Absent[0].Error = &Error{Code: s1, Message: s2}
				if flags&8192 != 0 {
					task.Absent[0].Error.Details = map[string]any{s1: n1, "s": s2}
				}
			}
		}
		fast, ferr := EncodeTask(task)
		slow, serr := slowEncodeTask(task)
		if !bytes.Equal(fast, slow) || !reflect.DeepEqual(ferr, serr) {
			t.Fatalf("encodings differ\n fast %s %v\n json %s %v", fast, ferr, slow, serr)
		}
		if ferr != nil {
			return
		}
		if _, ok := fastParses(fast, parseTask); !ok {
			t.Fatalf("the fast path does not take %s", fast)
		}
		checkTaskSame(t, fast)
		back, err := DecodeTask(fast)
		if err != nil {
			t.Fatalf("%s does not decode: %v", fast, err)
		}
		// A zone of offset 0 other than UTC ("+00:00") comes back in
		// Local or UTC ("Z"), both ways: after one round trip the bytes
		// are stable.
		again, err := EncodeTask(back)
		if err != nil {
			t.Fatalf("cannot encode %s again: %v", fast, err)
		}
		if third, err := DecodeTask(again); err != nil {
			t.Fatalf("round trip: %s, then %s does not decode: %v", fast, again, err)
		} else if fourth, _ := EncodeTask(third); !bytes.Equal(fourth, again) {
			t.Fatalf("round trip changed %s to %s", again, fourth)
		}
		body := JoinTaskBatch([][]byte{fast})
		if _, ok := fastParses(body, parseTaskBatch); !ok {
			t.Fatalf("the fast path does not take %s", body)
		}
		checkTaskBatchSame(t, body)
	})
}

func FuzzCompletionCodec(f *testing.F) {
	var seeds [][]byte
	for _, c := range fcCompletions()[:6] {
		data, _ := EncodeCompletion(c)
		seeds = append(seeds, data, JoinCompletionBatch([][]byte{data}))
	}
	seedCodec(f, seeds...)
	f.Fuzz(func(t *testing.T, data []byte, s1, s2 string, n1 int64, n2 uint64, flags uint16, sec, nsec int64, off int32) {
		checkCompletionSame(t, data)
		checkCompletionBatchSame(t, data)

		start := fuzzTime(sec, nsec, off)
		c := Completion{
			V: Version, TaskID: "r1.a.0.1", RunID: "r1", Pipeline: "p", Asset: "a", Partition: s1, OK: true,
			ResultRef: ResultRef{ObjectKey: "k", Storage: "s3", Size: n1 & 0xffff, SHA256: fcSHA, Encoding: EncodingJSON},
			Worker:    "w", Attempt: 1 + int(n2%3), StartedAt: start, FinishedAt: start.Add(time.Duration(n2 % 1e12)), DurationMS: n1 & 0xffffff,
		}
		if flags&1 != 0 {
			c.V, c.Attempt, c.DurationMS, c.FinishedAt = int(n1%3), int(n2), n1, fuzzTime(nsec, sec, off>>2)
		}
		if flags&2 != 0 {
			c.ResultRef = ResultRef{Storage: InlineStorage, Size: int64(len(s2)), SHA256: fcSHA, Encoding: EncodingRaw, Inline: []byte(s2)}
		}
		if flags&256 != 0 {
			c.ValueRunID = s2
		}
		if flags&4 != 0 {
			c.OK = flags&8 != 0
			c.ResultRef = ResultRef{}
			c.Error = &Error{Code: "execution_failed", Message: s2}
			if flags&16 != 0 {
				c.Error.Code = s1
			}
			if flags&32 != 0 {
				c.Error.Details = map[string]any{s1: s2, "n": float64(n1) / 7, "u": n2 % (1 << 53), "l": []any{true, nil, map[string]any{s2: sec % (1 << 53)}}}
			}
			if flags&64 != 0 {
				c.Error.Details = map[string]any{"t": start, "b": []byte(s1)}
			}
		}
		fast, ferr := EncodeCompletion(c)
		slow, serr := slowEncodeCompletion(c)
		if !bytes.Equal(fast, slow) || !reflect.DeepEqual(ferr, serr) {
			t.Fatalf("encodings differ\n fast %s %v\n json %s %v", fast, ferr, slow, serr)
		}
		if ferr != nil {
			return
		}
		if _, ok := fastParses(fast, parseCompletion); !ok {
			t.Fatalf("the fast path does not take %s", fast)
		}
		checkCompletionSame(t, fast)
		back, err := DecodeCompletion(fast)
		if err != nil {
			t.Fatalf("%s does not decode: %v", fast, err)
		}
		// A zone of offset 0 other than UTC ("+00:00") comes back in
		// Local or UTC ("Z"), both ways: after one round trip the bytes
		// are stable.
		again, err := EncodeCompletion(back)
		if err != nil {
			t.Fatalf("cannot encode %s again: %v", fast, err)
		}
		if third, err := DecodeCompletion(again); err != nil {
			t.Fatalf("round trip: %s, then %s does not decode: %v", fast, again, err)
		} else if fourth, _ := EncodeCompletion(third); !bytes.Equal(fourth, again) {
			t.Fatalf("round trip changed %s to %s", again, fourth)
		}
		body := JoinCompletionBatch([][]byte{fast})
		if _, ok := fastParses(body, parseCompletionBatch); !ok {
			t.Fatalf("the fast path does not take %s", body)
		}
		checkCompletionBatchSame(t, body)
	})
}
