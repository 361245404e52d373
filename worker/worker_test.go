package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/fleettest"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
)

func TestTaskIsExecutedRecordedCompletedAndAcked(t *testing.T) {
	e := newFleet(t)
	w := e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipelines.Example()}})

	first := task("example", "numbers", protocol.DefaultPartition, 0)
	e.publish(first)
	c := e.completion()
	if !c.OK || c.TaskID != first.ID || c.RunID != first.RunID || c.Worker != w.ID() || c.Attempt != 1 || c.Storage != flowstone.InlineStorage {
		t.Fatalf("completion = %+v", c)
	}
	rec := e.record("example", "numbers", protocol.DefaultPartition)
	if rec.State != flowstone.StateCompleted || rec.RunID != first.RunID || rec.Worker != w.ID() || rec.Value.ObjectKey != c.ObjectKey || rec.Value.SHA256 != c.SHA256 {
		t.Fatalf("record = %+v", rec)
	}

	// The next task of the run reads the first result through its DepRef.
	second := task("example", "doubled", protocol.DefaultPartition, 2)
	second.RunID, second.ID = first.RunID, protocol.TaskID(first.RunID, "doubled", protocol.DefaultPartition, 1)
	second.Deps = []protocol.DepRef{{Asset: "numbers", Partition: protocol.DefaultPartition, ResultRef: c.ResultRef}}
	e.publish(second)
	c = e.completion()
	if !c.OK || c.TaskID != second.ID {
		t.Fatalf("completion = %+v", c)
	}
	// Small results travel inside records and completions.
	if string(c.Inline) != "[2,4,6,8,10]" || c.ObjectKey != "" {
		t.Fatalf("doubled = %s (object %q)", c.Inline, c.ObjectKey)
	}
	if rec := e.record("example", "doubled", protocol.DefaultPartition); len(rec.Value.Upstream) != 1 || rec.Value.Upstream[0].Asset != "numbers" {
		t.Fatalf("lineage = %+v", rec.Value.Upstream)
	}

	for _, prio := range []int{0, 2} {
		if info := e.waitSettled("example", prio); info.NumRedelivered != 0 {
			t.Errorf("p%d consumer: redelivered %d", prio, info.NumRedelivered)
		}
	}
	if n := e.streamMsgs(); n != 0 {
		t.Errorf("task stream holds %d messages after the acks", n)
	}
	waitFor(t, "stats of 2 successes", func() bool { return w.Stats() == worker.Stats{Started: 2, Succeeded: 2} })
}

func TestFailureIsRecordedAndCompleted(t *testing.T) {
	e := newFleet(t)
	p := flowstone.MustPipeline("failing",
		flowstone.Asset("boom", func(*flowstone.Context) (any, error) { return nil, errors.New("source is down") }),
		flowstone.Asset("slow", func(c *flowstone.Context) (any, error) {
			<-c.Context().Done()
			return nil, c.Context().Err()
		}))
	w := e.start(worker.Config{Pipelines: []*flowstone.Pipeline{p}})

	e.publish(task("failing", "boom", protocol.DefaultPartition, 0))
	c := e.completion()
	if c.OK || errCode(c) != protocol.CodeExecutionFailed || !strings.Contains(c.Error.Message, "source is down") || c.ObjectKey != "" {
		t.Fatalf("completion = %+v %+v", c, c.Error)
	}
	if rec := e.record("failing", "boom", protocol.DefaultPartition); rec.State != flowstone.StateFailed {
		t.Fatalf("record state = %s", rec.State)
	}

	timed := task("failing", "slow", protocol.DefaultPartition, 0)
	timed.TimeoutMS = 50
	e.publish(timed)
	if c := e.completion(); errCode(c) != protocol.CodeTimeout || !strings.Contains(c.Error.Message, "timeout") {
		t.Fatalf("completion = %+v %+v", c, c.Error)
	}

	late := task("failing", "slow", "late", 0)
	past := time.Now().Add(-time.Minute).UTC()
	late.Deadline = &past
	e.publish(late)
	if c := e.completion(); errCode(c) != protocol.CodeTimeout || !strings.Contains(c.Error.Message, "deadline") {
		t.Fatalf("completion = %+v %+v", c, c.Error)
	}

	unknown := task("failing", "nope", protocol.DefaultPartition, 0)
	e.publish(unknown)
	if c := e.completion(); errCode(c) != protocol.CodeAssetNotFound {
		t.Fatalf("completion = %+v %+v", c, c.Error)
	}
	e.waitSettled("failing", 0)
	waitFor(t, "stats of 4 failures", func() bool { return w.Stats() == worker.Stats{Started: 4, Failed: 4} })
}

func TestHeartbeatsKeepALongTaskFromRedelivery(t *testing.T) {
	e := newFleet(t)
	var runs int
	p := flowstone.MustPipeline("long", flowstone.Asset("three_seconds", func(c *flowstone.Context) (any, error) {
		runs++
		timer := time.NewTimer(3 * time.Second) // three AckWaits
		defer timer.Stop()
		select {
		case <-timer.C:
			return "done", nil
		case <-c.Context().Done():
			return nil, c.Context().Err()
		}
	}))
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{p}, AckWait: time.Second})
	// A second worker would take a redelivered task: there must be none.
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{p}, AckWait: time.Second})

	e.publish(task("long", "three_seconds", protocol.DefaultPartition, 0))
	c := e.completion()
	if !c.OK || c.Attempt != 1 || runs != 1 {
		t.Fatalf("completion ok=%v attempt=%d, executions %d", c.OK, c.Attempt, runs)
	}
	if info := e.waitSettled("long", 0); info.NumRedelivered != 0 {
		t.Fatalf("redelivered %d", info.NumRedelivered)
	}
}

func TestCancelStopsRunningTaskAndRefusesLaterOnes(t *testing.T) {
	e := newFleet(t)
	g := newGate()
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{gatePipeline(g)}})

	running := task("gated", "gate", "a", 0)
	e.publish(running)
	g.next(t)
	if err := e.nc.Publish(protocol.CancelSubject(running.RunID), nil); err != nil {
		t.Fatal(err)
	}
	c := e.completion()
	if c.OK || errCode(c) != protocol.CodeCancelled || c.TaskID != running.ID {
		t.Fatalf("completion = %+v %+v", c, c.Error)
	}
	rec := e.record("gated", "gate", "a")
	if rec.State != flowstone.StateCancelled || rec.Error == nil || !strings.Contains(rec.Error.Message, running.RunID) {
		t.Fatalf("record = %+v", rec)
	}

	// A later task of the cancelled run never executes.
	later := task("gated", "gate", "b", 0)
	later.RunID, later.ID = running.RunID, protocol.TaskID(running.RunID, "gate", "b", 1)
	e.publish(later)
	if c := e.completion(); c.TaskID != later.ID || errCode(c) != protocol.CodeCancelled {
		t.Fatalf("completion = %+v %+v", c, c.Error)
	}
	// Another run is unaffected.
	other := task("gated", "gate", "c", 0)
	e.publish(other)
	if p := g.next(t); p != "c" {
		t.Fatalf("executed partition %q", p)
	}
	g.release <- struct{}{}
	if c := e.completion(); !c.OK || c.TaskID != other.ID {
		t.Fatalf("completion = %+v", c)
	}
	if n := g.calls.Load(); n != 2 {
		t.Fatalf("%d executions, want 2 (the cancelled run's second task must not run)", n)
	}
}

func TestPriorityOrderUnderSaturation(t *testing.T) {
	e := newFleet(t)
	g := newGate()
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{gatePipeline(g)}, Concurrency: 1})

	var low, high []protocol.Task
	for i := range 100 {
		low = append(low, task("gated", "gate", "low-"+itoa(i), 0))
	}
	for i := range 10 {
		high = append(high, task("gated", "gate", "high-"+itoa(i), 3))
	}
	for _, tk := range low {
		e.publish(tk)
	}
	for _, tk := range high {
		e.publish(tk)
	}
	var order []string
	for range len(low) + len(high) {
		order = append(order, g.next(t))
		g.release <- struct{}{}
	}
	for range len(low) + len(high) {
		e.completion()
	}
	lastHigh := 0
	for i, p := range order {
		if strings.HasPrefix(p, "high-") {
			lastHigh = i
		}
	}
	// The worker was busy with low tasks while the high ones were being
	// published; once they are queued, each free slot goes to them.
	started := slices.IndexFunc(order, func(p string) bool { return strings.HasPrefix(p, "high-") })
	if lastHigh-started != len(high)-1 || lastHigh > 20 {
		t.Fatalf("high priority tasks ran at positions %d..%d of %d: %v", started, lastHigh, len(order), order[:min(len(order), 30)])
	}
}

func TestGracefulStopFinishesRunningTask(t *testing.T) {
	e := newFleet(t)
	g := newGate()
	w := e.newWorker(worker.Config{Pipelines: []*flowstone.Pipeline{gatePipeline(g)}})
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	tk := task("gated", "gate", "x", 0)
	e.publish(tk)
	g.next(t)

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		stopped <- w.Stop(ctx)
	}()
	waitStopping(t, w)
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a task was running", err)
	default:
	}
	g.release <- struct{}{}
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	// Acked before Stop returned: the worker is gone, so an unacked task
	// would stay pending for AckWait (30s), longer than waitSettled waits.
	e.waitSettled("gated", 0)
	if c := e.completion(); !c.OK || c.TaskID != tk.ID {
		t.Fatalf("completion = %+v", c)
	}
	if err := w.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestStopAfterGraceHandsTaskToAnotherWorker(t *testing.T) {
	e := newFleet(t)
	g := newGate()
	first := e.newWorker(worker.Config{Pipelines: []*flowstone.Pipeline{gatePipeline(g)}})
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	tk := task("gated", "gate", "x", 0)
	e.publish(tk)
	g.next(t)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := first.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop after the grace period = %v, want it to wrap DeadlineExceeded", err)
	}
	// Not over: a coordinator reading the record must not end the run.
	if rec := e.record("gated", "gate", "x"); rec.State != flowstone.StatePending || rec.RunID != tk.RunID {
		t.Fatalf("record of the handed back task = %+v, want pending", rec)
	}
	handedBack := time.Now()
	second := e.start(worker.Config{Pipelines: []*flowstone.Pipeline{gatePipeline(g)}})
	g.next(t)
	// Nak'ed, so at once: without it the task would wait for AckWait (30s).
	if d := time.Since(handedBack); d > 10*time.Second {
		t.Fatalf("the handed back task took %v to reach another worker", d)
	}
	g.release <- struct{}{}
	c := e.completion()
	if !c.OK || c.Worker != second.ID() || c.Attempt != 2 {
		t.Fatalf("completion = %+v (want ok from %s, attempt 2)", c, second.ID())
	}
	if rec := e.record("gated", "gate", "x"); rec.State != flowstone.StateCompleted || rec.Worker != second.ID() || rec.Attempt != 2 {
		t.Fatalf("record = %+v", rec)
	}
	if s := first.Stats(); s.Succeeded+s.Failed != 0 {
		t.Fatalf("the stopped worker completed the task it handed back: %+v", s)
	}
}

func TestMalformedTaskIsTerminated(t *testing.T) {
	e := newFleet(t)
	w := e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipelines.Example()}})

	subject := protocol.TaskSubject("example", 0)
	e.publishRaw(subject, []byte("{not json"), "bad1")
	wrongVersion, _ := json.Marshal(map[string]any{"v": 99, "id": "x"})
	e.publishRaw(subject, wrongVersion, "bad2")
	elsewhere := task("sales", "numbers", protocol.DefaultPartition, 0) // another pipeline's task on this subject
	body, _ := protocol.EncodeTask(elsewhere)
	e.publishRaw(subject, body, "bad3")
	good := task("example", "numbers", protocol.DefaultPartition, 0)
	e.publish(good)

	if c := e.completion(); !c.OK || c.TaskID != good.ID {
		t.Fatalf("completion = %+v", c)
	}
	if info := e.waitSettled("example", 0); info.NumRedelivered != 0 {
		t.Fatalf("consumer: redelivered %d", info.NumRedelivered)
	}
	if n := e.streamMsgs(); n != 0 {
		t.Fatalf("stream holds %d messages: malformed ones were not terminated", n)
	}
	if s := w.Stats(); s.Started != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestManifestsArePublishedAndDeletedOnStop(t *testing.T) {
	e := newFleet(t)
	ps := pipelines.All(pipelines.Options{})
	w := e.newWorker(worker.Config{Pipelines: ps})
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	kv, err := e.js.KeyValue(context.Background(), protocol.ManifestsBucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		ent, err := kv.Get(context.Background(), protocol.ManifestKey(p.Name(), w.ID()))
		if err != nil {
			t.Fatalf("manifest of %s: %v", p.Name(), err)
		}
		m, perr := protocol.DecodeManifest(ent.Value())
		if perr != nil || m.Pipeline != p.Name() || m.Worker != w.ID() || len(m.Assets) == 0 {
			t.Fatalf("manifest of %s = %+v, %v", p.Name(), m, perr)
		}
	}
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if _, err := kv.Get(context.Background(), protocol.ManifestKey(p.Name(), w.ID())); err == nil {
			t.Fatalf("manifest of %s survived Stop", p.Name())
		}
	}
}

func TestConcurrencyBoundsRunningTasks(t *testing.T) {
	const n = 3
	e := newFleet(t)
	g := newGate()
	w := e.start(worker.Config{Pipelines: []*flowstone.Pipeline{gatePipeline(g)}, Concurrency: n})
	for i := range 4 * n {
		e.publish(task("gated", "gate", "p"+itoa(i), 0))
	}
	for range n {
		g.next(t)
	}
	if s := w.Stats(); s.Running != n {
		t.Fatalf("running %d, want %d", s.Running, n)
	}
	// From now on each release lets exactly one more start.
	for range 3 * n {
		g.release <- struct{}{}
		g.next(t)
	}
	for range n {
		g.release <- struct{}{}
	}
	for range 4 * n {
		if c := e.completion(); !c.OK {
			t.Fatalf("completion = %+v", c)
		}
	}
	if peak := g.peak.Load(); peak != n {
		t.Fatalf("peak concurrency %d, want %d", peak, n)
	}
}

func TestEventsArePublished(t *testing.T) {
	e := newFleet(t)
	sub, err := e.nc.SubscribeSync(protocol.EventSubjects)
	if err != nil {
		t.Fatal(err)
	}
	e.nc.Flush()
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipelines.Example()}})
	first := task("example", "numbers", protocol.DefaultPartition, 0)
	e.publish(first)
	c := e.completion()
	second := task("example", "doubled", protocol.DefaultPartition, 0)
	second.RunID, second.ID = first.RunID, protocol.TaskID(first.RunID, "doubled", protocol.DefaultPartition, 1)
	second.Deps = []protocol.DepRef{{Asset: "numbers", Partition: protocol.DefaultPartition, ResultRef: c.ResultRef}}
	e.publish(second)
	e.completion()

	// Each kind's events come in batches of their own subject, in the
	// order they happened: numbers's, then doubled's (whose loads name the
	// dependency loaded).
	want := map[protocol.EventKind][]string{
		protocol.EventRunStart:          {"numbers", "doubled"},
		protocol.EventRunStop:           {"numbers", "doubled"},
		protocol.EventStorageStoreStart: {"numbers", "doubled"},
		protocol.EventStorageStoreStop:  {"numbers", "doubled"},
		protocol.EventStorageLoadStart:  {"numbers"},
		protocol.EventStorageLoadStop:   {"numbers"},
	}
	got := map[protocol.EventKind][]string{}
	for n := 0; n < 10; {
		m, err := sub.NextMsg(wait)
		if err != nil {
			t.Fatalf("after %d events: %v (got %v)", n, err, got)
		}
		b, perr := protocol.DecodeEventBatch(m.Data)
		if perr != nil {
			t.Fatalf("batch on %s: %v", m.Subject, perr)
		}
		if b.Pipeline != "example" || m.Subject != protocol.EventSubject("example", b.Kind) {
			t.Fatalf("batch of %s/%s on %s", b.Pipeline, b.Kind, m.Subject)
		}
		for _, ev := range b.Events {
			n++
			if ev.RunID != first.RunID || ev.Partition != protocol.DefaultPartition || ev.Metadata["worker"] == nil {
				t.Fatalf("event %d on %s = %+v", n, m.Subject, ev)
			}
			if (ev.Kind == protocol.EventRunStop || ev.Kind == protocol.EventStorageStoreStop) && ev.DurationNS <= 0 {
				t.Fatalf("event %d has no duration: %+v", n, ev)
			}
			got[ev.Kind] = append(got[ev.Kind], ev.Asset)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events by kind = %v, want %v", got, want)
	}
	if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("unexpected message on %s: %s", m.Subject, m.Data)
	}
}

func TestNoEventsPublishesNone(t *testing.T) {
	e := newFleet(t)
	// One subscription on one connection sees the worker's messages in the
	// order it sent them: an event would come before the completion.
	sub, err := e.nc.SubscribeSync("flowstone.>")
	if err != nil {
		t.Fatal(err)
	}
	e.nc.Flush()
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipelines.Example()}, NoEvents: true})
	tk := task("example", "numbers", protocol.DefaultPartition, 0)
	e.publish(tk)
	for {
		m, err := sub.NextMsg(wait)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(m.Subject, "flowstone.event.") {
			t.Fatalf("event published with NoEvents: %s", m.Subject)
		}
		if strings.HasPrefix(m.Subject, "flowstone.done.") {
			return
		}
	}
}

func TestNewNamesTheBadField(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	stores := map[string]objectstore.Store{"memory": objectstore.NewMemory()}
	ps := []*flowstone.Pipeline{pipelines.Example()}
	for _, tc := range []struct {
		field string
		cfg   worker.Config
	}{
		{"Conn", worker.Config{Pipelines: ps, Stores: stores}},
		{"Pipelines", worker.Config{Conn: nc, Stores: stores}},
		{"Pipelines", worker.Config{Conn: nc, Stores: stores, Pipelines: []*flowstone.Pipeline{ps[0], ps[0]}}},
		{"Stores", worker.Config{Conn: nc, Pipelines: ps}},
		{"DefaultStorage", worker.Config{Conn: nc, Pipelines: ps, Stores: stores, DefaultStorage: "s3"}},
		{"Concurrency", worker.Config{Conn: nc, Pipelines: ps, Stores: stores, Concurrency: -1}},
		{"ID", worker.Config{Conn: nc, Pipelines: ps, Stores: stores, ID: "has.dots"}},
		{"AckWait", worker.Config{Conn: nc, Pipelines: ps, Stores: stores, AckWait: -time.Second}},
	} {
		_, err := worker.New(tc.cfg)
		var fe *flowstone.Error
		if !errors.As(err, &fe) || fe.Type != flowstone.TypeConfigError || fe.Details["field"] != tc.field {
			t.Errorf("New with a bad %s: %v", tc.field, err)
		}
	}
	w, err := worker.New(worker.Config{Conn: nc, Pipelines: ps, Stores: stores})
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.ValidID(w.ID()); err != nil {
		t.Fatalf("default id %q: %v", w.ID(), err)
	}
	if err := w.Stop(context.Background()); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
}

func TestStartTwiceFails(t *testing.T) {
	e := newFleet(t)
	w := e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipelines.Example()}})
	if err := w.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
}

func TestDeletedConsumerIsRebound(t *testing.T) {
	e := newFleet(t)
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipelines.Example()}})
	if err := e.js.DeleteConsumer(context.Background(), protocol.TaskStream, fleet.ConsumerName("example", 0)); err != nil {
		t.Fatal(err)
	}
	tk := task("example", "numbers", protocol.DefaultPartition, 0)
	e.publish(tk)
	if c := e.completion(); !c.OK || c.TaskID != tk.ID {
		t.Fatalf("completion = %+v", c)
	}
}

func TestMissingOptionalDependencyReadsAsMissing(t *testing.T) {
	e := newFleet(t)
	p := flowstone.MustPipeline("optional",
		flowstone.Asset("extra", func(*flowstone.Context) (any, error) { return 1, nil }),
		flowstone.Asset("report", func(c *flowstone.Context) (any, error) {
			if c.HasDep("extra") {
				return "with extra", nil
			}
			_, err := flowstone.Dep[int](c, "extra")
			if !errors.Is(err, flowstone.ErrNotFound) {
				return nil, fmt.Errorf("reading the missing optional dependency: %v, want not_found", err)
			}
			return "without extra", nil
		}, flowstone.OptionalDeps("extra")))
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{p}})
	// The coordinator leaves an optional dependency without a value out.
	e.publish(task("optional", "report", protocol.DefaultPartition, 0))
	c := e.completion()
	if !c.OK {
		t.Fatalf("completion = %+v %+v", c, c.Error)
	}
	if string(c.Inline) != `"without extra"` {
		t.Fatalf("report = %s", c.Inline)
	}
}

// A busy worker asks only the consumers that have tasks: one hosting
// several pipelines does not send a fetch to every consumer of every
// priority for each batch it takes. An empty consumer is asked again when
// its bell rings or its idle poll comes (an hour here), not per batch.
func TestBusyWorkerSkipsEmptyConsumers(t *testing.T) {
	e := newFleet(t)
	fetches := fleettest.CountFetches(t, e.srv)
	busy := flowstone.MustPipeline("busy", flowstone.Asset("noop", func(*flowstone.Context) (any, error) { return 1, nil }))
	idle := flowstone.MustPipeline("idle", flowstone.Asset("noop", func(*flowstone.Context) (any, error) { return 1, nil }))
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{busy, idle}, Concurrency: 2, IdlePoll: time.Hour})
	const n = 300
	for i := range n {
		e.publish(task("busy", "noop", "p"+itoa(i), 0))
	}
	for range n {
		if c := e.completion(); !c.OK {
			t.Fatalf("completion = %+v", c)
		}
	}
	counts := fetches.Counts()
	busyFetches := counts[fleet.ConsumerName("busy", 0)]
	if busyFetches < 10 {
		t.Fatalf("the busy consumer was fetched %d times for %d tasks", busyFetches, n)
	}
	for _, p := range []string{"busy", "idle"} {
		for prio := range protocol.MaxPriority + 1 {
			name := fleet.ConsumerName(p, prio)
			if p == "busy" && prio == 0 {
				continue
			}
			// The first look finds it empty; nothing rings it after.
			if k := counts[name]; k > 1 {
				t.Errorf("empty consumer %s fetched %d times, the busy one %d times, for %d tasks", name, k, busyFetches, n)
			}
		}
	}
	t.Logf("busy consumer: %d fetches; empty ones: %v", busyFetches, counts)
}
