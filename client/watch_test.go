package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
)

// TestWatchUnpacksBatches: Watch calls fn for every event of a batch, in
// order, and skips messages that are not batches and batches of another
// pipeline.
func TestWatchUnpacksBatches(t *testing.T) {
	c, peer := connected(t)
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

// TestWatchOrdersEachWorkersEvents: a worker's events of different kinds
// travel in different batches; Watch delivers them by the numbers the
// worker stamps on them, whatever order the batches arrive in: from the
// first message it sees of a worker (its floor says which numbers are
// still to come), past a number lost on the way (a later floor, or after
// a while, says to stop waiting), and unstamped events at once.
func TestWatchOrdersEachWorkersEvents(t *testing.T) {
	c, peer := connected(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// publish sends one batch of kind, from worker epoch with floor, of
	// events numbered seqs, each with the run id "<epoch>-<seq>"; epoch ""
	// sends it unstamped.
	publish := func(epoch string, floor uint64, kind protocol.EventKind, seqs ...uint64) {
		t.Helper()
		var b protocol.EventBatchBuilder
		for _, seq := range seqs {
			ev := protocol.Event{V: protocol.Version, Kind: kind, Pipeline: "sales", Asset: "sum", Partition: "p",
				RunID: fmt.Sprintf("%s-%d", epoch, seq), Time: time.Now().UTC()}
			if kind == protocol.EventRunException {
				ev.Error = &protocol.Error{Code: protocol.CodeExecutionFailed, Message: "boom"}
			}
			var perr *protocol.Error
			if epoch == "" {
				perr = b.Add(ev, protocol.MaxMessageBytes)
			} else {
				perr = b.AddStamped(ev, "w1", seq, protocol.MaxMessageBytes)
			}
			if perr != nil {
				t.Fatal(perr)
			}
		}
		msg := &nats.Msg{Subject: protocol.EventSubject("sales", kind), Data: b.Bytes(), Header: nats.Header{}}
		if epoch != "" {
			msg.Header.Set(protocol.EventEpochHeader, epoch)
			msg.Header.Set(protocol.EventFloorHeader, fmt.Sprint(floor))
		}
		if err := peer.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		if err := peer.Flush(); err != nil {
			t.Fatal(err)
		}
	}

	got := make(chan string, 100)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go c.Watch(wctx, "sales", func(ev protocol.Event) { got <- ev.RunID })
	next := func() string {
		t.Helper()
		select {
		case id := <-got:
			return id
		case <-ctx.Done():
			t.Fatal("no event")
			return ""
		}
	}
	// Unstamped markers until Watch is subscribed.
	for ready := false; !ready; {
		publish("", 0, protocol.EventRunStop, 1)
		select {
		case <-got:
			ready = true
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("Watch never showed the marker")
		}
	}
	for len(got) > 0 {
		<-got
	}

	expect := func(want ...string) {
		t.Helper()
		for _, w := range want {
			if id := next(); id != w {
				t.Fatalf("got event %s, want %s", id, w)
			}
		}
	}
	// Worker a, first seen mid-way (floor 10): the exceptions batch
	// arrives before the starts batch of the same flush.
	publish("a", 10, protocol.EventRunException, 11, 13)
	publish("a", 10, protocol.EventRunStart, 10, 12)
	expect("a-10", "a-11", "a-12", "a-13")
	// A full batch sent early (floor 14: 14 is still buffered), then the
	// rest.
	publish("a", 14, protocol.EventRunStop, 15, 16)
	publish("a", 14, protocol.EventRunStart, 14)
	expect("a-14", "a-15", "a-16")
	// Unstamped events are not held, even behind a held one.
	publish("a", 17, protocol.EventRunStop, 18)
	publish("", 0, protocol.EventRunStop, 1)
	expect("-1")
	// 17 was lost: the next message's floor (19) says so.
	publish("a", 19, protocol.EventRunStop, 19)
	expect("a-18", "a-19")
	// Worker b's 2 was lost and nothing follows: after a while Watch stops
	// waiting for it.
	publish("b", 1, protocol.EventRunStart, 1)
	publish("b", 1, protocol.EventRunStop, 3)
	expect("b-1", "b-3")
}
