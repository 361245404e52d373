package protocol_test

import (
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

func TestRunRecordRoundTrip(t *testing.T) {
	r := protocol.RunRecord{V: protocol.Version, RunID: "abc123", State: protocol.StateRunning,
		Request:   protocol.RunRequest{V: protocol.Version, Pipeline: "example", Asset: "sum"},
		CreatedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2025, 1, 1, 0, 0, 1, 0, time.UTC)}
	b, err := protocol.EncodeRunRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.DecodeRunRecord(b)
	if err != nil || got.RunID != r.RunID || got.State != r.State || got.Request.Asset != "sum" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := protocol.DecodeRunRecord([]byte(`{"v":1,"run_id":"a.b"}`)); err == nil {
		t.Fatal("a run id with a dot was accepted")
	}
	if protocol.StateRunning.Terminal() || !protocol.StateCancelled.Terminal() {
		t.Fatal("Terminal is wrong")
	}
	if protocol.RunKey("abc") != "run.abc" {
		t.Fatal(protocol.RunKey("abc"))
	}
	if protocol.LiveRunKey("abc") != "live.abc" {
		t.Fatal(protocol.LiveRunKey("abc"))
	}
}
