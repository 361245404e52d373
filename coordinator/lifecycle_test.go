package coordinator_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

// A Start that fails late (here: the schedule consumer cannot be bound,
// after the stores, the poll clock, the manifest watch and the
// subscriptions are up) undoes all of it: no subscription, no goroutine
// is left, and Stop afterwards has nothing to do.
func TestFailedStartLeavesNothingRunning(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	// Streams and buckets exist before: the server's goroutines for them
	// are not the coordinator's.
	if err := fleet.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	mats, runs, mfs, err := fleet.Buckets(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	mats.Close()
	runs.Close()
	mfs.Close()
	auto, err := fleet.AutomationBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	auto.Close()
	// The coordinators' durable, with a delivery policy an update cannot
	// change: the coordinator's CreateOrUpdateConsumer fails.
	if _, err := js.CreateConsumer(ctx, fleet.ScheduleStream, jetstream.ConsumerConfig{
		Durable: "coordinator_starts", FilterSubject: protocol.StartSubjects, AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverNewPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	conn := natstest.Connect(t, e.srv)
	// The connection's own subscription for replies (nats.go makes it at
	// the first request) is the connection's, not the coordinator's.
	cjs, err := jetstream.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cjs.AccountInfo(ctx); err != nil {
		t.Fatal(err)
	}
	subs := conn.NumSubscriptions()
	before := goleak.IgnoreCurrent()
	c, err := coordinator.New(coordinator.Config{ID: "doomed", Conn: conn, Stores: e.stores})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err == nil {
		t.Fatal("Start succeeded with a schedule consumer it cannot bind")
	}
	if n := conn.NumSubscriptions(); n != subs {
		t.Errorf("%d subscriptions on the connection after a failed Start, %d before", n, subs)
	}
	goleak.VerifyNone(t, before)
	if err := c.Stop(ctx); err != nil {
		t.Errorf("Stop after a failed Start = %v", err)
	}
	if err := c.Start(ctx); err == nil {
		t.Error("a second Start succeeded")
	}
}

// A Stop whose grace period ends while a run is in flight says so (the
// error wraps the deadline), hands the run back untouched (its record and
// those of its waiting steps are not made terminal), and returns only once
// every goroutine of the coordinator and its engine has. The coordinator
// restarted with the same id finishes the run.
func TestStopCutsRunsShortAndLeavesNothingRunning(t *testing.T) {
	e := newEnv(t)
	c := e.startCoordinator("cut-short")
	hold := make(chan struct{})
	started := make(chan struct{}, 2)
	p := flowstone.MustPipeline("chain",
		flowstone.Asset("held", func(c *flowstone.Context) (any, error) {
			started <- struct{}{}
			select {
			case <-hold:
				return 1, nil
			case <-c.Context().Done():
				return nil, c.Context().Err()
			}
		}),
		flowstone.Asset("after", func(c *flowstone.Context) (any, error) {
			n, err := flowstone.Dep[int](c, "held")
			return n + 1, err
		}, flowstone.DependsOn("held")),
	)
	e.startWorker(p)
	e.waitPipeline("chain")
	rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "chain", Asset: "after"})
	if perr != nil {
		t.Fatal(perr)
	}
	<-started
	ctx, cancel := contextWithTimeout(100 * time.Millisecond)
	defer cancel()
	if err := c.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop with a run in flight past its grace = %v, want it to wrap DeadlineExceeded", err)
	}
	for _, fn := range []string{"flowstone/coordinator.", "flowstone.(*Engine)"} {
		if n := blockedIn(fn); n != 0 {
			t.Errorf("%d goroutines in %s left after Stop", n, fn)
		}
	}
	// Handed back, not ended: the run is still the stopped coordinator's,
	// and the step that waited for its input is not recorded cancelled.
	rec := e.runRecord(rep.RunID)
	if rec.State.Terminal() || rec.Coordinator != "cut-short" {
		t.Errorf("run record after a cut short stop = %s by %q, want live and still owned", rec.State, rec.Coordinator)
	}
	if m := e.matRecord("chain", "after"); m != nil && m.State.Terminal() {
		t.Errorf("the waiting step was recorded %s by the coordinator that handed it back", m.State)
	}
	if err := c.Stop(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a second Stop = %v, want the first one's result", err)
	}
	close(hold)
	e.startCoordinator("cut-short")
	if rec := e.waitRun(rep.RunID); rec.State != protocol.StateCompleted {
		t.Fatalf("run after the restart: %s %v", rec.State, rec.Error)
	}
}

// runRecord reads a run's record.
func (e *env) runRecord(runID string) protocol.RunRecord {
	e.t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, protocol.RunsBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	ent, err := kv.Get(ctx, protocol.RunKey(runID))
	if err != nil {
		e.t.Fatal(err)
	}
	rec, perr := protocol.DecodeRunRecord(ent.Value())
	if perr != nil {
		e.t.Fatal(perr)
	}
	return rec
}

// matRecord reads the materialization record of an asset's default
// partition; nil if there is none.
func (e *env) matRecord(pipeline, asset string) *flowstone.Materialization {
	e.t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, protocol.MaterializationsBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	ent, err := kv.Get(ctx, bridge.MaterializationKey(pipeline, asset, flowstone.DefaultPartition))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := bridge.UnmarshalRecord(ent.Value())
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// blockedIn counts the goroutines with fn in their stack that are blocked
// (on a channel, a timer, a lock): one that has just signalled its owner
// may still be finishing its return, runnable, for a moment.
func blockedIn(fn string) int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		header, _, _ := bytes.Cut(g, []byte("\n"))
		if bytes.Contains(g, []byte(fn)) && !bytes.Contains(header, []byte("[running]")) && !bytes.Contains(header, []byte("[runnable]")) {
			n++
		}
	}
	return n
}
