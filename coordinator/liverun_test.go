package coordinator_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/kv/jskv"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

// runsBucket opens the fleet's runs bucket on the env's connection.
func (e *env) runsBucket() *jskv.Store {
	e.t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := fleet.Ensure(e.t.Context(), js); err != nil {
		e.t.Fatal(err)
	}
	_, runs, _, err := fleet.Buckets(e.t.Context(), js)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(runs.Close)
	return runs
}

// A run is in the live-run index from its acceptance until it ends, and
// only then.
func TestLiveRunIndexFollowsTheRun(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	var execs atomic.Int32
	hold := make(chan struct{})
	started := make(chan string, 1)
	e.startWorker(counting("count", &execs, hold, started))
	e.waitPipeline("count")
	runs := e.runsBucket()
	ctx := t.Context()

	rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "count", Asset: "slow", Async: true})
	if perr != nil {
		t.Fatal(perr)
	}
	<-started
	if _, err := runs.Get(ctx, protocol.LiveRunKey(rep.RunID)); err != nil {
		t.Fatalf("running run not in the live index: %v", err)
	}
	close(hold)
	if rec := e.waitRun(rep.RunID); rec.State != protocol.StateCompleted {
		t.Fatalf("run ended %s %v", rec.State, rec.Error)
	}
	// The index key goes right after the terminal record is stored.
	// A listing may stall and fail with a transient error when every key
	// it counted at its start is purged before delivery (nats.go's watcher
	// then never sees its initial values end), as here when the key goes
	// while it lists; callers list again, and so does the test.
	deadline := time.Now().Add(30 * time.Second)
	for {
		keys, err := runs.Keys(ctx, protocol.LiveRunPrefix)
		if err != nil && transient.Is(err) && time.Now().Before(deadline) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live index still holds %v after the run ended", keys)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A starting coordinator reads the live-run index, not every run record:
// it drops index keys of ended runs and of runs never recorded, keeps a
// fresh key whose record may still be on its way, rewrites records close
// to the bucket's retention, and tracks scheduled runs found there so that
// a cancel reaches them.
func TestStartTendsTheLiveRunIndex(t *testing.T) {
	e := newEnv(t)
	runs := e.runsBucket()
	ctx := t.Context()
	now := time.Now().UTC()
	put := func(key string, value []byte) {
		t.Helper()
		if _, err := runs.Put(ctx, key, value); err != nil {
			t.Fatal(err)
		}
	}
	record := func(rec protocol.RunRecord) {
		t.Helper()
		rec.V = protocol.Version
		b, perr := protocol.EncodeRunRecord(rec)
		if perr != nil {
			t.Fatal(perr)
		}
		put(protocol.RunKey(rec.RunID), b)
		put(protocol.LiveRunKey(rec.RunID), []byte(rec.CreatedAt.Format(time.RFC3339Nano)))
	}
	old := now.Add(-48 * time.Hour)
	later := now.Add(30 * 24 * time.Hour)
	record(protocol.RunRecord{RunID: "ended", State: protocol.StateCompleted, CreatedAt: old, UpdatedAt: old, Coordinator: "gone",
		Request: protocol.RunRequest{V: protocol.Version, Pipeline: "count", Asset: "base"}})
	record(protocol.RunRecord{RunID: "later", State: protocol.StateScheduled, CreatedAt: old, UpdatedAt: old, Coordinator: "gone",
		Request: protocol.RunRequest{V: protocol.Version, Pipeline: "count", Asset: "base", Async: true, ScheduledAt: &later}})
	put(protocol.LiveRunKey("ghost-old"), []byte(now.Add(-time.Hour).Format(time.RFC3339Nano)))
	put(protocol.LiveRunKey("ghost-new"), []byte(now.Format(time.RFC3339Nano)))

	var execs atomic.Int32
	e.startWorker(counting("count", &execs, nil, nil))
	e.startCoordinator("c1")
	e.waitPipeline("count")

	keys, err := runs.Keys(ctx, protocol.LiveRunPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{protocol.LiveRunKey("ghost-new"), protocol.LiveRunKey("later")}; len(keys) != 2 || keys[0] != want[0] || keys[1] != want[1] {
		t.Fatalf("live index after start = %v, want %v", keys, want)
	}
	ent, err := runs.Get(ctx, protocol.RunKey("later"))
	if err != nil {
		t.Fatal(err)
	}
	rec, perr := protocol.DecodeRunRecord(ent.Value)
	if perr != nil {
		t.Fatal(perr)
	}
	if rec.State != protocol.StateScheduled || time.Since(rec.UpdatedAt) > time.Minute {
		t.Fatalf("scheduled record after start: %s, updated %v ago; want it rewritten", rec.State, time.Since(rec.UpdatedAt))
	}
	c, perr := call[protocol.CancelReply](e, protocol.VerbCancel, protocol.CancelRequest{V: protocol.Version, Pipeline: "count", Asset: "base"})
	if perr != nil || c.Cancelled != 1 {
		t.Fatalf("cancel of the indexed scheduled run = %+v %v", c, perr)
	}
	if _, err := runs.Get(ctx, protocol.LiveRunKey("later")); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("cancelled scheduled run still in the live index: %v", err)
	}
	if n := execs.Load(); n != 0 {
		t.Fatalf("%d executions; nothing should have run", n)
	}
}
