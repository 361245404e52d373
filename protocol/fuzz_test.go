package protocol_test

import (
	"bytes"
	"testing"

	"github.com/flowstone-go/flowstone/protocol"
)

// fuzzDecode checks a decoder against any input: it never panics, refuses
// with a *protocol.Error and the zero value, and what it accepts re-encodes
// to a canonical form that decodes and re-encodes to the same bytes.
func fuzzDecode[T any](t *testing.T, data []byte, decode func([]byte) (T, *protocol.Error), encode func(T) ([]byte, *protocol.Error)) {
	v, err := decode(data)
	if err != nil {
		if err.Code == "" || err.Message == "" {
			t.Fatalf("refusal without code or message: %#v", err)
		}
		return
	}
	first, err := encode(v)
	if err != nil {
		t.Fatalf("accepted %q but cannot re-encode it: %v", data, err)
	}
	again, err := decode(first)
	if err != nil {
		t.Fatalf("re-encoded %q does not decode: %v", first, err)
	}
	second, err := encode(again)
	if err != nil {
		t.Fatalf("cannot encode %q a second time: %v", first, err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("round trip changed the message:\n first %s\nsecond %s", first, second)
	}
}

func seed(f *testing.F, valid ...[]byte) {
	for _, v := range valid {
		f.Add(v)
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"v":1}`, `{"v":2}`, `{"v":"1"}`, `{"v":1,"x":1}`,
		`{"v":1}{"v":1}`, "\xff", `{"v":1,"partition":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
}

func FuzzDecodeRunRequest(f *testing.F) {
	full, _ := protocol.EncodeRequest(fullRunRequest())
	minimal, _ := protocol.EncodeRequest(validRunRequest())
	seed(f, full, minimal,
		[]byte(`{"v":1,"pipeline":"p","asset":"a","async":true,"scheduled_at":"2025-01-01T00:00:00+14:00"}`),
		[]byte(`{"V":1,"PIPELINE":"p","asset":"a","partition":"\u2028<>&"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, data, protocol.DecodeRequest[protocol.RunRequest], func(r protocol.RunRequest) ([]byte, *protocol.Error) {
			return protocol.EncodeRequest(r)
		})
	})
}

func FuzzDecodeTask(f *testing.F) {
	full, _ := protocol.EncodeTask(fullTask())
	minimal, _ := protocol.EncodeTask(validTask())
	seed(f, full, minimal)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, data, protocol.DecodeTask, protocol.EncodeTask)
	})
}

func FuzzDecodeCompletion(f *testing.F) {
	ok, _ := protocol.EncodeCompletion(validCompletion())
	failed, _ := protocol.EncodeCompletion(failedCompletion())
	seed(f, ok, failed,
		[]byte(`{"v":1,"task_id":"r.a.1","run_id":"r","pipeline":"p","asset":"a","partition":"x","ok":false,"error":{"code":"x","message":"","details":{"n":1e308,"m":[null,{"a":-0}]}},"worker":"w","attempt":1,"started_at":"2025-01-01T00:00:00Z","finished_at":"2025-01-01T00:00:00Z","duration_ms":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, data, protocol.DecodeCompletion, protocol.EncodeCompletion)
	})
}

func FuzzDecodeEventBatch(f *testing.F) {
	full, _ := protocol.EncodeEventBatch(fullEventBatch())
	valid, _ := protocol.EncodeEventBatch(validEventBatch())
	seed(f, full, valid,
		[]byte(`{"v":1,"pipeline":"p","kind":"run.start","events":[]}`),
		[]byte(`{"v":1,"pipeline":"p","kind":"run.start","events":[{"v":1,"kind":"run.start","pipeline":"p","asset":"a","partition":"x","run_id":"r","time":"2025-01-01T00:00:00+14:00","metadata":{"n":1e308,"m":[null,{"a":-0}]}}]}`),
		[]byte(`{"v":1,"pipeline":"p","kind":"run.start","events":[{"v":1,"kind":"run.stop","pipeline":"p","asset":"a","partition":"x","run_id":"r","time":"2025-01-01T00:00:00Z"}]}`),
		[]byte(`{"v":1,"pipeline":"p","kind":"run.skipped","events":[{"v":1,"kind":"run.skipped","pipeline":"p","asset":"a","partition":"x","run_id":"r","time":"2025-01-01T00:00:00Z","metadata":{"router":"r","chosen":"b"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, data, protocol.DecodeEventBatch, protocol.EncodeEventBatch)
	})
}

// FuzzDecodeGetReply checks DecodeReply on get replies, whose staged field
// names an object a client then opens: what it accepts re-encodes to a
// canonical form, and a staged copy is never claimed for an inline value.
// (A reply carrying the peer's error is returned as such, not refused, so
// fuzzDecode's rule for refusals does not apply.)
func FuzzDecodeGetReply(f *testing.F) {
	inline := protocol.EncodeReply(protocol.GetReply{Asset: "sum", Partition: "default", RunID: "r1", ResultRef: validRef(), Value: []byte(`{"total":30}`)}, nil)
	staged := protocol.EncodeReply(protocol.GetReply{Asset: "sum", Partition: "default", RunID: "r1", ResultRef: validRef(), Staged: protocol.StagedName(sha)}, nil)
	seed(f, inline, staged,
		[]byte(`{"v":1,"ok":{"asset":"a","partition":"p","run_id":"r","object_key":"k","storage":"s3","size":300000,"sha256":"`+sha+`","encoding":"raw","staged":"sha256/../`+sha+`"}}`),
		[]byte(`{"v":1,"ok":{"asset":"a","partition":"p","run_id":"r","object_key":"k","storage":"s3","size":3,"sha256":"`+sha+`","encoding":"raw","value":"AAEC","staged":"x"}}`),
		[]byte(`{"v":1,"error":{"code":"storage_error","message":"the staged copy does not match its record"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := protocol.DecodeReply[protocol.GetReply](data)
		if err != nil {
			return
		}
		if r.Staged != "" && r.Inline() {
			t.Fatalf("accepted a staged copy of an inline value: %q", data)
		}
		first := protocol.EncodeReply(r, nil)
		again, err := protocol.DecodeReply[protocol.GetReply](first)
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", first, err)
		}
		if second := protocol.EncodeReply(again, nil); !bytes.Equal(first, second) {
			t.Fatalf("round trip changed the reply:\n first %s\nsecond %s", first, second)
		}
	})
}
