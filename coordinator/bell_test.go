package coordinator_test

import (
	"sync/atomic"
	"testing"
	"time"

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
