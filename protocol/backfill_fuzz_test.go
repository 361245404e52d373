package protocol_test

import (
	"bytes"
	"testing"

	"github.com/flowstone-go/flowstone/protocol"
)

// The backfill records are read back by whichever coordinator adopts a
// backfill, and the status reply by any client: their decoders get the
// same fuzzing as the messages on the wire.

func FuzzDecodeBackfillRecord(f *testing.F) {
	valid, _ := protocol.EncodeBackfillRecord(validBackfillRecord())
	seed(f, valid,
		[]byte(`{"v":1,"id":"b","request":{"pipeline":"p","asset":"a"},"total":9,"chunks":1,"state":"running","coordinator":"c","succeeded":1,"failed":0,"skipped":0,"counted":"AQA=","created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}`),
		[]byte(`{"v":1,"id":"b","request":{"pipeline":"p","asset":"a"},"total":1,"chunks":1,"state":"failed","coordinator":"c","succeeded":0,"failed":1,"skipped":0,"counted":"AQ","errors":{"x":{"code":"timeout","message":"m"}},"created_at":"2025-01-01T00:00:00+14:00","updated_at":"2025-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, data, protocol.DecodeBackfillRecord, protocol.EncodeBackfillRecord)
	})
}

func FuzzDecodeBackfillPartitions(f *testing.F) {
	valid, _ := protocol.EncodeBackfillPartitions(validBackfillPartitions())
	seed(f, valid, []byte(`{"v":1,"id":"b","index":0,"partitions":["\u2028","a\u0000b"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, data, protocol.DecodeBackfillPartitions, protocol.EncodeBackfillPartitions)
	})
}

func FuzzDecodeBackfillStatusRequest(f *testing.F) {
	valid, _ := protocol.EncodeRequest(protocol.BackfillStatusRequest{V: protocol.Version, ID: "bf1", AfterRevision: 9, WaitMS: 100})
	seed(f, valid, []byte(`{"v":1,"id":"b","after_revision":18446744073709551615,"wait_ms":15000}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, data, protocol.DecodeRequest[protocol.BackfillStatusRequest], func(r protocol.BackfillStatusRequest) ([]byte, *protocol.Error) {
			return protocol.EncodeRequest(r)
		})
	})
}

// FuzzDecodeBackfillStatusReply checks DecodeReply on backfill status
// replies: what it accepts re-encodes to a canonical form. (A reply
// carrying the peer's error is returned as such, not refused.)
func FuzzDecodeBackfillStatusReply(f *testing.F) {
	seed(f, protocol.EncodeReply(protocol.BackfillStatusOf(validBackfillRecord(), 7), nil),
		[]byte(`{"v":1,"ok":{"id":"b","request":{"pipeline":"p","asset":"a"},"total":2,"state":"completed","coordinator":"c","succeeded":1,"failed":1,"skipped":0,"errors_omitted":1,"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z","revision":1}}`),
		[]byte(`{"v":1,"error":{"code":"not_found","message":"no backfill b"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := protocol.DecodeReply[protocol.BackfillStatusReply](data)
		if err != nil {
			return
		}
		first := protocol.EncodeReply(r, nil)
		again, err := protocol.DecodeReply[protocol.BackfillStatusReply](first)
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", first, err)
		}
		if second := protocol.EncodeReply(again, nil); !bytes.Equal(first, second) {
			t.Fatalf("round trip changed the reply:\n first %s\nsecond %s", first, second)
		}
	})
}
