package coordinator_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/fleettest"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
)

// Idle workers are woken by the coordinator's bell once a task is stored,
// not by their idle poll: with a poll of an hour, every run of a sequence
// still gets its task executed, each published while the workers wait.
func TestIdleWorkersAreRungForNewTasks(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	var execs atomic.Int32
	for range 2 {
		e.startWorkerWith(worker.Config{Concurrency: 4, IdlePoll: time.Hour}, counting("count", &execs, nil, nil))
	}
	e.waitPipeline("count")
	const runs = 20
	for i := range runs {
		// Let the workers settle into their (hour-long) idle wait.
		time.Sleep(60 * time.Millisecond)
		if _, rec := e.run(protocol.RunRequest{Pipeline: "count", Asset: "base", Force: true}); rec.State != protocol.StateCompleted {
			t.Fatalf("run %d ended %s %v", i, rec.State, rec.Error)
		}
	}
	if n := execs.Load(); n != runs {
		t.Fatalf("%d executions, want %d", n, runs)
	}
}

// A bell sends an idle worker to the consumer it names only: a worker
// hosting several pipelines does not visit all their consumers (four
// priorities each) for every task message published.
func TestBellVisitsOnlyItsConsumer(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	var execs atomic.Int32
	e.startWorkerWith(worker.Config{Concurrency: 4, IdlePoll: time.Hour},
		counting("count", &execs, nil, nil), counting("other", &execs, nil, nil))
	e.waitPipeline("count")
	e.waitPipeline("other")

	// Count the worker's fetches per consumer from here on, once it has
	// made its first looks and waits (an hour-long idle poll).
	fetches := fleettest.CountFetches(t, e.srv)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("the worker never became idle")
		}
		n := fetches.Total()
		time.Sleep(100 * time.Millisecond)
		if fetches.Total() == n {
			break
		}
	}
	fetches.Reset()

	// Ring count's priority-2 bell with no task behind it.
	if err := e.nc.Publish(protocol.BellSubject(protocol.TaskSubject("count", 2)), nil); err != nil {
		t.Fatal(err)
	}
	want := fleet.ConsumerName("count", 2)
	deadline = time.Now().Add(10 * time.Second)
	for fetches.Of(want) < 2 { // the look, and a settle look after it
		if time.Now().After(deadline) {
			t.Fatalf("the rung consumer was fetched %d times, want 2", fetches.Of(want))
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // any stray look would be out by now
	for consumer, n := range fetches.Counts() {
		if consumer != want {
			t.Errorf("a bell of %s sent the worker to %s (%d fetches)", want, consumer, n)
		}
	}
}
