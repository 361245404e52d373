package worker_test

import (
	"context"
	"fmt"
	"strconv"
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

// TestEventsAreNumberedForOrder: a worker numbers the events of each
// pipeline 1, 2, 3... in the order it took them, and every message says
// its process (epoch) and a floor no higher than any number it carries,
// below which every number came in an earlier message: what a subscriber
// needs to put the batches of different kinds back in order.
func TestEventsAreNumberedForOrder(t *testing.T) {
	e := newFleet(t)
	sub, err := e.nc.SubscribeSync(protocol.EventSubjects)
	if err != nil {
		t.Fatal(err)
	}
	e.nc.Flush()
	const n = 30
	for i := range n {
		e.publish(task("example", "numbers", fmt.Sprintf("p%02d", i), 0))
	}
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipelines.Example()}})
	for range n {
		if c := e.completion(); !c.OK {
			t.Fatalf("completion = %+v", c)
		}
	}
	seen := map[uint64]protocol.Event{}
	epoch := ""
	for len(seen) < 4*n {
		m, err := sub.NextMsg(wait)
		if err != nil {
			t.Fatalf("after %d events: %v", len(seen), err)
		}
		if epoch == "" {
			epoch = m.Header.Get(protocol.EventEpochHeader)
		}
		floor, err := strconv.ParseUint(m.Header.Get(protocol.EventFloorHeader), 10, 64)
		if err != nil || m.Header.Get(protocol.EventEpochHeader) != epoch || epoch == "" {
			t.Fatalf("message headers %v", m.Header)
		}
		for seq := uint64(1); seq < floor; seq++ {
			if _, ok := seen[seq]; !ok {
				t.Fatalf("floor %d, but event %d came in no earlier message", floor, seq)
			}
		}
		b, perr := protocol.DecodeEventBatch(m.Data)
		if perr != nil {
			t.Fatal(perr)
		}
		for _, ev := range b.Events {
			seq, ok := protocol.EventSeq(ev)
			if _, dup := seen[seq]; !ok || dup || seq < floor || ev.Metadata[protocol.EventWorkerKey] == nil {
				t.Fatalf("event %+v in a message of floor %d", ev, floor)
			}
			seen[seq] = ev
		}
	}
	// Numbered 1 to 4n, each partition's events in the order they
	// happened.
	last := map[string]protocol.Event{}
	for seq := uint64(1); seq <= 4*n; seq++ {
		ev, ok := seen[seq]
		if !ok {
			t.Fatalf("no event numbered %d", seq)
		}
		if prev, ok := last[ev.Partition]; ok && ev.Time.Before(prev.Time) {
			t.Errorf("%s of %s (number %d) happened before the %s numbered before it", ev.Kind, ev.Partition, seq, prev.Kind)
		}
		last[ev.Partition] = ev
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
