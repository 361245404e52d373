package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats.go"
)

// materializationKinds are the events of one materialization without
// dependencies.
var materializationKinds = []protocol.EventKind{
	protocol.EventRunStart, protocol.EventStorageStoreStart, protocol.EventStorageStoreStop, protocol.EventRunStop,
}

// collectEvents reads event batches from sub until it has n events, checks
// each batch against its subject, and returns the events by partition and
// the number of messages they came in.
func collectEvents(t *testing.T, sub *nats.Subscription, n int) (map[string][]protocol.Event, int) {
	t.Helper()
	byPartition := map[string][]protocol.Event{}
	msgs, got := 0, 0
	for got < n {
		m, err := sub.NextMsg(wait)
		if err != nil {
			t.Fatalf("after %d events in %d messages: %v", got, msgs, err)
		}
		msgs++
		b, perr := protocol.DecodeEventBatch(m.Data)
		if perr != nil {
			t.Fatalf("message on %s is not an event batch: %v", m.Subject, perr)
		}
		if m.Subject != protocol.EventSubject(b.Pipeline, b.Kind) {
			t.Fatalf("batch of %s/%s on %s", b.Pipeline, b.Kind, m.Subject)
		}
		for _, ev := range b.Events {
			got++
			byPartition[ev.Partition] = append(byPartition[ev.Partition], ev)
		}
	}
	return byPartition, msgs
}

// checkMaterializations checks that every partition has exactly the four
// events of one materialization of example/numbers.
func checkMaterializations(t *testing.T, byPartition map[string][]protocol.Event, partitions []string) {
	t.Helper()
	if len(byPartition) != len(partitions) {
		t.Errorf("events of %d partitions, want %d", len(byPartition), len(partitions))
	}
	for _, part := range partitions {
		evs := byPartition[part]
		kinds := map[protocol.EventKind]int{}
		for _, ev := range evs {
			if ev.Pipeline != "example" || ev.Asset != "numbers" || ev.Partition != part || ev.Metadata["worker"] == nil {
				t.Errorf("event of %s: %+v", part, ev)
			}
			kinds[ev.Kind]++
		}
		for _, k := range materializationKinds {
			if kinds[k] != 1 {
				t.Errorf("partition %s: %d %s events, want 1 (events %+v)", part, kinds[k], k, evs)
			}
		}
		if len(evs) != len(materializationKinds) {
			t.Errorf("partition %s: %d events, want %d", part, len(evs), len(materializationKinds))
		}
	}
}

// TestEventsAreBatched: a worker running n materializations publishes their
// 4·n events in fewer than 4·n messages, every event there once.
func TestEventsAreBatched(t *testing.T) {
	e := newFleet(t)
	sub, err := e.nc.SubscribeSync(protocol.EventSubjects)
	if err != nil {
		t.Fatal(err)
	}
	e.nc.Flush()
	const n = 40
	var partitions []string
	for i := range n {
		part := fmt.Sprintf("p%02d", i)
		partitions = append(partitions, part)
		e.publish(task("example", "numbers", part, 0))
	}
	// Started after the tasks are queued, the worker runs them together.
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipelines.Example()}})
	for range n {
		if c := e.completion(); !c.OK {
			t.Fatalf("completion = %+v", c)
		}
	}
	byPartition, msgs := collectEvents(t, sub, 4*n)
	checkMaterializations(t, byPartition, partitions)
	if msgs >= 4*n {
		t.Errorf("%d events came in %d messages: not batched", 4*n, msgs)
	}
	t.Logf("%d events in %d messages", 4*n, msgs)
	if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("unexpected message on %s: %s", m.Subject, m.Data)
	}
}

// TestStopPublishesBufferedEvents: events still waiting for their batch to
// be published when the worker stops gracefully are published by Stop.
func TestStopPublishesBufferedEvents(t *testing.T) {
	defer worker.SetEventBatchDelay(time.Hour)()
	e := newFleet(t)
	sub, err := e.nc.SubscribeSync(protocol.EventSubjects)
	if err != nil {
		t.Fatal(err)
	}
	e.nc.Flush()
	w := e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipelines.Example()}})
	partitions := []string{"a", "b", "c"}
	for _, part := range partitions {
		e.publish(task("example", "numbers", part, 0))
	}
	for range partitions {
		if c := e.completion(); !c.OK {
			t.Fatalf("completion = %+v", c)
		}
	}
	// An hour's delay: nothing is published while the worker runs.
	if m, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("event batch published before its delay: %s: %s", m.Subject, m.Data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	byPartition, msgs := collectEvents(t, sub, 4*len(partitions))
	checkMaterializations(t, byPartition, partitions)
	// One batch per kind.
	if msgs != len(materializationKinds) {
		t.Errorf("%d messages, want one per kind (%d)", msgs, len(materializationKinds))
	}
}
