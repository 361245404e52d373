package flowstone_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/objectstore"
)

// flakyPipeline has "numbers" (a value that grows with each successful
// execution), "sum" over it, and a switch that makes "numbers" fail, hang
// until its context ends, or succeed.
type flakyPipeline struct {
	p     *flowstone.Pipeline
	mode  atomic.Value // "ok", "fail" or "hang"
	execs atomic.Int32
}

func newFlakyPipeline(t *testing.T, opts ...flowstone.AssetOption) *flakyPipeline {
	t.Helper()
	f := &flakyPipeline{}
	f.mode.Store("ok")
	f.p = flowstone.MustPipeline("flaky",
		flowstone.Asset("numbers", func(c *flowstone.Context) (any, error) {
			n := f.execs.Add(1)
			switch f.mode.Load() {
			case "fail":
				return nil, errors.New("source unavailable")
			case "hang":
				<-c.Context().Done()
				return nil, c.Context().Err()
			}
			return []int{int(n), int(n)}, nil
		}, opts...),
		flowstone.Asset("sum", func(c *flowstone.Context) (any, error) {
			nums, err := flowstone.Dep[[]int](c, "numbers")
			return nums[0] + nums[1], err
		}, flowstone.DependsOn("numbers")),
	)
	return f
}

// TestFailedRerunKeepsTheLastGoodValue: a forced re-run that fails, times
// out or is cancelled leaves the previous value readable (Get, Exists,
// dependents), while Status tells of the failed attempt and of the value.
func TestFailedRerunKeepsTheLastGoodValue(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  string
		opts  []flowstone.RunOption
		want  flowstone.ErrorType
		state flowstone.State
	}{
		{"fails", "fail", nil, flowstone.TypeExecutionFailed, flowstone.StateFailed},
		{"times out", "hang", []flowstone.RunOption{flowstone.Timeout(50 * time.Millisecond)}, flowstone.TypeTimeout, flowstone.StateFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			e := newEngine(t)
			f := newFlakyPipeline(t)
			first, err := e.Run(ctx, f.p, "numbers")
			if err != nil {
				t.Fatal(err)
			}
			f.mode.Store(tc.mode)
			_, err = e.Run(ctx, f.p, "numbers", append([]flowstone.RunOption{flowstone.Force()}, tc.opts...)...)
			wantType(t, err, tc.want)

			got, err := e.Get(ctx, f.p, "numbers")
			if err != nil {
				t.Fatalf("Get after a failed re-run: %v; want the last good value", err)
			}
			var nums []int
			if err := got.Decode(&nums); err != nil || nums[0] != 1 || got.RunID != first.RunID {
				t.Fatalf("Get = %v (run %s, %v), want [1 1] of run %s", nums, got.RunID, err, first.RunID)
			}
			if ok, err := e.Exists(ctx, f.p, "numbers"); !ok || err != nil {
				t.Fatalf("Exists = %v, %v; want true", ok, err)
			}
			st, err := e.Status(ctx, f.p, "numbers")
			if err != nil {
				t.Fatal(err)
			}
			if st.State != tc.state || st.Error == nil || st.Error.Type != tc.want || st.RunID == first.RunID {
				t.Fatalf("Status = %s (%v, run %s); want the failed attempt", st.State, st.Error, st.RunID)
			}
			if st.Value == nil || st.Value.RunID != first.RunID || st.Value.CompletedAt.IsZero() || st.Storage != flowstone.InlineStorage {
				t.Fatalf("Status.Value = %+v, storage %q; want the first run's value", st.Value, st.Storage)
			}
			// A dependent uses the good value: numbers is not run again.
			before := f.execs.Load()
			sum, err := e.Run(ctx, f.p, "sum")
			if err != nil || decodeInt(t, sum) != 2 || f.execs.Load() != before {
				t.Fatalf("sum = %v (%v) with %d more executions of numbers; want 2, none", sum, err, f.execs.Load()-before)
			}
		})
	}
}

func TestCancelledRerunKeepsTheLastGoodValue(t *testing.T) {
	ctx := ctxT(t)
	e := newEngine(t)
	f := newFlakyPipeline(t)
	if _, err := e.Run(ctx, f.p, "numbers"); err != nil {
		t.Fatal(err)
	}
	f.mode.Store("hang")
	errc := make(chan error, 1)
	go func() {
		_, err := e.Run(ctx, f.p, "numbers", flowstone.Force())
		errc <- err
	}()
	// Cancel once the re-run is executing.
	deadline := time.Now().Add(20 * time.Second)
	for f.execs.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the forced re-run never started")
		}
		time.Sleep(time.Millisecond)
	}
	for e.Cancel(ctx, f.p, "numbers") != nil {
		if time.Now().After(deadline) {
			t.Fatal("nothing to cancel")
		}
		time.Sleep(time.Millisecond)
	}
	wantType(t, <-errc, flowstone.TypeCancelled)
	got, err := e.Get(ctx, f.p, "numbers")
	if err != nil {
		t.Fatalf("Get after a cancelled re-run: %v", err)
	}
	var nums []int
	if err := got.Decode(&nums); err != nil || nums[0] != 1 {
		t.Fatalf("Get = %v, %v; want [1 1]", nums, err)
	}
	if st, _ := e.Status(ctx, f.p, "numbers"); st.State != flowstone.StateCancelled || st.Value == nil {
		t.Fatalf("Status = %+v; want cancelled with a value", st)
	}
}

// sharedExecutors are two executors (two workers) over one metadata store
// and one object store, with a short lease.
func sharedExecutors(t *testing.T, lease time.Duration) (a, b *bridge.Executor, store kv.Store, objects objectstore.Store) {
	t.Helper()
	store, objects = kv.NewMemory(), objectstore.NewMemory()
	a, b = executorsOn(t, store, objects, lease)
	return a, b, store, objects
}

// executorsOn are two executors (worker-a and worker-b) over store and
// objects, with lease.
func executorsOn(t *testing.T, store kv.Store, objects objectstore.Store, lease time.Duration) (a, b *bridge.Executor) {
	t.Helper()
	stores := map[string]objectstore.Store{"memory": objects}
	mk := func(name string) *bridge.Executor {
		x, err := bridge.NewExecutor(bridge.ExecutorConfig{KV: store, Stores: stores, Worker: name, Lease: lease})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(x.Close)
		return x
	}
	return mk("worker-a"), mk("worker-b")
}

// gatedPipeline's asset "slow" blocks until release is closed (or its
// context ends), counting executions and reporting each start.
func gatedPipeline(started chan<- string, release <-chan struct{}, execs *atomic.Int32) *flowstone.Pipeline {
	return flowstone.MustPipeline("gated", flowstone.Asset("slow", func(c *flowstone.Context) (any, error) {
		n := execs.Add(1)
		started <- c.RunID()
		select {
		case <-release:
			return int(n), nil
		case <-c.Context().Done():
			return nil, c.Context().Err()
		}
	}))
}

// TestSecondDeliveryWaitsForTheLiveFirst: a task delivered twice (an ack
// lost, a server that forgot a delivery) runs once: the second execution
// finds the first's live claim, waits, and returns its outcome.
func TestSecondDeliveryWaitsForTheLiveFirst(t *testing.T) {
	ctx := ctxT(t)
	a, b, _, _ := sharedExecutors(t, 600*time.Millisecond)
	started, release := make(chan string, 4), make(chan struct{})
	var execs atomic.Int32
	p := gatedPipeline(started, release, &execs)
	task := bridge.Task{RunID: "run-1", Asset: "slow", Partition: flowstone.DefaultPartition, Attempt: 1}

	first := make(chan error, 1)
	go func() { _, err := a.Execute(ctx, p, task); first <- err }()
	<-started
	second := make(chan *flowstone.Materialization, 1)
	go func() {
		rec, err := b.Execute(ctx, p, task)
		if err != nil {
			t.Errorf("second delivery: %v", err)
		}
		second <- rec
	}()
	// Past several leases of the first (renewed by its executor), the
	// second still waits.
	select {
	case <-started:
		t.Fatal("the second delivery executed the asset while the first ran")
	case rec := <-second:
		t.Fatalf("the second delivery returned %+v while the first ran", rec)
	case <-time.After(3 * time.Second):
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	rec := <-second
	if rec == nil || !rec.Materialized() || rec.Worker != "worker-a" || execs.Load() != 1 {
		t.Fatalf("second delivery got %+v after %d executions; want worker-a's value, one execution", rec, execs.Load())
	}
}

// TestTakenOverExecutionRecordsNothing: an execution whose lease lapsed
// (its process could not renew it) is taken over by the next delivery; when
// it ends, it records nothing over the newer attempt, and its result
// object is not left behind.
func TestTakenOverExecutionRecordsNothing(t *testing.T) {
	ctx := ctxT(t)
	a, b, store, objects := sharedExecutors(t, 300*time.Millisecond)
	started, releaseA := make(chan string, 4), make(chan struct{})
	var execs atomic.Int32
	p := gatedPipeline(started, releaseA, &execs)
	task := bridge.Task{RunID: "run-1", Asset: "slow", Partition: flowstone.DefaultPartition, Attempt: 1, Storage: "memory"}

	first := make(chan error, 1)
	go func() { _, err := a.Execute(context.WithoutCancel(ctx), p, task); first <- err }()
	<-started
	a.Close() // a stops renewing, as a process cut off from the store does

	// b's delivery takes the record over once a's lease has lapsed; its
	// own execution of the asset is released at once.
	task.Attempt = 2
	second := make(chan *flowstone.Materialization, 1)
	go func() {
		rec, err := b.Execute(ctx, p, task)
		if err != nil {
			t.Errorf("second delivery: %v", err)
		}
		second <- rec
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the second delivery never took the lapsed claim over")
	}
	close(releaseA) // releases both executions
	rec := <-second
	if rec == nil || rec.Worker != "worker-b" || rec.Attempt < 2 || rec.State != flowstone.StateCompleted {
		t.Fatalf("second delivery recorded %+v; want worker-b's attempt 2 completed", rec)
	}
	err := <-first
	if !errors.Is(err, bridge.ErrSuperseded) {
		t.Fatalf("taken-over execution returned %v; want ErrSuperseded", err)
	}
	e, err := store.Get(ctx, bridge.MaterializationKey("gated", "slow", flowstone.DefaultPartition))
	if err != nil {
		t.Fatal(err)
	}
	got, err := bridge.UnmarshalRecord(e.Value)
	if err != nil {
		t.Fatal(err)
	}
	if got.Worker != "worker-b" || got.Value == nil || got.Value.ObjectKey != rec.Value.ObjectKey {
		t.Fatalf("record after both ended = %+v; want worker-b's", got)
	}
	// Attempt 1's result object (stored before it found itself taken
	// over) is gone; attempt 2's is there.
	if _, err := objects.Stat(ctx, bridge.ObjectKey("gated", "slow", flowstone.DefaultPartition, "run-1-1")); !errors.Is(err, objectstore.ErrNotFound) {
		t.Fatalf("the taken-over attempt's object: %v; want it deleted", err)
	}
	if _, err := objects.Stat(ctx, rec.Value.ObjectKey); err != nil {
		t.Fatalf("the record's object %s: %v", rec.Value.ObjectKey, err)
	}
}

// TestStaleTaskOfAnotherRunDoesNotRun: a task whose record another run
// has queued since (its own run ended and the asset was taken over) does
// not execute.
func TestStaleTaskOfAnotherRunDoesNotRun(t *testing.T) {
	ctx := ctxT(t)
	store := kv.NewMemory()
	x, err := bridge.NewExecutor(bridge.ExecutorConfig{KV: store, Stores: map[string]objectstore.Store{"memory": objectstore.NewMemory()}})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	var execs atomic.Int32
	p := flowstone.MustPipeline("stale", flowstone.Asset("a", func(c *flowstone.Context) (any, error) { return int(execs.Add(1)), nil }))
	key := bridge.MaterializationKey("stale", "a", flowstone.DefaultPartition)
	alive := func(string) bool { return false }
	out, _, rev1, err := x.Records().Queue(ctx, key, nil, 0, bridge.QueueRequest{Pipeline: "stale", Asset: "a",
		Partition: flowstone.DefaultPartition, RunID: "run-old", By: "c1", Alive: alive})
	if err != nil || out != bridge.Queued {
		t.Fatalf("queue old = %v, %v", out, err)
	}
	// The old run is gone; a new run takes the record.
	cur, _, _ := x.Records().Read(ctx, key)
	if out, _, _, err := x.Records().Queue(ctx, key, cur, rev1, bridge.QueueRequest{Pipeline: "stale", Asset: "a",
		Partition: flowstone.DefaultPartition, RunID: "run-new", Force: true, By: "c2", Alive: alive}); err != nil || out != bridge.Queued {
		t.Fatalf("queue new = %v, %v", out, err)
	}
	_, err = x.Execute(ctx, p, bridge.Task{RunID: "run-old", Asset: "a", Partition: flowstone.DefaultPartition, Attempt: 1, ExpectedRevision: rev1})
	wantType(t, err, flowstone.TypeCancelled)
	if execs.Load() != 0 {
		t.Fatalf("the stale task executed the asset %d times", execs.Load())
	}
	if rec, _, _ := x.Records().Read(ctx, key); rec.RunID != "run-new" || rec.State != flowstone.StatePending {
		t.Fatalf("record = %+v; want run-new's queued record untouched", rec)
	}
}

// TestGiveUpLeavesOtherRunsAndValuesAlone: the dead-letter give-up fails
// its own run's record, keeps the value, and never touches a record
// another run has moved on.
func TestGiveUpLeavesOtherRunsAndValuesAlone(t *testing.T) {
	ctx := ctxT(t)
	e := newEngine(t)
	f := newFlakyPipeline(t)
	first, err := e.Run(ctx, f.p, "numbers")
	if err != nil {
		t.Fatal(err)
	}
	r := bridge.EngineExecutor(e).Records()
	fe := &flowstone.Error{Type: flowstone.TypeExecutionFailed, Message: "given up"}
	// Another run's give-up: the completed record is not its to fail.
	if cur, wrote, err := r.GiveUp(ctx, "flaky", "numbers", flowstone.DefaultPartition, "other-run", 5, fe); err != nil || wrote || cur.State != flowstone.StateCompleted {
		t.Fatalf("GiveUp of another run = %+v, wrote %v, %v; want the record untouched", cur, wrote, err)
	}
	// Its own run queued it again (a forced re-run): the give-up fails it,
	// the value stays.
	key := bridge.MaterializationKey("flaky", "numbers", flowstone.DefaultPartition)
	cur, rev, _ := r.Read(ctx, key)
	if out, _, _, err := r.Queue(ctx, key, cur, rev, bridge.QueueRequest{Pipeline: "flaky", Asset: "numbers",
		Partition: flowstone.DefaultPartition, RunID: "rerun", Force: true, By: "c1", Alive: func(string) bool { return true }}); err != nil || out != bridge.Queued {
		t.Fatalf("Queue = %v, %v", out, err)
	}
	cur, wrote, err := r.GiveUp(ctx, "flaky", "numbers", flowstone.DefaultPartition, "rerun", 5, fe)
	if err != nil || !wrote || cur.State != flowstone.StateFailed || cur.Attempt != 5 || cur.Value == nil || cur.Value.RunID != first.RunID {
		t.Fatalf("GiveUp of the queued run = %+v, wrote %v, %v; want failed with the first value", cur, wrote, err)
	}
	if _, err := e.Get(ctx, f.p, "numbers"); err != nil {
		t.Fatalf("Get after a give-up: %v", err)
	}
}

// outageKV fails every write of a completed record with a transient error
// while down is set: a metadata store that goes away just as an
// execution ends.
type outageKV struct {
	kv.Store
	down atomic.Bool
}

func (s *outageKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if s.down.Load() && strings.Contains(string(value), `"completed"`) {
		return 0, &transient.TimeoutError{Op: "test outage", After: time.Millisecond}
	}
	return s.Store.Update(ctx, key, value, rev)
}

// lostReplyKV lands the first write of a completed record while armed,
// and then fails it and every later call with a transient error until
// healed: the store goes away just after taking the outcome, so the
// writer never learns that it landed.
type lostReplyKV struct {
	kv.Store
	armed, down atomic.Bool
}

func (s *lostReplyKV) fault() error {
	return &transient.TimeoutError{Op: "test outage", After: time.Millisecond}
}

func (s *lostReplyKV) Get(ctx context.Context, key string) (kv.Entry, error) {
	if s.down.Load() {
		return kv.Entry{}, s.fault()
	}
	return s.Store.Get(ctx, key)
}

func (s *lostReplyKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if s.down.Load() {
		return 0, s.fault()
	}
	if s.armed.Load() && strings.Contains(string(value), `"completed"`) {
		if _, err := s.Store.Update(ctx, key, value, rev); err != nil {
			return 0, err
		}
		s.down.Store(true)
		return 0, s.fault()
	}
	return s.Store.Update(ctx, key, value, rev)
}

// An outcome whose write landed but whose reply was lost (and the store
// unreachable until the claim lapsed) keeps its result: the record points
// to it, so Get reads the value once the store is back. (The result was
// deleted as nobody's, and Get failed with "object not found".)
func TestOutcomeWithALostReplyKeepsItsResult(t *testing.T) {
	const lease = 300 * time.Millisecond
	store := &lostReplyKV{Store: kv.NewMemory()}
	objects := objectstore.NewMemory()
	a, b := executorsOn(t, store, objects, lease)
	p := flowstone.MustPipeline("p", flowstone.Asset("x", func(*flowstone.Context) (any, error) { return 42, nil },
		flowstone.StorageOf("memory")))
	task := bridge.Task{RunID: "run-1", Asset: "x", Partition: "default", Attempt: 1}

	store.armed.Store(true)
	_, err := a.Execute(ctxT(t), p, task)
	if !errors.Is(err, bridge.ErrHandedBack) {
		t.Fatalf("Execute with the reply lost = %v; want an error wrapping ErrHandedBack", err)
	}
	store.armed.Store(false)
	store.down.Store(false)

	rec, _, err := a.Records().Read(ctxT(t), bridge.MaterializationKey("p", "x", "default"))
	if err != nil || rec == nil || rec.State != flowstone.StateCompleted || rec.Value == nil || rec.Value.ObjectKey == "" {
		t.Fatalf("record = %+v, %v; want the outcome that landed, pointing to an object", rec, err)
	}
	if _, err := objects.Stat(ctxT(t), rec.Value.ObjectKey); err != nil {
		t.Fatalf("the object the completed record points to: %v", err)
	}
	// The redelivered task finds the outcome and runs nothing.
	task.Attempt = 2
	got, err := b.Execute(ctxT(t), p, task)
	if err != nil || got.State != flowstone.StateCompleted || got.Attempt != 1 {
		t.Fatalf("redelivered Execute = %+v, %v; want the landed outcome of attempt 1", got, err)
	}
}

// A seed that fails leaves the record and its value together: one whose
// write landed unseen (its reply lost, the store then unreachable) keeps
// the result the record now points to; one that fails before writing
// leaves the value it was to replace as it was. (The first result was
// deleted as nobody's; and every seed wrote the same object, so a failed
// seed overwrote the current value's bytes and deleted them.)
func TestFailedSeedLeavesRecordAndValueTogether(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(*lostReplyKV)
		want  int
	}{
		{"reply lost after the write", func(s *lostReplyKV) { s.armed.Store(true) }, 2},
		{"store down before the write", func(s *lostReplyKV) { s.down.Store(true) }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &lostReplyKV{Store: kv.NewMemory()}
			e, err := flowstone.NewEngine(flowstone.EngineConfig{KV: store})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			p := flowstone.MustPipeline("p", flowstone.Asset("x", func(*flowstone.Context) (any, error) { return 0, nil }))
			if err := e.Seed(ctxT(t), p, "x", 1, flowstone.Storage("memory")); err != nil {
				t.Fatal(err)
			}
			tc.fault(store)
			ctx, cancel := context.WithTimeout(ctxT(t), 300*time.Millisecond)
			defer cancel()
			if err := e.Seed(ctx, p, "x", 2, flowstone.Storage("memory")); err == nil {
				t.Fatal("Seed succeeded with the store unreachable")
			}
			store.armed.Store(false)
			store.down.Store(false)
			res, err := e.Get(ctxT(t), p, "x")
			if err != nil {
				t.Fatalf("Get after the failed seed: %v; want the value the record points to", err)
			}
			if got := decodeInt(t, res); got != tc.want {
				t.Fatalf("Get = %d, want %d", got, tc.want)
			}
		})
	}
}

// An execution whose outcome cannot be recorded before its claim lapses
// hands its task back (the fleet redelivers it) instead of failing it:
// the record is not failed, and the next delivery takes the lapsed claim
// over and completes the task.
func TestUnrecordableOutcomeHandsTheTaskBack(t *testing.T) {
	const lease = 300 * time.Millisecond
	store := &outageKV{Store: kv.NewMemory()}
	a, b := executorsOn(t, store, objectstore.NewMemory(), lease)
	p := flowstone.MustPipeline("p", flowstone.Asset("x", func(*flowstone.Context) (any, error) { return 42, nil }))
	task := bridge.Task{RunID: "run-1", Asset: "x", Partition: "default", Attempt: 1}

	store.down.Store(true)
	_, err := a.Execute(ctxT(t), p, task)
	if !errors.Is(err, bridge.ErrHandedBack) {
		t.Fatalf("Execute during the outage = %v; want an error wrapping ErrHandedBack", err)
	}
	rec, _, err := a.Records().Read(ctxT(t), bridge.MaterializationKey("p", "x", "default"))
	if err != nil || rec == nil || rec.State != flowstone.StateRunning {
		t.Fatalf("record after the outage = %+v, %v; want the lapsing claim (running), not a failure", rec, err)
	}

	store.down.Store(false)
	task.Attempt = 2
	rec, err = b.Execute(ctxT(t), p, task)
	if err != nil || rec.State != flowstone.StateCompleted || rec.Attempt != 2 || rec.Worker != "worker-b" {
		t.Fatalf("redelivered Execute = %+v, %v; want completed by worker-b, attempt 2", rec, err)
	}
}
