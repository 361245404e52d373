package coordinator_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/fleet"
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
	if len(ps.Pipelines) != 3 || ps.Pipelines[0].Workers != 1 {
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
	// Hostile partition text is data, not a subject or a path.
	for _, part := range []string{"flowstone.api.>", "../../x", "a b*c", "ünï"} {
		_, rec := e.run(protocol.RunRequest{Pipeline: "example", Asset: "sum", Partition: part})
		if rec.State != protocol.StateCompleted {
			t.Fatalf("partition %q: %s %v", part, rec.State, rec.Error)
		}
		got, perr := call[protocol.GetReply](e, protocol.VerbGet, protocol.GetRequest{V: protocol.Version, Pipeline: "example", Asset: "sum", Partition: part})
		if perr != nil || got.Partition != part || string(got.Value) != "30" {
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
		}),
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
