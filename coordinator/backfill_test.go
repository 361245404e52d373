package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// crashable is a coordinator on a connection of its own, which the test
// closes to kill it: no Stop, no last write, its heartbeat left as it was.
type crashable struct {
	*coordinator.Coordinator
	nc *nats.Conn
}

func (e *env) startCrashable(id string) crashable {
	e.t.Helper()
	nc, err := nats.Connect(e.srv.ClientURL())
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := coordinator.New(coordinator.Config{ID: id, Conn: nc, Stores: e.stores, PollInterval: 200 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Stop(ctx)
		nc.Close()
	})
	return crashable{c, nc}
}

// crash kills the coordinator as SIGKILL would, as far as the fleet can
// tell: its connection goes, and with it its subscriptions.
func (c crashable) crash() { c.nc.Close() }

// backfillPlan is a pipeline for backfills that die mid-way: partition
// "p<i>" returns at once for i < fast, fails for the ones in failing, and
// otherwise waits for hold. Every execution is counted by partition.
type backfillPlan struct {
	fast    int
	failing map[string]bool
	hold    chan struct{}

	mu    sync.Mutex
	execs map[string]int
	held  chan string // partitions waiting for hold, as they start
}

func newBackfillPlan(fast int, failing ...string) *backfillPlan {
	b := &backfillPlan{fast: fast, failing: map[string]bool{}, hold: make(chan struct{}), execs: map[string]int{}, held: make(chan string, 1000)}
	for _, f := range failing {
		b.failing[f] = true
	}
	return b
}

func (b *backfillPlan) pipeline() *flowstone.Pipeline {
	return flowstone.MustPipeline("bfplan", flowstone.Asset("part", func(c *flowstone.Context) (any, error) {
		part := c.Partition()
		b.mu.Lock()
		b.execs[part]++
		b.mu.Unlock()
		var i int
		fmt.Sscanf(part, "p%d", &i)
		switch {
		case b.failing[part]:
			return nil, errors.New("partition " + part + " fails")
		case i < b.fast:
			return part, nil
		}
		b.held <- part
		select {
		case <-b.hold:
			return part, nil
		case <-c.Context().Done():
			return nil, c.Context().Err()
		}
	}, flowstone.PartitionedBy(flowstone.AnyKey)))
}

func (b *backfillPlan) executions() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.execs)
}

func partitionNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("p%d", i)
	}
	return out
}

// startBackfill sends an async backfill and returns its id.
func (e *env) startBackfill(req protocol.BackfillRequest) string {
	e.t.Helper()
	req.V, req.Async = protocol.Version, true
	rep, perr := call[protocol.BackfillReply](e, protocol.VerbBackfill, req)
	if perr != nil {
		e.t.Fatalf("backfill: %v", perr)
	}
	if rep.RunID == "" || rep.Succeeded+rep.Failed+rep.Skipped != 0 {
		e.t.Fatalf("async backfill reply = %+v, want an id and no counts", rep)
	}
	return rep.RunID
}

// backfillStatus asks any coordinator where a backfill stands, waiting up
// to wait for a revision past after. A request nobody answers (between
// coordinators) reads as ok false.
func (e *env) backfillStatus(id string, after uint64, wait time.Duration) (protocol.BackfillStatusReply, bool) {
	e.t.Helper()
	body, perr := protocol.EncodeRequest(protocol.BackfillStatusRequest{V: protocol.Version, ID: id, AfterRevision: after, WaitMS: wait.Milliseconds()})
	if perr != nil {
		e.t.Fatal(perr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait+10*time.Second)
	defer cancel()
	msg, err := e.nc.RequestWithContext(ctx, protocol.APISubject(protocol.VerbBackfillStatus), body)
	if err != nil {
		return protocol.BackfillStatusReply{}, false
	}
	rep, perr := protocol.DecodeReply[protocol.BackfillStatusReply](msg.Data)
	if perr != nil {
		e.t.Fatalf("backfill_status %s: %v", id, perr)
	}
	return rep, true
}

// waitBackfill follows a backfill until cond holds for its status.
func (e *env) waitBackfill(id, what string, cond func(protocol.BackfillStatusReply) bool) protocol.BackfillStatusReply {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last protocol.BackfillStatusReply
	for time.Now().Before(deadline) {
		rep, ok := e.backfillStatus(id, last.Revision, 2*time.Second)
		if !ok {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		last = rep
		if cond(rep) {
			return rep
		}
	}
	e.t.Fatalf("backfill %s: waited for %s; last %+v", id, what, last)
	return last
}

func ended(rep protocol.BackfillStatusReply) bool { return rep.State.Terminal() }

// partitionRecord reads the materialization record of a bfplan partition.
func (e *env) partitionStatus(part string) protocol.StatusReply {
	e.t.Helper()
	st, perr := call[protocol.StatusReply](e, protocol.VerbStatus, protocol.StatusRequest{V: protocol.Version, Pipeline: "bfplan", Asset: "part", Partition: part})
	if perr != nil {
		e.t.Fatal(perr)
	}
	return st
}

// checkAllCompleted checks that every partition is completed by the
// backfill's own run and was executed exactly once.
func (e *env) checkAllCompleted(id string, parts []string, execs map[string]int) {
	e.t.Helper()
	for _, part := range parts {
		st := e.partitionStatus(part)
		if st.State != protocol.StateCompleted || st.RunID != protocol.BackfillRunID(id, part) {
			e.t.Errorf("%s: %s by run %s, want completed by %s", part, st.State, st.RunID, protocol.BackfillRunID(id, part))
		}
		if execs[part] != 1 {
			e.t.Errorf("%s executed %d times, want once", part, execs[part])
		}
	}
}

// A backfill whose coordinator dies mid-way (partitions running, others
// queued for a worker slot, the rest not started) is adopted by the same
// coordinator restarted: it ends with every partition completed once, the
// queued records resumed, the counts right, and its live-index key gone.
// (Partitions counted before the death: see the next test.)
func TestBackfillSurvivesItsCoordinatorsDeath(t *testing.T) {
	e := newEnv(t)
	a := e.startCrashable("bf-a")
	plan := newBackfillPlan(0)
	e.startWorkerWith(worker.Config{Concurrency: 2}, plan.pipeline())
	e.waitPipeline("bfplan")
	parts := partitionNames(12)
	id := e.startBackfill(protocol.BackfillRequest{Pipeline: "bfplan", Asset: "part", Partitions: parts, Parallel: 4})

	// p0..p3 start: two run and hold, two wait for a worker slot; p4..
	// wait for the backfill's own parallelism.
	for range 2 {
		<-plan.held
	}
	for _, part := range parts[:4] {
		st := e.partitionStatus(part)
		if st.RunID != protocol.BackfillRunID(id, part) || st.State != protocol.StatePending && st.State != protocol.StateRunning {
			t.Fatalf("%s before the crash: %s by %s, want pending or running by the backfill", part, st.State, st.RunID)
		}
	}
	a.crash()

	e.startCoordinator("bf-a") // the same id, restarted
	close(plan.hold)
	rep := e.waitBackfill(id, "its end", ended)
	if rep.State != protocol.StateCompleted || rep.Succeeded != len(parts) || rep.Failed+rep.Skipped+rep.NotStarted != 0 || rep.Coordinator != "bf-a" {
		t.Fatalf("backfill after the crash = %+v, want %d succeeded", rep, len(parts))
	}
	e.checkAllCompleted(id, parts, plan.executions())
	if _, err := e.runsBucket().Get(t.Context(), protocol.LiveBackfillKey(id)); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("ended backfill still in the live index: %v", err)
	}
}

// Another coordinator adopts the backfill of one that died for good, once
// the dead one's heartbeat is stale (removed here, as its expiry would):
// the partitions counted before stay counted, those that ended meanwhile
// are counted from their records, the rest run; each runs once. (The
// worker has a slot for every partition the backfill runs at once, so
// held partitions never keep a quick one waiting.)
func TestBackfillIsAdoptedByAnotherCoordinator(t *testing.T) {
	e := newEnv(t)
	a := e.startCrashable("bf-dies")
	plan := newBackfillPlan(3)
	e.startWorkerWith(worker.Config{Concurrency: 4}, plan.pipeline())
	e.waitPipeline("bfplan")
	parts := partitionNames(12)
	id := e.startBackfill(protocol.BackfillRequest{Pipeline: "bfplan", Asset: "part", Partitions: parts, Parallel: 3})
	e.waitBackfill(id, "three partitions counted", func(r protocol.BackfillStatusReply) bool { return r.Succeeded == 3 })
	for range 3 {
		<-plan.held
	}
	e.startCoordinator("bf-heir")
	a.crash()
	if err := e.runsBucket().Delete(t.Context(), "coord.bf-dies", 0); err != nil {
		t.Fatal(err)
	}
	e.waitBackfill(id, "adoption", func(r protocol.BackfillStatusReply) bool { return r.Coordinator == "bf-heir" })
	close(plan.hold)
	rep := e.waitBackfill(id, "its end", ended)
	if rep.State != protocol.StateCompleted || rep.Succeeded != 12 || rep.Failed+rep.Skipped+rep.NotStarted != 0 {
		t.Fatalf("adopted backfill = %+v, want 12 succeeded", rep)
	}
	e.checkAllCompleted(id, parts, plan.executions())
}

// OnError(Halt) survives adoption: the partitions running when the driver
// died finish, no other starts, and the rest count as not started.
func TestBackfillHaltSurvivesAdoption(t *testing.T) {
	e := newEnv(t)
	a := e.startCrashable("bf-halt")
	plan := newBackfillPlan(0, "p0")
	e.startWorkerWith(worker.Config{Concurrency: 8}, plan.pipeline())
	e.waitPipeline("bfplan")
	parts := partitionNames(10)
	id := e.startBackfill(protocol.BackfillRequest{Pipeline: "bfplan", Asset: "part", Partitions: parts, Parallel: 4, OnError: protocol.OnErrorHalt})
	e.waitBackfill(id, "the halt", func(r protocol.BackfillStatusReply) bool { return r.Halted && r.Failed == 1 })
	for range 3 {
		<-plan.held // p1..p3, started before p0 failed
	}
	a.crash()
	e.startCoordinator("bf-halt")
	close(plan.hold)
	rep := e.waitBackfill(id, "its end", ended)
	if rep.State != protocol.StateFailed || !rep.Halted || rep.Failed != 1 || rep.Succeeded != 3 || rep.NotStarted != 6 ||
		rep.Errors["p0"] == nil || rep.Errors["p0"].Code != protocol.CodeExecutionFailed {
		t.Fatalf("halted backfill after adoption = %+v, want 1 failed, 3 succeeded, 6 not started", rep)
	}
	execs := plan.executions()
	var ran []string
	for part := range execs {
		ran = append(ran, part)
	}
	slices.Sort(ran)
	if !slices.Equal(ran, []string{"p0", "p1", "p2", "p3"}) {
		t.Errorf("executed %v, want p0..p3 only", ran)
	}
}

// A backfill of 100,000 partitions (a request near the size limit) is
// recorded in chunks, each far below the KV value limit, that give the
// list back in order; its status is answered from its record.
func TestLargeBackfillIsRecordedInChunks(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	// Hosted by no running worker: the backfill is recorded and waits.
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	mf := bridge.Manifest(flowstone.MustPipeline("nowhere", flowstone.Asset("a", func(*flowstone.Context) (any, error) { return 1, nil }, flowstone.PartitionedBy(flowstone.AnyKey))), "w1")
	body, perr := protocol.EncodeManifest(mf)
	if perr != nil {
		t.Fatal(perr)
	}
	manifests, err := js.KeyValue(t.Context(), protocol.ManifestsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := manifests.Put(t.Context(), protocol.ManifestKey("nowhere", "w1"), body); err != nil {
		t.Fatal(err)
	}
	e.waitPipeline("nowhere")
	parts := make([]string, protocol.MaxBackfillPartitions)
	for i := range parts {
		parts[i] = fmt.Sprintf("k%05d", i)
	}
	id := e.startBackfill(protocol.BackfillRequest{Pipeline: "nowhere", Asset: "a", Partitions: parts})

	runs := e.runsBucket()
	keys, err := runs.Keys(t.Context(), protocol.BackfillPartsPrefix+id+".")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 2 {
		t.Fatalf("%d chunks for a request of %d partitions", len(keys), len(parts))
	}
	var got []string
	for n := range keys {
		ent, err := runs.Get(t.Context(), protocol.BackfillPartsKey(id, n))
		if err != nil {
			t.Fatal(err)
		}
		if len(ent.Value) > protocol.MaxMessageBytes/2 {
			t.Errorf("chunk %d is %d bytes", n, len(ent.Value))
		}
		chunk, perr := protocol.DecodeBackfillPartitions(ent.Value)
		if perr != nil || chunk.Index != n || chunk.ID != id {
			t.Fatalf("chunk %d: %+v %v", n, chunk.Index, perr)
		}
		got = append(got, chunk.Partitions...)
	}
	if !slices.Equal(got, parts) {
		t.Fatalf("the chunks hold %d partitions, not the %d asked for in order", len(got), len(parts))
	}
	rep, ok := e.backfillStatus(id, 0, 0)
	if !ok || rep.Total != len(parts) || rep.State != protocol.StateRunning || rep.Request.Pipeline != "nowhere" || rep.Coordinator != "c1" {
		t.Fatalf("status of the large backfill = %+v", rep)
	}
	if _, perr := call[protocol.BackfillStatusReply](e, protocol.VerbBackfillStatus, protocol.BackfillStatusRequest{V: protocol.Version, ID: "nosuch"}); perr == nil || perr.Code != protocol.CodeNotFound {
		t.Fatalf("status of an unknown backfill: %v", perr)
	}
}
