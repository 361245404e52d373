package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/protocol"
)

// TestWatchUnpacksBatches: Watch calls fn for every event of a batch, in
// order, and skips messages that are not batches and batches of another
// pipeline.
func TestWatchUnpacksBatches(t *testing.T) {
	s := natstest.Server(t)
	peer := natstest.Connect(t, s)
	c, err := client.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	event := func(pipeline, asset, partition string) protocol.Event {
		return protocol.Event{V: protocol.Version, Kind: protocol.EventRunStop, Pipeline: pipeline, Asset: asset,
			Partition: partition, RunID: "r1", Time: time.Now().UTC(), DurationNS: 1}
	}
	publish := func(subject string, data []byte) {
		t.Helper()
		if err := peer.Publish(subject, data); err != nil {
			t.Fatal(err)
		}
		if err := peer.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	batch := func(pipeline string, events ...protocol.Event) []byte {
		t.Helper()
		data, perr := protocol.EncodeEventBatch(protocol.EventBatch{V: protocol.Version, Pipeline: pipeline,
			Kind: protocol.EventRunStop, Events: events})
		if perr != nil {
			t.Fatal(perr)
		}
		return data
	}
	subject := protocol.EventSubject("sales", protocol.EventRunStop)

	got := make(chan protocol.Event, 100)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(wctx, "sales", func(ev protocol.Event) { got <- ev })
	}()
	// Publish a marker until Watch is subscribed and shows it.
	ready := false
	for !ready {
		publish(subject, batch("sales", event("sales", "marker", "m")))
		select {
		case <-got:
			ready = true
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("Watch never showed the marker")
		}
	}
	for len(got) > 0 {
		<-got // later markers
	}

	lone, _ := json.Marshal(event("sales", "lone", "x"))
	publish(subject, lone)                                             // an event outside a batch
	publish(subject, []byte("not json"))                               // garbage
	publish(subject, batch("marketing", event("marketing", "a", "x"))) // another pipeline on this subject
	var want []string
	var evs []protocol.Event
	for i := range 5 {
		part := fmt.Sprint(i)
		want = append(want, part)
		evs = append(evs, event("sales", "sum", part))
	}
	publish(subject, batch("sales", evs...))
	publish(subject, batch("sales", event("sales", "end", "e")))

	var parts []string
	for {
		select {
		case ev := <-got:
			if ev.Asset == "end" {
				if fmt.Sprint(parts) != fmt.Sprint(want) {
					t.Fatalf("partitions %v, want %v", parts, want)
				}
				stop()
				if err := <-done; err != nil {
					t.Fatalf("Watch returned %v", err)
				}
				return
			}
			if ev.Asset != "sum" || ev.Pipeline != "sales" {
				t.Fatalf("unexpected event %+v", ev)
			}
			parts = append(parts, ev.Partition)
		case <-ctx.Done():
			t.Fatalf("no end marker; got %v", parts)
		}
	}
}
