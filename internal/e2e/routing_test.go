package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
)

// TestRouterDecisionSurvivesCoordinatorRestart: the coordinator driving a
// run of shipping.shipment is SIGKILLed after the router decided (bulk)
// and before the chosen branch finished. A new coordinator with the same
// id resumes the run, which completes with the same branch: the router's
// conditions ran once, the other branches were skipped (status, fsctl
// status and one run.skipped event each) and never started, and the
// fsctl run that was waiting gets the bulk shipment.
func TestRouterDecisionSurvivesCoordinatorRestart(t *testing.T) {
	f := newFleet(t)
	coord := f.coordinator("coord-a")
	f.worker("w1", "--source-latency", "3s")
	f.waitReady(1)
	w := f.watch("shipping")

	const part = "big-restart"
	waiting := f.fsctlProc("fsctl run (sync)", "run", "shipping", "shipment", "--partition", part)
	started := w.waitEvent(protocol.EventRunStart, "bulk", part)
	runID := started.RunID
	if ev := w.matching(protocol.EventRunStop, "route", part); len(ev) != 1 || ev[0].Metadata["route"] != "bulk" || ev[0].RunID != runID {
		t.Fatalf("the router's run.stop events: %+v, want one choosing bulk in run %s", ev, runID)
	}
	coord.kill(t)
	if n := w.count(protocol.EventRunStop, "bulk", part); n != 0 {
		t.Fatalf("bulk finished before the coordinator was killed: make it slower")
	}

	coord2 := f.coordinator("coord-a")
	if resumed := coord2.waitLog(t, "run_resumed"); resumed["run_id"] != runID {
		t.Errorf("resumed %v, want run %s", resumed, runID)
	}
	res := waiting.result(t)
	if res.code != 0 {
		t.Fatalf("the waiting fsctl run: %s", res)
	}
	var run runOut
	decode(t, res, &run)
	var ship pipelines.Shipment
	if err := json.Unmarshal(run.Value, &ship); err != nil || ship.Method != "bulk" || ship.Order != part || run.RunID != runID {
		t.Fatalf("shipment = %s (%+v, %v) from run %s, want bulk from run %s", run.Value, ship, err, run.RunID, runID)
	}

	// The decision is the router's record; the other branches are skipped.
	if st := f.status("shipping", "route", part); st.State != "completed" || st.Route != "bulk" || st.RunID != runID {
		t.Errorf("route = %+v, want completed choosing bulk in run %s", st, runID)
	}
	for _, branch := range []string{"express", "standard"} {
		st := f.status("shipping", branch, part)
		if st.State != "skipped" || st.RunID != runID || st.Skip == nil || *st.Skip != (skipOut{Router: "route", Chosen: "bulk"}) || st.Value != nil {
			t.Errorf("%s = %+v (skip %+v), want skipped by run %s for bulk", branch, st, st.Skip, runID)
		}
		if n := w.count(protocol.EventRunStart, branch, part); n != 0 {
			t.Errorf("%s started %d times", branch, n)
		}
		ev := w.waitEvent(protocol.EventRunSkipped, branch, part)
		if ev.RunID != runID || ev.Metadata["router"] != "route" || ev.Metadata["chosen"] != "bulk" {
			t.Errorf("run.skipped of %s: %+v", branch, ev)
		}
	}
	w.waitEvent(protocol.EventRunStop, "shipment", part)
	w.startedTimes(t, part, map[string]int{"order": 1, "route": 1, "bulk": 1, "shipment": 1})
	for _, branch := range []string{"express", "standard"} {
		if n := w.count(protocol.EventRunSkipped, branch, part); n != 1 {
			t.Errorf("%d run.skipped events of %s, want one", n, branch)
		}
	}
	// fsctl status says so in words too.
	r := runFsctl(t, "status", "shipping", "standard", "--partition", part, "--server", f.url)
	if r.code != 0 || !strings.Contains(r.stdout, "skipped") || !strings.Contains(r.stdout, `router "route" chose "bulk"`) {
		t.Errorf("fsctl status of a skipped branch: %s", r)
	}
}
