package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
)

// revenueOf decodes a daily_sales revenue value and checks its day.
func revenueOf(t *testing.T, raw json.RawMessage, day string) pipelines.Revenue {
	t.Helper()
	var rev pipelines.Revenue
	if err := json.Unmarshal(raw, &rev); err != nil || rev.Day != day || rev.Orders == 0 || rev.Total <= 0 {
		t.Fatalf("revenue of %s = %s (%v)", day, raw, err)
	}
	return rev
}

// once checks that each asset of daily_sales started exactly n times for
// day, by the watch's run.start events.
func (w *watcher) startedTimes(t *testing.T, day string, want map[string]int) {
	t.Helper()
	for asset, n := range want {
		if got := w.count(protocol.EventRunStart, asset, day); got != n {
			t.Errorf("%s [%s] started %d times, want %d; events:\n%s", asset, day, got, n, w.p.stdout.text())
		}
	}
}

// TestConcurrentRunsExecuteOnce: two fsctl run processes of the same
// partition at once both get the result, from one execution (invariants
// 1 and 2).
func TestConcurrentRunsExecuteOnce(t *testing.T) {
	f := newFleet(t)
	f.coordinator("c1")
	f.worker("w1", "--source-latency", "2s")
	f.waitReady(1)
	w := f.watch("daily_sales")

	const day = "2025-03-01"
	a := f.fsctlProc("fsctl run A", "run", "daily_sales", "revenue", "--partition", day)
	b := f.fsctlProc("fsctl run B", "run", "daily_sales", "revenue", "--partition", day)
	// Both runs are accepted while orders is still fetching: they overlap.
	f.eventually("both runs to be accepted", func() (bool, string) {
		recs := f.runRecords("daily_sales", "revenue", day)
		return len(recs) == 2, fmt.Sprintf("%+v", recs)
	})
	if n := w.count(protocol.EventRunStop, "orders", day); n != 0 {
		t.Fatalf("orders finished before both runs were accepted: the runs did not overlap (slow machine?)")
	}
	var ra, rb runOut
	for _, x := range []struct {
		p   *proc
		out *runOut
	}{{a, &ra}, {b, &rb}} {
		r := x.p.result(t)
		if r.code != 0 {
			t.Fatalf("want exit 0: %s", r)
		}
		decode(t, r, x.out)
	}
	va, vb := revenueOf(t, ra.Value, day), revenueOf(t, rb.Value, day)
	if va.Total != vb.Total || ra.SHA256 != rb.SHA256 {
		t.Errorf("the two runs got different values: %+v and %+v", va, vb)
	}
	if ra.RunID != rb.RunID {
		t.Errorf("concurrent runs got run ids %s and %s, want the same run", ra.RunID, rb.RunID)
	}
	st := f.status("daily_sales", "revenue", day)
	if st.State != "completed" || st.RunID != ra.RunID {
		t.Errorf("status = %+v, want completed by run %s", st, ra.RunID)
	}
	w.waitEvent(protocol.EventRunStop, "revenue", day)
	// A third run is served from the cache.
	var rc runOut
	f.ok(&rc, "run", "daily_sales", "revenue", "--partition", day)
	if !rc.Cached || rc.RunID != ra.RunID || rc.SHA256 != ra.SHA256 {
		t.Errorf("third run = %+v, want cached from run %s", rc, ra.RunID)
	}
	w.startedTimes(t, day, map[string]int{"orders": 1, "cleaned": 1, "revenue": 1})
	for _, rec := range f.runRecords("daily_sales", "revenue", day) {
		if rec.State != protocol.StateCompleted {
			t.Errorf("run record %+v, want completed", rec)
		}
	}
}

// TestKilledWorkerTaskCompletesOnAnother: a worker SIGKILLed while it runs
// orders loses nothing: the task is redelivered to the other worker and
// the run completes (invariant 3).
func TestKilledWorkerTaskCompletesOnAnother(t *testing.T) {
	f := newFleet(t)
	f.coordinator("c1")
	victim := f.worker("victim", "--source-latency", "5s", "--ack-wait", "2s")
	f.waitReady(1)
	w := f.watch("daily_sales")

	const day = "2025-04-01"
	var run runOut
	f.ok(&run, "run", "daily_sales", "revenue", "--partition", day, "--async")
	if run.Job == nil || run.Job.ID != run.RunID || run.Job.Asset != "revenue" || run.Job.Partition != day {
		t.Fatalf("run --async = %+v, want a job", run)
	}
	if ev := w.waitEvent(protocol.EventRunStart, "orders", day); ev.Metadata["worker"] != "victim" {
		t.Fatalf("orders started on %v, want victim", ev.Metadata["worker"])
	}
	f.worker("survivor", "--source-latency", "200ms", "--ack-wait", "2s")
	f.waitReady(2)
	// The running record appears once a worker claims the task; until
	// then the record shows it queued.
	if st := f.waitStatus("daily_sales", "orders", day, "running", stateIs("running", "completed", "failed", "cancelled")); st.State != "running" {
		t.Fatalf("orders before the kill: %+v, want running", st)
	}
	victim.kill(t)

	st := f.waitStatus("daily_sales", "revenue", day, "completed", stateIs("completed", "failed", "cancelled"))
	if st.State != "completed" || st.RunID != run.RunID {
		t.Fatalf("revenue = %+v, want completed by run %s", st, run.RunID)
	}
	var got runOut
	f.ok(&got, "get", "daily_sales", "revenue", "--partition", day)
	revenueOf(t, got.Value, day)
	stops := w.matching(protocol.EventRunStop, "orders", day)
	if len(stops) != 1 || stops[0].Metadata["worker"] != "survivor" {
		t.Errorf("orders run.stop events: %+v, want one, from survivor", stops)
	}
	w.startedTimes(t, day, map[string]int{"orders": 2, "cleaned": 1, "revenue": 1})
}

// TestCoordinatorRestartFinishesRun: the coordinator is SIGKILLed while a
// run's first task executes; the worker finishes the task meanwhile; a new
// coordinator with the same id resumes the run, which completes without
// recomputing orders, and the fsctl run that was waiting gets its value
// (invariant 4).
func TestCoordinatorRestartFinishesRun(t *testing.T) {
	f := newFleet(t)
	coord := f.coordinator("coord-a")
	f.worker("w1", "--source-latency", "2s")
	f.waitReady(1)
	w := f.watch("daily_sales")

	const day = "2025-05-01"
	waiting := f.fsctlProc("fsctl run (sync)", "run", "daily_sales", "revenue", "--partition", day)
	w.waitEvent(protocol.EventRunStart, "orders", day)
	st := f.status("daily_sales", "revenue", day)
	runID := st.RunID
	if runID == "" {
		t.Logf("status of revenue during its run: %+v", st)
		runID = w.matching(protocol.EventRunStart, "orders", day)[0].RunID
	}
	coord.kill(t)

	// Without a coordinator, fsctl says the fleet is unavailable.
	r := f.fsctl("status", "daily_sales", "revenue", "--partition", day, "--timeout", "2s")
	expectError(t, r, 3, "unavailable")
	// The worker finishes orders on its own.
	w.waitEvent(protocol.EventRunStop, "orders", day)
	if w.count(protocol.EventRunStart, "cleaned", day) != 0 {
		t.Fatalf("cleaned started with no coordinator: %s", w.p.stdout.text())
	}

	coord2 := f.coordinator("coord-a")
	resumed := coord2.waitLog(t, "run_resumed")
	if resumed["run_id"] != runID {
		t.Errorf("resumed %v, want run %s", resumed, runID)
	}
	res := waiting.result(t)
	if res.code != 0 {
		t.Fatalf("the waiting fsctl run: %s", res)
	}
	var run runOut
	decode(t, res, &run)
	revenueOf(t, run.Value, day)
	if run.RunID != runID {
		t.Errorf("fsctl run got run %s, want %s", run.RunID, runID)
	}
	st = f.waitStatus("daily_sales", "revenue", day, "completed", stateIs("completed", "failed", "cancelled"))
	if st.State != "completed" || st.RunID != runID {
		t.Errorf("revenue = %+v, want completed by run %s", st, runID)
	}
	w.waitEvent(protocol.EventRunStop, "revenue", day)
	w.startedTimes(t, day, map[string]int{"orders": 1, "cleaned": 1, "revenue": 1})
	// The new coordinator serves the value from the cache (invariant 1).
	var again runOut
	f.ok(&again, "run", "daily_sales", "revenue", "--partition", day)
	if !again.Cached || again.RunID != runID {
		t.Errorf("run after the restart = %+v, want cached from run %s", again, runID)
	}
}

// TestCoordinatorSIGTERMLeavesRunToNext: a coordinator sent SIGTERM in the
// middle of a run exits 0 within its grace without cancelling the run's
// task; the next coordinator (same id) finishes the run.
func TestCoordinatorSIGTERMLeavesRunToNext(t *testing.T) {
	f := newFleet(t)
	coord := f.coordinator("coord-a", "--grace", "500ms")
	f.worker("w1", "--source-latency", "2s")
	f.waitReady(1)
	w := f.watch("daily_sales")

	const day = "2025-05-02"
	var run runOut
	f.ok(&run, "run", "daily_sales", "revenue", "--partition", day, "--async")
	w.waitEvent(protocol.EventRunStart, "orders", day)
	coord.signal(t, syscall.SIGTERM)
	sent := time.Now()
	if code := coord.waitExit(t); code != 0 {
		t.Fatalf("coordinator exited %d after SIGTERM, want 0", code)
	}
	if d := time.Since(sent); d > 10*time.Second {
		t.Errorf("coordinator took %v to stop with a 500ms grace", d)
	}
	// Its task was not cancelled: orders completes on the worker.
	w.waitEvent(protocol.EventRunStop, "orders", day)
	if n := w.count(protocol.EventRunException, "orders", day); n != 0 {
		t.Errorf("orders failed %d times when the coordinator stopped", n)
	}
	f.coordinator("coord-a")
	st := f.waitStatus("daily_sales", "revenue", day, "completed", stateIs("completed", "failed", "cancelled"))
	if st.State != "completed" || st.RunID != run.RunID {
		t.Errorf("revenue = %+v, want completed by run %s", st, run.RunID)
	}
	for _, rec := range f.runRecords("daily_sales", "revenue", day) {
		if rec.State != protocol.StateCompleted {
			t.Errorf("run record %+v, want completed", rec)
		}
	}
	w.startedTimes(t, day, map[string]int{"orders": 1, "cleaned": 1, "revenue": 1})
}

// TestWorkersKilledAtRandomInstants: a backfill runs while one of two
// workers is SIGKILLed and restarted over and over, each time at a random
// instant after it took a task; every partition completes with the right
// value (invariant 3), and a second backfill finds them all materialized.
func TestWorkersKilledAtRandomInstants(t *testing.T) {
	f := newFleet(t)
	f.coordinator("c1")
	workerArgs := []string{"--source-latency", "200ms", "--ack-wait", "2s", "--concurrency", "2"}
	f.worker("steady", workerArgs...)
	victim := f.worker("victim", workerArgs...)
	f.waitReady(2)
	w := f.watch("daily_sales")
	victimStarts := func() int {
		n := 0
		for _, ev := range w.events() {
			if ev.Kind == protocol.EventRunStart && ev.Metadata["worker"] == "victim" {
				n++
			}
		}
		return n
	}

	const from, to, days = "2025-12-01", "2025-12-30", 30
	bf := f.fsctlProc("fsctl backfill", "backfill", "daily_sales", "revenue", "--partitions", from+".."+to, "--parallel", "4")
	kills := 0
	for kills < 6 {
		// Wait for this victim to take a task, then kill it a random
		// instant later (the sleep is the point): in the asset, storing
		// the result, writing the record, acking, or between tasks.
		seen := victimStarts()
		f.eventually("the victim to take a task", func() (bool, string) {
			return victimStarts() > seen || !bf.running(), "no task yet"
		})
		if !bf.running() {
			break
		}
		time.Sleep(rand.N(250 * time.Millisecond))
		victim.kill(t)
		kills++
		victim = f.worker("victim", workerArgs...)
	}
	if kills < 3 {
		t.Errorf("the backfill ended after %d kills: too fast to prove anything", kills)
	}
	r := bf.result(t)
	var stats struct {
		ID         string                `json:"id"`
		Succeeded  int                   `json:"succeeded"`
		Failed     int                   `json:"failed"`
		Skipped    int                   `json:"skipped"`
		NotStarted int                   `json:"not_started"`
		Errors     map[string]*jsonError `json:"errors"`
	}
	if r.code != 0 {
		t.Fatalf("backfill with %d kills: %s", kills, r)
	}
	decode(t, r, &stats)
	if stats.Succeeded != days || stats.Failed != 0 {
		t.Errorf("backfill with %d kills = %+v, want %d succeeded", kills, stats, days)
	}
	// Tasks the victim started and never finished: the kills hit work.
	interrupted := 0
	for _, ev := range w.events() {
		if ev.Kind == protocol.EventRunStart && ev.Metadata["worker"] == "victim" {
			done := false
			for _, stop := range w.matching(protocol.EventRunStop, ev.Asset, ev.Partition) {
				done = done || stop.Metadata["worker"] == "victim" && stop.RunID == ev.RunID
			}
			if !done {
				interrupted++
			}
		}
	}
	t.Logf("the victim was killed %d times; %d tasks it had started were cut short", kills, interrupted)
	for d := 1; d <= days; d++ {
		day := fmt.Sprintf("2025-12-%02d", d)
		var got runOut
		f.ok(&got, "get", "daily_sales", "revenue", "--partition", day)
		rev := revenueOf(t, got.Value, day)
		want := 0
		for _, o := range pipelines.GenerateOrders(day) {
			if o.Status == "paid" && o.Quantity > 0 {
				want++
			}
		}
		if rev.Orders != want {
			t.Errorf("revenue [%s] counts %d orders, want %d", day, rev.Orders, want)
		}
	}
	f.ok(&stats, "backfill", "daily_sales", "revenue", "--partitions", from+".."+to)
	if stats.Skipped != days {
		t.Errorf("second backfill = %+v, want %d skipped", stats, days)
	}
}

// TestTimeoutFailsDependents: a run whose timeout ends while orders is
// still fetching fails with a timeout, fsctl exits 1 saying so, orders is
// recorded timed out on the worker (as it is embedded) and its dependents
// fail without starting; a missing dependency under --no-deps is a
// dependency_failed naming it (invariant 5).
func TestTimeoutFailsDependents(t *testing.T) {
	f := newFleet(t)
	f.coordinator("c1")
	f.worker("w1", "--source-latency", "3s")
	f.waitReady(1)
	w := f.watch("daily_sales")

	const day = "2025-06-01"
	began := time.Now()
	r := f.fsctl("run", "daily_sales", "revenue", "--partition", day, "--timeout", "500ms")
	took := time.Since(began)
	e := expectError(t, r, 1, "timeout")
	if !strings.Contains(e.Message, "revenue") || !strings.Contains(e.Message, "500ms") {
		t.Errorf("run --timeout 500ms: %+v, want the run's timeout named", e)
	}
	if took > 2500*time.Millisecond {
		t.Errorf("run --timeout 500ms returned after %v, not before the 3s source latency ended", took)
	}
	// As embedded: every asset of the run is failed with a timeout, the
	// one that was running (orders) included: it timed out, nobody
	// cancelled it.
	for _, asset := range []string{"orders", "cleaned", "revenue"} {
		st := f.waitStatus("daily_sales", asset, day, "failed", stateIs("failed", "cancelled", "completed"))
		if st.State != "failed" || st.Error == nil || st.Error.Type != "timeout" {
			t.Errorf("%s after the run's timeout: %+v (error %+v), want failed with a timeout", asset, st, st.Error)
		}
	}
	if ex := w.waitEvent(protocol.EventRunException, "orders", day); ex.Error == nil || ex.Error.Code != protocol.CodeTimeout {
		t.Errorf("orders run.exception = %+v, want a timeout", ex)
	}
	if r := f.fsctl("exists", "daily_sales", "revenue", "--partition", day); r.code != 1 {
		t.Errorf("exists revenue after the timeout: %s", r)
	}
	if n := w.count(protocol.EventRunStart, "cleaned", day); n != 0 {
		t.Errorf("cleaned started %d times after its dependency timed out", n)
	}

	// A missing dependency with --no-deps is a dependency_failed naming it.
	e = f.fails(1, "dependency_failed", "run", "daily_sales", "revenue", "--partition", "2025-06-02", "--no-deps")
	if !strings.Contains(e.Message+" "+detailText(e.Details), "cleaned") {
		t.Errorf("run --no-deps: %+v, want dependency_failed naming cleaned", e)
	}
}

func detailText(d map[string]any) string {
	b, _ := json.Marshal(d)
	return string(b)
}

// TestCancelReachesRemoteWorker: fsctl cancel stops orders on the worker
// process (its context is cancelled: it ends long before its 5s source
// latency), the run ends cancelled, a client waiting on it hears so, and
// cleaned and revenue never start (invariant 6).
func TestCancelReachesRemoteWorker(t *testing.T) {
	f := newFleet(t)
	f.coordinator("c1")
	f.worker("w1", "--source-latency", "5s")
	f.waitReady(1)
	w := f.watch("daily_sales")

	const day = "2025-07-01"
	var run runOut
	f.ok(&run, "run", "daily_sales", "revenue", "--partition", day, "--async")
	waiting := f.fsctlProc("fsctl run (sync)", "run", "daily_sales", "revenue", "--partition", day)
	started := w.waitEvent(protocol.EventRunStart, "orders", day)
	f.eventually("the waiting run to be accepted", func() (bool, string) {
		recs := f.runRecords("daily_sales", "revenue", day)
		return len(recs) == 2, fmt.Sprintf("%+v", recs)
	})

	var cancelled struct {
		Cancelled bool   `json:"cancelled"`
		Asset     string `json:"asset"`
		Partition string `json:"partition"`
	}
	f.ok(&cancelled, "cancel", "daily_sales", "revenue", "--partition", day)
	if !cancelled.Cancelled || cancelled.Asset != "revenue" || cancelled.Partition != day {
		t.Errorf("cancel = %+v", cancelled)
	}
	ex := w.waitEvent(protocol.EventRunException, "orders", day)
	if ex.Error == nil || ex.Error.Code != protocol.CodeCancelled {
		t.Errorf("orders run.exception = %+v, want cancelled", ex)
	}
	if d := ex.Time.Sub(started.Time); d >= 5*time.Second {
		t.Errorf("orders ran %v after the cancel: its context was not cancelled", d)
	}
	if st := f.waitStatus("daily_sales", "orders", day, "cancelled", stateIs("cancelled", "failed", "completed")); st.State != "cancelled" {
		t.Errorf("orders = %+v, want cancelled", st)
	}
	// Everything the runs had pending ends cancelled: cleaned and revenue
	// never started. (Two runs, the async one and the waiting one, shared
	// the execution; either may have recorded them.)
	for _, asset := range []string{"cleaned", "revenue"} {
		st := f.waitStatus("daily_sales", asset, day, "cancelled", stateIs("cancelled", "failed", "completed"))
		if st.State != "cancelled" || st.RunID == "" || st.Error == nil || st.Error.Type != "cancelled" {
			t.Errorf("%s after cancel = %+v (error %+v), want cancelled", asset, st, st.Error)
		}
	}
	res := waiting.result(t)
	expectError(t, res, 1, "cancelled")
	for _, rec := range f.runRecords("daily_sales", "revenue", day) {
		if rec.State != protocol.StateCancelled || rec.Error == nil || rec.Error.Code != protocol.CodeCancelled {
			t.Errorf("run record after cancel: %+v, want cancelled", rec)
		}
	}

	// Let the worker serve something else, then check nothing of the
	// cancelled run slipped through.
	var sum runOut
	f.ok(&sum, "run", "example", "sum")
	if r := f.fsctl("exists", "daily_sales", "revenue", "--partition", day); r.code != 1 {
		t.Errorf("exists revenue after cancel: %s", r)
	}
	w.startedTimes(t, day, map[string]int{"orders": 1, "cleaned": 0, "revenue": 0})
	if st := f.status("daily_sales", "orders", day); st.State != "cancelled" {
		t.Errorf("orders later = %+v, want still cancelled", st)
	}
}

// TestSIGTERMWorkerFinishesTask: a worker sent SIGTERM during a task
// finishes it within its grace and exits 0; the run completes on another
// worker.
func TestSIGTERMWorkerFinishesTask(t *testing.T) {
	f := newFleet(t)
	f.coordinator("c1")
	drainer := f.worker("drainer", "--source-latency", "2s", "--grace", "30s")
	f.waitReady(1)
	w := f.watch("daily_sales")

	const day = "2025-08-01"
	var run runOut
	f.ok(&run, "run", "daily_sales", "revenue", "--partition", day, "--async")
	w.waitEvent(protocol.EventRunStart, "orders", day)
	drainer.signal(t, syscall.SIGTERM)
	sent := time.Now()
	if code := drainer.waitExit(t); code != 0 {
		t.Fatalf("drainer exited %d after SIGTERM, want 0", code)
	}
	if d := time.Since(sent); d > 30*time.Second {
		t.Errorf("drainer took %v to exit, more than its grace", d)
	}
	stop := w.waitEvent(protocol.EventRunStop, "orders", day)
	if stop.Metadata["worker"] != "drainer" {
		t.Errorf("orders finished on %v, want on the draining worker", stop.Metadata["worker"])
	}
	f.worker("w2")
	st := f.waitStatus("daily_sales", "revenue", day, "completed", stateIs("completed", "failed", "cancelled"))
	if st.State != "completed" || st.RunID != run.RunID {
		t.Errorf("revenue = %+v, want completed by run %s", st, run.RunID)
	}
	w.startedTimes(t, day, map[string]int{"orders": 1, "cleaned": 1, "revenue": 1})
}

// TestSIGTERMWorkerHandsBackTask: a worker whose task outlasts its grace
// hands the task back and exits 0 soon after the grace; another worker
// runs the task at once (not after the ack wait) and the run completes.
func TestSIGTERMWorkerHandsBackTask(t *testing.T) {
	f := newFleet(t)
	f.coordinator("c1")
	drainer := f.worker("drainer", "--source-latency", "1m", "--grace", "1s", "--ack-wait", "30s")
	f.waitReady(1)
	w := f.watch("daily_sales")

	const day = "2025-08-02"
	var run runOut
	f.ok(&run, "run", "daily_sales", "revenue", "--partition", day, "--async")
	w.waitEvent(protocol.EventRunStart, "orders", day)
	drainer.signal(t, syscall.SIGTERM)
	sent := time.Now()
	if code := drainer.waitExit(t); code != 0 {
		t.Fatalf("drainer exited %d after SIGTERM, want 0", code)
	}
	if d := time.Since(sent); d > 10*time.Second {
		t.Errorf("drainer took %v to exit with a 1s grace", d)
	}
	if !strings.Contains(drainer.stderr.text(), "task_handed_back") {
		t.Errorf("the drainer did not log task_handed_back")
	}
	f.worker("w2", "--ack-wait", "30s")
	st := f.waitStatus("daily_sales", "revenue", day, "completed", stateIs("completed", "failed", "cancelled"))
	if st.State != "completed" || st.RunID != run.RunID {
		t.Errorf("revenue = %+v, want completed by run %s", st, run.RunID)
	}
	if d := time.Since(sent); d > 20*time.Second {
		t.Errorf("the handed-back task completed %v after SIGTERM: it waited for the ack wait instead", d)
	}
	stops := w.matching(protocol.EventRunStop, "orders", day)
	if len(stops) != 1 || stops[0].Metadata["worker"] != "w2" {
		t.Errorf("orders run.stop events %+v, want one from w2", stops)
	}
}

// TestCancelPendingNeverStarts: a run whose task waits in the queue behind
// a busy worker (concurrency 1) is cancelled; when the worker frees up, the
// task never starts (invariant 6).
func TestCancelPendingNeverStarts(t *testing.T) {
	f := newFleet(t)
	f.coordinator("c1")
	f.worker("w1", "--concurrency", "1", "--source-latency", "2s")
	f.waitReady(1)
	w := f.watch("daily_sales")

	const busy, queued = "2025-07-10", "2025-07-11"
	f.ok(nil, "run", "daily_sales", "orders", "--partition", busy, "--async")
	w.waitEvent(protocol.EventRunStart, "orders", busy)
	var run runOut
	f.ok(&run, "run", "daily_sales", "revenue", "--partition", queued, "--async")
	f.waitStatus("daily_sales", "revenue", queued, "pending", stateIs("pending"))
	if w.count(protocol.EventRunStart, "orders", queued) != 0 || w.count(protocol.EventRunStop, "orders", busy) != 0 {
		t.Fatalf("the worker was free before the cancel (slow machine?): %s", w.p.stdout.text())
	}
	var out cancelOut
	f.ok(&out, "cancel", "daily_sales", "revenue", "--partition", queued)
	if !out.Cancelled {
		t.Errorf("cancel = %+v", out)
	}
	f.waitStatus("daily_sales", "revenue", queued, "cancelled", stateIs("cancelled"))
	// The worker frees up, then serves another run: the cancelled task
	// was never started in between.
	w.waitEvent(protocol.EventRunStop, "orders", busy)
	f.ok(nil, "run", "example", "sum")
	w.startedTimes(t, queued, map[string]int{"orders": 0, "cleaned": 0, "revenue": 0})
	if st := f.status("daily_sales", "orders", queued); st.State == "completed" || st.State == "running" {
		t.Errorf("orders [%s] after cancel = %+v", queued, st)
	}
}
