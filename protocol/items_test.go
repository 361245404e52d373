package protocol_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

func validItemBatch() protocol.ItemBatch {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	return protocol.ItemBatch{V: protocol.Version, Scatter: strings.Repeat("ab", 16), Index: 1, Count: 3,
		Items: []string{"a", "b"}, Deadline: &now,
		Task: protocol.Task{V: protocol.Version, ID: protocol.TaskID("r1", "fetch", "default", 1), RunID: "r1",
			Pipeline: "p", Asset: "fetch", Partition: "default", Attempt: 1, EnqueuedAt: now}}
}

func TestItemBatchRoundTrip(t *testing.T) {
	b := validItemBatch()
	data, err := protocol.EncodeItemBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.DecodeItemBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Scatter != b.Scatter || got.Index != 1 || got.Count != 3 || strings.Join(got.Items, ",") != "a,b" ||
		got.Task.Asset != "fetch" || !got.Deadline.Equal(*b.Deadline) {
		t.Fatalf("round trip = %+v", got)
	}
	if s := protocol.ItemSubject("p"); s != "flowstone.task.p.items" {
		t.Fatalf("item subject = %s", s)
	}
}

func TestItemBatchRefusesBadInput(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(*protocol.ItemBatch)
		field string
	}{
		{"scatter id", func(b *protocol.ItemBatch) { b.Scatter = "../x" }, "scatter"},
		{"index past count", func(b *protocol.ItemBatch) { b.Index = 3 }, "index"},
		{"no items", func(b *protocol.ItemBatch) { b.Items = nil }, "items"},
		{"too many items", func(b *protocol.ItemBatch) { b.Items = make([]string, protocol.MaxBatchItemCount+1) }, "items"},
		{"empty item", func(b *protocol.ItemBatch) { b.Items[1] = "" }, "items[1]"},
		{"long item", func(b *protocol.ItemBatch) { b.Items[0] = strings.Repeat("x", protocol.MaxItemLen+1) }, "items[0]"},
		{"bad utf-8", func(b *protocol.ItemBatch) { b.Items[0] = "\xff" }, "items[0]"},
		{"task", func(b *protocol.ItemBatch) { b.Task.Asset = "" }, "task.asset"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := validItemBatch()
			b.Items = append([]string(nil), b.Items...)
			c.edit(&b)
			_, err := protocol.EncodeItemBatch(b)
			if err == nil || err.Code != protocol.CodeBadRequest || err.Details["field"] != c.field {
				t.Fatalf("err = %v (details %v), want bad_request on %s", err, err.Details, c.field)
			}
		})
	}
	if _, err := protocol.DecodeItemBatch([]byte(`{"v":1,"scatter":"x","surplus":1}`)); err == nil {
		t.Fatal("an unknown field was accepted")
	}
	if _, err := protocol.DecodeItemBatch([]byte(`{"v":99}`)); err == nil || err.Code != protocol.CodeUnsupportedVersion {
		t.Fatalf("a newer version: err = %v", err)
	}
}

func TestBatchOutcomeRoundTripAndChecks(t *testing.T) {
	o := protocol.BatchOutcome{V: protocol.Version, Index: 2, Worker: "w1", Items: []protocol.ItemOutcome{
		{State: protocol.ItemCompleted, Value: []byte(`{"n":1}`), Attempts: 1},
		{State: protocol.ItemFailed, ErrorType: "execution_failed", Error: "boom", Attempts: 3},
	}}
	data, err := protocol.EncodeBatchOutcome(o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.DecodeBatchOutcome(data)
	if err != nil || got.Index != 2 || string(got.Items[0].Value) != `{"n":1}` || got.Items[1].Error != "boom" {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	o.Items[0].State = "done"
	if _, err := protocol.EncodeBatchOutcome(o); err == nil || err.Details["field"] != "items[0].state" {
		t.Fatalf("a bad state: err = %v", err)
	}
}

func FuzzDecodeItemBatch(f *testing.F) {
	data, _ := protocol.EncodeItemBatch(validItemBatch())
	f.Add(data)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := protocol.DecodeItemBatch(data)
		if err != nil {
			return
		}
		again, err := protocol.EncodeItemBatch(b)
		if err != nil {
			t.Fatalf("a decoded batch does not encode: %v", err)
		}
		if _, err := protocol.DecodeItemBatch(again); err != nil {
			t.Fatalf("a re-encoded batch does not decode: %v", err)
		}
	})
}

func FuzzDecodeBatchOutcome(f *testing.F) {
	f.Add([]byte(`{"v":1,"index":0,"worker":"w","items":[{"state":"completed","value":"e30="}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := protocol.DecodeBatchOutcome(data)
		if err != nil {
			return
		}
		if _, err := protocol.EncodeBatchOutcome(o); err != nil {
			t.Fatalf("a decoded outcome does not encode: %v", err)
		}
	})
}
