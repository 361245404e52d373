package flowstone_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/objectstore"
)

// A queued task carries the revision of its pending record; a redelivery
// of it after the asset completed must not execute again, whatever the
// stale revision says.
func TestExecutorExpectedRevisionIsIdempotent(t *testing.T) {
	store := kv.NewMemory()
	x, err := bridge.NewExecutor(bridge.ExecutorConfig{KV: store, Stores: map[string]objectstore.Store{"memory": objectstore.NewMemory()}})
	if err != nil {
		t.Fatal(err)
	}
	var execs atomic.Int32
	p := flowstone.MustPipeline("p", flowstone.Asset("a", func(*flowstone.Context) (any, error) { execs.Add(1); return 7, nil }))
	ctx := context.Background()
	key := bridge.MaterializationKey("p", "a", "default")
	pending, _ := bridge.MarshalRecord(&flowstone.Materialization{Pipeline: "p", Asset: "a", Partition: "default", State: flowstone.StatePending, RunID: "r1"})
	rev, err := store.Create(ctx, key, pending)
	if err != nil {
		t.Fatal(err)
	}
	task := bridge.Task{RunID: "r1", Asset: "a", Partition: "default", Attempt: 1, ExpectedRevision: rev}
	rec, err := x.Execute(ctx, p, task)
	if err != nil || rec.State != flowstone.StateCompleted || execs.Load() != 1 {
		t.Fatalf("first delivery: %+v %v (execs %d)", rec, err, execs.Load())
	}
	task.Attempt = 2 // redelivered: its revision is stale now
	rec, err = x.Execute(ctx, p, task)
	if err != nil || rec.State != flowstone.StateCompleted || execs.Load() != 1 {
		t.Fatalf("redelivery: %+v %v (execs %d)", rec, err, execs.Load())
	}
}
