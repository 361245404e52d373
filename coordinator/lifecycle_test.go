package coordinator_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/coordinator"
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
// error wraps the deadline), leaves the run to be resumed, and returns
// only once every goroutine of the coordinator and its engine has.
func TestStopCutsRunsShortAndLeavesNothingRunning(t *testing.T) {
	e := newEnv(t)
	c := e.startCoordinator("cut-short")
	var execs atomic.Int32
	hold := make(chan struct{})
	defer close(hold)
	started := make(chan string, 2)
	e.startWorker(counting("count", &execs, hold, started))
	e.waitPipeline("count")
	rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "count", Asset: "slow"})
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
	// The run is still the stopped coordinator's, for its successor.
	rec := e.runRecord(rep.RunID)
	if rec.State.Terminal() || rec.Coordinator != "cut-short" {
		t.Errorf("run record after a cut short stop = %s by %q, want live and still owned", rec.State, rec.Coordinator)
	}
	if err := c.Stop(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a second Stop = %v, want the first one's result", err)
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
