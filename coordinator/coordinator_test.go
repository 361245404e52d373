package coordinator_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRunGetStatusEndToEnd(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	e.startWorker(pipelines.All(pipelines.Options{})...)
	e.waitPipeline("example")

	rep, rec := e.run(protocol.RunRequest{Pipeline: "example", Asset: "sum"})
	if rec.State != protocol.StateCompleted || rep.RunID == "" {
		t.Fatalf("run ended %s: %v", rec.State, rec.Error)
	}
	got, perr := call[protocol.GetReply](e, protocol.VerbGet, protocol.GetRequest{V: protocol.Version, Pipeline: "example", Asset: "sum"})
	if perr != nil {
		t.Fatal(perr)
	}
	if string(got.Value) != "30" || got.RunID != rep.RunID || got.Storage != "inline" || len(got.SHA256) != 64 {
		t.Fatalf("get = %+v (value %s)", got, got.Value)
	}
	// A second run is answered from the cache at once.
	rep2, _ := e.run(protocol.RunRequest{Pipeline: "example", Asset: "sum"})
	if !rep2.Cached || rep2.RunID != rep.RunID {
		t.Fatalf("second run = %+v", rep2)
	}
	st, perr := call[protocol.StatusReply](e, protocol.VerbStatus, protocol.StatusRequest{V: protocol.Version, Pipeline: "example", Asset: "doubled"})
	if perr != nil || st.State != protocol.StateCompleted || st.CompletedAt == nil {
		t.Fatalf("status = %+v %v", st, perr)
	}
	ex, _ := call[protocol.ExistsReply](e, protocol.VerbExists, protocol.ExistsRequest{V: protocol.Version, Pipeline: "example", Asset: "numbers"})
	if !ex.Exists {
		t.Fatal("numbers does not exist after the run")
	}
	inv, perr := call[protocol.InvalidateReply](e, protocol.VerbInvalidate, protocol.InvalidateRequest{V: protocol.Version, Pipeline: "example", Asset: "numbers", Cascade: true})
	if perr != nil || inv.Count != 3 {
		t.Fatalf("invalidate = %+v %v", inv, perr)
	}
	_, perr = call[protocol.GetReply](e, protocol.VerbGet, protocol.GetRequest{V: protocol.Version, Pipeline: "example", Asset: "sum"})
	wantCode(t, perr, protocol.CodeNotFound)
}

func TestInspectionVerbs(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	e.startWorker(pipelines.All(pipelines.Options{})...)
	e.waitPipeline("daily_sales")
	g, perr := call[protocol.GraphReply](e, protocol.VerbGraph, protocol.GraphRequest{V: protocol.Version, Pipeline: "daily_sales"})
	if perr != nil || g.Graph != "orders\n└── cleaned\n    └── revenue\n" {
		t.Fatalf("graph = %q %v", g.Graph, perr)
	}
	g, _ = call[protocol.GraphReply](e, protocol.VerbGraph, protocol.GraphRequest{V: protocol.Version, Pipeline: "daily_sales", Format: protocol.GraphMermaid})
	if !strings.Contains(g.Graph, "orders --> cleaned") {
		t.Fatalf("mermaid = %q", g.Graph)
	}
	as, _ := call[protocol.AssetsReply](e, protocol.VerbAssets, protocol.AssetsRequest{V: protocol.Version, Pipeline: "daily_sales"})
	if strings.Join(as.Assets, ",") != "orders,cleaned,revenue" {
		t.Fatalf("assets = %v", as.Assets)
	}
	info, perr := call[protocol.InfoReply](e, protocol.VerbInfo, protocol.InfoRequest{V: protocol.Version, Pipeline: "daily_sales", Asset: "cleaned"})
	if perr != nil || info.PartitionedBy != "date" || strings.Join(info.DependsOn, ",") != "orders" || info.Description == "" {
		t.Fatalf("info = %+v %v", info, perr)
	}
	ps, _ := call[protocol.PipelinesReply](e, protocol.VerbPipelines, protocol.PipelinesRequest{V: protocol.Version})
	if len(ps.Pipelines) != len(pipelines.All(pipelines.Options{})) || ps.Pipelines[0].Workers != 1 {
		t.Fatalf("pipelines = %+v", ps.Pipelines)
	}
}

func TestBadRequestsGetStructuredErrorsAndChangeNothing(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	e.startWorker(pipelines.All(pipelines.Options{})...)
	e.waitPipeline("example")
	raw := func(verb, body string) *protocol.Error {
		_, perr := callRaw[protocol.RunReply](e, verb, []byte(body))
		return perr
	}
	wantCode(t, raw(protocol.VerbRun, `{not json`), protocol.CodeBadRequest)
	wantCode(t, raw(protocol.VerbRun, ``), protocol.CodeBadRequest)
	wantCode(t, raw(protocol.VerbRun, `{"v":2,"pipeline":"example","asset":"sum"}`), protocol.CodeUnsupportedVersion)
	wantCode(t, raw(protocol.VerbRun, `{"v":1,"pipeline":"example","asset":"sum","bogus":1}`), protocol.CodeBadRequest)
	wantCode(t, raw(protocol.VerbRun, `{"v":1,"pipeline":"example","asset":"sum","priority":9}`), protocol.CodeBadRequest)
	wantCode(t, raw(protocol.VerbRun, `{"v":1,"pipeline":"../etc","asset":"sum"}`), protocol.CodeBadRequest)
	wantCode(t, raw(protocol.VerbRun, `{"v":1,"pipeline":"nope","asset":"sum"}`), protocol.CodePipelineNotFound)
	wantCode(t, raw(protocol.VerbRun, `{"v":1,"pipeline":"example","asset":"nope"}`), protocol.CodeAssetNotFound)
	wantCode(t, raw(protocol.VerbRun, `{"v":1,"pipeline":"daily_sales","asset":"revenue","partition":"us"}`), protocol.CodeBadRequest)
	// NATS itself refuses messages over its max payload (1 MiB, the
	// protocol's limit too); a partition over its own limit is refused here.
	big := `{"v":1,"pipeline":"example","asset":"sum","partition":"` + strings.Repeat("x", protocol.MaxPartitionBytes+1) + `"}`
	wantCode(t, raw(protocol.VerbRun, big), protocol.CodeBadRequest)
	// A storage no worker of the pipeline has (the env's workers have
	// "file") is refused before anything runs, sync or async.
	for _, async := range []string{"false", "true"} {
		perr := raw(protocol.VerbRun, `{"v":1,"pipeline":"example","asset":"sum","storage":"s4","async":`+async+`}`)
		wantCode(t, perr, protocol.CodeConfigError)
		if perr.Details["storage"] != "s4" || !strings.Contains(perr.Message, "file") {
			t.Fatalf("unknown storage error does not name it and the stores there are: %q %v", perr.Message, perr.Details)
		}
	}
	// Nothing ran.
	for _, a := range []string{"numbers", "doubled", "sum"} {
		st, _ := call[protocol.StatusReply](e, protocol.VerbStatus, protocol.StatusRequest{V: protocol.Version, Pipeline: "example", Asset: a})
		if st.State != protocol.StateNotFound {
			t.Fatalf("%s is %s after bad requests", a, st.State)
		}
	}
	// An unpartitioned asset has one partition: every verb refuses
	// another, as the embedded engine does, and nothing runs.
	for _, part := range []string{"../../etc/passwd", "eu"} {
		for verb, req := range map[string]protocol.Request{
			protocol.VerbRun:        protocol.RunRequest{V: protocol.Version, Pipeline: "example", Asset: "sum", Partition: part},
			protocol.VerbGet:        protocol.GetRequest{V: protocol.Version, Pipeline: "example", Asset: "sum", Partition: part},
			protocol.VerbExists:     protocol.ExistsRequest{V: protocol.Version, Pipeline: "example", Asset: "sum", Partition: part},
			protocol.VerbStatus:     protocol.StatusRequest{V: protocol.Version, Pipeline: "example", Asset: "sum", Partition: part},
			protocol.VerbCancel:     protocol.CancelRequest{V: protocol.Version, Pipeline: "example", Asset: "sum", Partition: part},
			protocol.VerbInvalidate: protocol.InvalidateRequest{V: protocol.Version, Pipeline: "example", Asset: "sum", Partition: part},
			protocol.VerbBackfill:   protocol.BackfillRequest{V: protocol.Version, Pipeline: "example", Asset: "sum", Partitions: []string{part}},
		} {
			_, perr := call[protocol.StatusReply](e, verb, req)
			if perr == nil || perr.Code != protocol.CodeBadRequest || perr.Details["asset"] != "sum" {
				t.Errorf("%s of example/sum partition %q: %v, want bad_request", verb, part, perr)
			}
		}
	}
	// So does a partitioned asset a key of another scheme, on status as
	// on run.
	for _, verb := range []string{protocol.VerbStatus, protocol.VerbGet, protocol.VerbExists, protocol.VerbRun} {
		_, perr := callRaw[protocol.StatusReply](e, verb, []byte(`{"v":1,"pipeline":"daily_sales","asset":"revenue","partition":"eu"}`))
		wantCode(t, perr, protocol.CodeBadRequest)
	}
	for _, a := range []string{"numbers", "doubled", "sum"} {
		st, _ := call[protocol.StatusReply](e, protocol.VerbStatus, protocol.StatusRequest{V: protocol.Version, Pipeline: "example", Asset: a})
		if st.State != protocol.StateNotFound {
			t.Fatalf("%s is %s after refused partitions", a, st.State)
		}
	}
	// Hostile partition text of an asset that takes any key is data, not
	// a subject or a path.
	e.startWorker(flowstone.MustPipeline("keyed", flowstone.Asset("echo", func(c *flowstone.Context) (any, error) {
		return c.Partition(), nil
	}, flowstone.PartitionedBy(flowstone.AnyKey))))
	e.waitPipeline("keyed")
	for _, part := range []string{"flowstone.api.>", "../../x", "a b*c", "ünï"} {
		_, rec := e.run(protocol.RunRequest{Pipeline: "keyed", Asset: "echo", Partition: part})
		if rec.State != protocol.StateCompleted {
			t.Fatalf("partition %q: %s %v", part, rec.State, rec.Error)
		}
		got, perr := call[protocol.GetReply](e, protocol.VerbGet, protocol.GetRequest{V: protocol.Version, Pipeline: "keyed", Asset: "echo", Partition: part})
		if want, _ := json.Marshal(part); perr != nil || got.Partition != part || string(got.Value) != string(want) {
			t.Fatalf("get %q = %+v %v", part, got, perr)
		}
	}
}

// counting is a pipeline whose executions are counted and can be held.
func counting(name string, execs *atomic.Int32, hold <-chan struct{}, started chan<- string) *flowstone.Pipeline {
	return flowstone.MustPipeline(name,
		flowstone.Asset("base", func(c *flowstone.Context) (any, error) {
			execs.Add(1)
			return 1, nil
		}, flowstone.PartitionedBy(flowstone.AnyKey)),
		flowstone.Asset("slow", func(c *flowstone.Context) (any, error) {
			execs.Add(1)
			if started != nil {
				started <- c.RunID()
			}
			select {
			case <-hold:
				return "done", nil
			case <-c.Context().Done():
				return nil, c.Context().Err()
			}
		}, flowstone.DependsOn("base")),
	)
}

func TestConcurrentRunsExecuteOnceOnTheFleet(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	var execs atomic.Int32
	hold := make(chan struct{})
	started := make(chan string, 10)
	e.startWorker(counting("count", &execs, hold, started))
	e.waitPipeline("count")
	var wg sync.WaitGroup
	recs := make([]protocol.RunRecord, 5)
	for i := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, recs[i] = e.run(protocol.RunRequest{Pipeline: "count", Asset: "slow"})
		}()
	}
	<-started
	time.Sleep(100 * time.Millisecond) // let the other requests arrive while it runs
	close(hold)
	wg.Wait()
	for i, r := range recs {
		if r.State != protocol.StateCompleted {
			t.Fatalf("run %d: %s %v", i, r.State, r.Error)
		}
	}
	if n := execs.Load(); n != 2 {
		t.Fatalf("base+slow executed %d times for 5 concurrent runs, want 2", n)
	}
}

func TestCancelReachesAssetOnRemoteWorker(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	var execs atomic.Int32
	started := make(chan string, 1)
	e.startWorker(counting("count", &execs, nil, started))
	e.waitPipeline("count")
	rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "count", Asset: "slow"})
	if perr != nil {
		t.Fatal(perr)
	}
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("slow never started")
	}
	c, perr := call[protocol.CancelReply](e, protocol.VerbCancel, protocol.CancelRequest{V: protocol.Version, Pipeline: "count", Asset: "slow"})
	if perr != nil || c.Cancelled < 1 {
		t.Fatalf("cancel = %+v %v", c, perr)
	}
	rec := e.waitRun(rep.RunID)
	if rec.State != protocol.StateCancelled || rec.Error == nil || rec.Error.Code != protocol.CodeCancelled {
		t.Fatalf("run ended %s %v", rec.State, rec.Error)
	}
	st, _ := call[protocol.StatusReply](e, protocol.VerbStatus, protocol.StatusRequest{V: protocol.Version, Pipeline: "count", Asset: "slow"})
	if st.State != protocol.StateCancelled {
		t.Fatalf("status after cancel = %s", st.State)
	}
}

func TestFailedDependencyOnTheFleet(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	p := flowstone.MustPipeline("fails",
		flowstone.Asset("src", func(*flowstone.Context) (any, error) { return nil, errFire }),
		flowstone.Asset("top", func(*flowstone.Context) (any, error) { return 1, nil }, flowstone.DependsOn("src")))
	e.startWorker(p)
	e.waitPipeline("fails")
	_, rec := e.run(protocol.RunRequest{Pipeline: "fails", Asset: "top"})
	if rec.State != protocol.StateFailed || rec.Error.Code != protocol.CodeDependencyFailed || rec.Error.Details["root_asset"] != "src" ||
		!strings.Contains(rec.Error.Message, "disk on fire") {
		t.Fatalf("run = %s %+v", rec.State, rec.Error)
	}
}

var errFire = jsonErr("disk on fire")

type jsonErr string

func (e jsonErr) Error() string { return string(e) }

func TestScheduledRunNeverStartsEarly(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	ran := make(chan time.Time, 1)
	p := flowstone.MustPipeline("sched", flowstone.Asset("at", func(*flowstone.Context) (any, error) {
		ran <- time.Now()
		return 1, nil
	}))
	e.startWorker(p)
	e.waitPipeline("sched")
	at := time.Now().Add(1500 * time.Millisecond).UTC()
	rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "sched", Asset: "at", Async: true, ScheduledAt: &at, Priority: 2})
	if perr != nil {
		t.Fatal(perr)
	}
	if rep.Job == nil || rep.Job.State != protocol.StateScheduled || rep.Job.Priority != 2 {
		t.Fatalf("job = %+v", rep.Job)
	}
	rec := e.waitRun(rep.RunID)
	if rec.State != protocol.StateCompleted {
		t.Fatalf("scheduled run ended %s %v", rec.State, rec.Error)
	}
	if started := <-ran; started.Before(at) {
		t.Fatalf("started %v before its time %v", started, at)
	}
}

func TestCancelScheduledRun(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	var execs atomic.Int32
	e.startWorker(counting("count", &execs, nil, nil))
	e.waitPipeline("count")
	at := time.Now().Add(time.Hour).UTC()
	rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "count", Asset: "base", Async: true, ScheduledAt: &at})
	if perr != nil {
		t.Fatal(perr)
	}
	c, perr := call[protocol.CancelReply](e, protocol.VerbCancel, protocol.CancelRequest{V: protocol.Version, Pipeline: "count", Asset: "base"})
	if perr != nil || c.Cancelled != 1 {
		t.Fatalf("cancel = %+v %v", c, perr)
	}
	if rec := e.waitRun(rep.RunID); rec.State != protocol.StateCancelled {
		t.Fatalf("state = %s", rec.State)
	}
	if execs.Load() != 0 {
		t.Fatal("a cancelled scheduled run executed")
	}
}

// Status of a partition with a run scheduled for later says so, with the
// time and the run, whichever coordinator is asked; once the run is
// cancelled it says not_found again. A scheduled run of a materialized
// partition is the next attempt; the value stays readable.
func TestStatusOfAScheduledRun(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	var execs atomic.Int32
	e.startWorker(counting("count", &execs, nil, nil))
	e.waitPipeline("count")
	status := func(part string) protocol.StatusReply {
		t.Helper()
		st, perr := call[protocol.StatusReply](e, protocol.VerbStatus, protocol.StatusRequest{V: protocol.Version, Pipeline: "count", Asset: "base", Partition: part})
		if perr != nil {
			t.Fatal(perr)
		}
		return st
	}
	schedule := func(part string, at time.Time, force bool) string {
		t.Helper()
		rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "count", Asset: "base",
			Partition: part, Async: true, ScheduledAt: &at, Force: force})
		if perr != nil {
			t.Fatal(perr)
		}
		return rep.RunID
	}
	later, latest := time.Now().Add(time.Hour).UTC(), time.Now().Add(2*time.Hour).UTC()
	second := schedule("s1", latest, false)
	first := schedule("s1", later, false)
	// Another coordinator answers too: the index is the fleet's.
	e.startCoordinator("c2")
	for range 4 {
		st := status("s1")
		if st.State != protocol.StateScheduled || st.RunID != first || st.ScheduledAt == nil || !st.ScheduledAt.Equal(later) {
			t.Fatalf("status of a scheduled partition = %+v (runs %s, %s)", st, first, second)
		}
	}
	c, perr := call[protocol.CancelReply](e, protocol.VerbCancel, protocol.CancelRequest{V: protocol.Version, Pipeline: "count", Asset: "base", Partition: "s1"})
	if perr != nil || c.Cancelled != 2 {
		t.Fatalf("cancel = %+v %v", c, perr)
	}
	if st := status("s1"); st.State != protocol.StateNotFound || st.ScheduledAt != nil {
		t.Fatalf("status after cancelling its scheduled runs = %+v", st)
	}

	_, done := e.run(protocol.RunRequest{Pipeline: "count", Asset: "base", Partition: "s2"})
	if done.State != protocol.StateCompleted {
		t.Fatalf("run = %+v", done)
	}
	again := schedule("s2", later, true)
	if st := status("s2"); st.State != protocol.StateScheduled || st.RunID != again || st.Value == nil || st.Value.RunID != done.RunID || st.CompletedAt != nil {
		t.Fatalf("status of a materialized partition with a scheduled run = %+v", st)
	}
	if execs.Load() != 1 {
		t.Fatalf("executions = %d, want 1", execs.Load())
	}
}

// An index entry whose run is no longer scheduled (its coordinator died
// before removing it) is not reported, and is dropped.
func TestStaleScheduleIndexEntry(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	var execs atomic.Int32
	e.startWorker(counting("count", &execs, nil, nil))
	e.waitPipeline("count")
	// The index's key: "sched." and the materialization key without "mat.".
	key := "sched." + strings.TrimPrefix(bridge.MaterializationKey("count", "base", "stale"), "mat.")
	runs := e.runsBucket()
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	if _, err := runs.Put(t.Context(), key, []byte(`[{"run_id":"gone","at":"`+at+`"}]`)); err != nil {
		t.Fatal(err)
	}
	st, perr := call[protocol.StatusReply](e, protocol.VerbStatus, protocol.StatusRequest{V: protocol.Version, Pipeline: "count", Asset: "base", Partition: "stale"})
	if perr != nil || st.State != protocol.StateNotFound || st.ScheduledAt != nil {
		t.Fatalf("status with a stale index entry = %+v, %v", st, perr)
	}
	if _, err := runs.Get(t.Context(), key); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("the stale entry's key is still there: %v", err)
	}
}

func TestCoordinatorRestartFinishesTheRun(t *testing.T) {
	e := newEnv(t)
	c1 := e.startCoordinator("restart-me")
	var execs atomic.Int32
	hold := make(chan struct{})
	started := make(chan string, 2)
	e.startWorker(counting("count", &execs, hold, started))
	e.waitPipeline("count")
	rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "count", Asset: "slow"})
	if perr != nil {
		t.Fatal(perr)
	}
	<-started
	// The coordinator goes away mid-run ...
	ctx, cancel := contextWithTimeout(100 * time.Millisecond)
	c1.Stop(ctx)
	cancel()
	// ... the asset finishes meanwhile, and a new coordinator comes up.
	close(hold)
	e.startCoordinator("restart-me")
	rec := e.waitRun(rep.RunID)
	if rec.State != protocol.StateCompleted {
		t.Fatalf("run after restart: %s %v", rec.State, rec.Error)
	}
	got, perr := call[protocol.GetReply](e, protocol.VerbGet, protocol.GetRequest{V: protocol.Version, Pipeline: "count", Asset: "slow"})
	var v string
	if perr != nil || json.Unmarshal(got.Value, &v) != nil || v != "done" {
		t.Fatalf("get after restart = %s %v", got.Value, perr)
	}
	if n := execs.Load(); n != 2 {
		t.Fatalf("executions = %d, want 2 (no recomputation after restart)", n)
	}
}

func TestBackfillReportsErrorsAndHonoursWithDeps(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	e.startWorker(pipelines.All(pipelines.Options{})...)
	e.waitPipeline("daily_sales")
	noDeps := false
	rep, perr := call[protocol.BackfillReply](e, protocol.VerbBackfill, protocol.BackfillRequest{V: protocol.Version,
		Pipeline: "daily_sales", Asset: "revenue", Partitions: []string{"2025-02-01", "2025-02-02"}, WithDeps: &noDeps, Priority: 3})
	if perr != nil || rep.Failed != 2 || rep.Errors["2025-02-01"] == nil || rep.Errors["2025-02-01"].Code != protocol.CodeDependencyFailed {
		t.Fatalf("backfill without deps = %+v %v", rep, perr)
	}
	rep, perr = call[protocol.BackfillReply](e, protocol.VerbBackfill, protocol.BackfillRequest{V: protocol.Version,
		Pipeline: "daily_sales", Asset: "revenue", Partitions: []string{"2025-02-01", "2025-02-02", "2025-02-03"}, Parallel: 2})
	if perr != nil || rep.Succeeded != 3 || rep.Failed != 0 {
		t.Fatalf("backfill = %+v %v", rep, perr)
	}
}

func TestTaskThatNeverFinishesIsGivenUp(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	// A "worker" that takes the task and dies every time: it pulls from the
	// real durable consumer (short AckWait) and never acks.
	js, _ := jetstream.New(e.nc)
	ctx, cancel := contextWithTimeout(60 * time.Second)
	defer cancel()
	if err := fleet.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	cons, err := fleet.TaskConsumer(ctx, js, "ghost", 0, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {}) // take it, never finish
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	// The pipeline is known from a manifest, as if a worker hosted it.
	mf := bridge.Manifest(flowstone.MustPipeline("ghost", flowstone.Asset("a", func(*flowstone.Context) (any, error) { return 1, nil })), "w1")
	body, _ := protocol.EncodeManifest(mf)
	kvs, _ := js.KeyValue(ctx, protocol.ManifestsBucket)
	if _, err := kvs.Put(ctx, protocol.ManifestKey("ghost", "w1"), body); err != nil {
		t.Fatal(err)
	}
	e.waitPipeline("ghost")
	_, rec := e.run(protocol.RunRequest{Pipeline: "ghost", Asset: "a"})
	if rec.State != protocol.StateFailed || rec.Error == nil || !strings.Contains(rec.Error.Message, "never finished") {
		t.Fatalf("run = %s %+v", rec.State, rec.Error)
	}
	info, _ := cons.Info(ctx)
	s, _ := js.Stream(ctx, protocol.TaskStream)
	si, _ := s.Info(ctx)
	if si.State.Msgs != 0 {
		t.Fatalf("the dead task is still in the work queue (%d msgs, consumer %+v)", si.State.Msgs, info.NumPending)
	}
}

func TestTwoCoordinatorsShareTheWork(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	e.startCoordinator("c2")
	var execs atomic.Int32
	started := make(chan string, 16)
	e.startWorker(counting("count", &execs, nil, started))
	e.startWorker(pipelines.All(pipelines.Options{})...)
	e.waitPipeline("count")
	e.waitPipeline("daily_sales")

	// Runs spread over both coordinators (queue group) all finish, each
	// completion handled by the coordinator that dispatched its task.
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			day := fmt.Sprintf("2025-03-%02d", i+1)
			if _, rec := e.run(protocol.RunRequest{Pipeline: "daily_sales", Asset: "revenue", Partition: day}); rec.State != protocol.StateCompleted {
				t.Errorf("%s: %s %v", day, rec.State, rec.Error)
			}
		}()
	}
	wg.Wait()

	// A cancel reaches the run whichever coordinator drives it: try it
	// several times so both coordinators answer cancels.
	for i := range 4 {
		part := fmt.Sprintf("p%d", i)
		rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "count", Asset: "slow", Partition: part})
		if perr != nil {
			t.Fatal(perr)
		}
		<-started
		c, perr := call[protocol.CancelReply](e, protocol.VerbCancel, protocol.CancelRequest{V: protocol.Version, Pipeline: "count", Asset: "slow", Partition: part})
		if perr != nil || c.Cancelled != 1 {
			t.Fatalf("cancel %d = %+v %v", i, c, perr)
		}
		if rec := e.waitRun(rep.RunID); rec.State != protocol.StateCancelled {
			t.Fatalf("run %d ended %s", i, rec.State)
		}
	}
}

// A task that cannot be queued (here: the tasks stream is sealed, and
// refuses every message) fails its run, and the record the run had marked
// queued says why instead of staying pending for ever: no worker will
// ever see the task to settle it.
func TestTaskThatCannotBeQueuedLeavesNoPendingRecord(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	e.startWorker(pipelines.All(pipelines.Options{})...)
	e.waitPipeline("example")
	js, _ := jetstream.New(e.nc)
	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	s, err := js.Stream(ctx, protocol.TaskStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Sealed = true
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}

	rep, rec := e.run(protocol.RunRequest{Pipeline: "example", Asset: "numbers"})
	if rec.State != protocol.StateFailed || rec.Error == nil {
		t.Fatalf("run ended %s (%v); want failed, the task refused by its stream", rec.State, rec.Error)
	}
	st, perr := call[protocol.StatusReply](e, protocol.VerbStatus, protocol.StatusRequest{V: protocol.Version, Pipeline: "example", Asset: "numbers"})
	if perr != nil || st.State != protocol.StateFailed || st.RunID != rep.RunID || st.Error == nil {
		t.Fatalf("status = %+v, %v; want failed by run %s with its error, not pending", st, perr, rep.RunID)
	}
}

// A run scheduled past the coordinator's horizon is refused (the
// schedules stream would not keep it that long), and nothing is recorded;
// within the horizon it is accepted.
func TestRunScheduledPastTheHorizonIsRefused(t *testing.T) {
	e := newEnv(t)
	e.startCoordinatorWith(coordinator.Config{ID: "c1", ScheduleHorizon: time.Hour})
	e.startWorker(pipelines.All(pipelines.Options{})...)
	e.waitPipeline("example")
	far := time.Now().Add(2 * time.Hour).UTC()
	_, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "example", Asset: "sum", Async: true, ScheduledAt: &far})
	wantCode(t, perr, protocol.CodeBadRequest)
	if !strings.Contains(perr.Message, "1h0m0s ahead") {
		t.Errorf("refusal = %q; want it to name the horizon", perr.Message)
	}
	st, serr := call[protocol.StatusReply](e, protocol.VerbStatus, protocol.StatusRequest{V: protocol.Version, Pipeline: "example", Asset: "sum"})
	if serr != nil || st.State != protocol.StateNotFound {
		t.Fatalf("status after the refusal = %+v, %v; want nothing recorded", st, serr)
	}
	near := time.Now().Add(30 * time.Minute).UTC()
	rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "example", Asset: "sum", Async: true, ScheduledAt: &near})
	if perr != nil || rep.Job == nil || rep.Job.State != protocol.StateScheduled {
		t.Fatalf("run within the horizon = %+v, %v; want scheduled", rep.Job, perr)
	}
}

// A run scheduled further ahead than the runs bucket keeps a key: when its
// record is refreshed, so is its entry in the scheduled-run index, and
// status keeps saying scheduled. (Here the entry has expired and the
// record is two days old when a coordinator starts.)
func TestRefreshKeepsAScheduledRunIndexed(t *testing.T) {
	e := newEnv(t)
	c1 := e.startCoordinator("c1")
	e.startWorker(pipelines.All(pipelines.Options{})...)
	e.waitPipeline("example")
	at := time.Now().Add(30 * 24 * time.Hour).UTC()
	rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "example", Asset: "sum", Async: true, ScheduledAt: &at})
	if perr != nil {
		t.Fatal(perr)
	}
	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	if err := c1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(e.nc)
	runs, err := js.KeyValue(ctx, protocol.RunsBucket)
	if err != nil {
		t.Fatal(err)
	}
	ent, err := runs.Get(ctx, protocol.RunKey(rep.RunID))
	if err != nil {
		t.Fatal(err)
	}
	rec, derr := protocol.DecodeRunRecord(ent.Value())
	if derr != nil {
		t.Fatal(derr)
	}
	rec.UpdatedAt = time.Now().Add(-48 * time.Hour).UTC()
	b, _ := protocol.EncodeRunRecord(rec)
	if _, err := runs.Update(ctx, protocol.RunKey(rep.RunID), b, ent.Revision()); err != nil {
		t.Fatal(err)
	}
	schedKey := "sched." + strings.TrimPrefix(bridge.MaterializationKey("example", "sum", flowstone.DefaultPartition), "mat.")
	if err := runs.Purge(ctx, schedKey); err != nil {
		t.Fatal(err)
	}

	e.startCoordinator("c2")
	for {
		st, perr := call[protocol.StatusReply](e, protocol.VerbStatus, protocol.StatusRequest{V: protocol.Version, Pipeline: "example", Asset: "sum"})
		if perr == nil && st.State == protocol.StateScheduled && st.RunID == rep.RunID {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("status after the refresh = %+v, %v; want the run scheduled again", st, perr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
