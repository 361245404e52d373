package coordinator_test

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

var testSecret = []byte("coordinator-test-secret-32-bytes")

// gatedPipeline is "gated": src → approved (an approval gate, waiting
// gateWait) → after; and signalled (a signal gate) → told. approved
// counts its executions.
func gatedPipeline(execs *atomic.Int32, gateWait time.Duration) *flowstone.Pipeline {
	return flowstone.MustPipeline("gated",
		flowstone.Asset("src", func(*flowstone.Context) (any, error) { return 20, nil }, flowstone.PartitionedBy(flowstone.AnyKey)),
		flowstone.Asset("approved", func(c *flowstone.Context) (any, error) {
			execs.Add(1)
			n, err := flowstone.Dep[int](c, "src")
			return n + 1, err
		}, flowstone.DependsOn("src"), flowstone.Approval(flowstone.ApprovalConfig{Message: "go?", Timeout: gateWait})),
		flowstone.Asset("after", func(c *flowstone.Context) (any, error) {
			n, err := flowstone.Dep[int](c, "approved")
			return 2 * n, err
		}, flowstone.DependsOn("approved")),
		flowstone.Asset("signalled", nil, flowstone.WaitForSignal(flowstone.SignalConfig{}), flowstone.DependsOn("src")),
	)
}

// waitGates polls the approvals verb until n gates wait.
func (e *env) waitGates(n int) []protocol.WaitingGate {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rep, perr := call[protocol.ApprovalsReply](e, protocol.VerbApprovals, protocol.ApprovalsRequest{V: protocol.Version})
		if perr == nil && len(rep.Gates) == n {
			return rep.Gates
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("approvals = %+v, %v; want %d gate(s)", rep.Gates, perr, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// record reads a gated asset's record from the store, with or without a
// coordinator.
func (e *env) record(asset, partition string) *flowstone.Materialization {
	e.t.Helper()
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	js, err := jetstream.New(e.nc)
	if err != nil {
		e.t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, protocol.MaterializationsBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	ent, err := kv.Get(ctx, bridge.MaterializationKey("gated", asset, partition))
	if err != nil {
		e.t.Fatal(err)
	}
	rec, err := bridge.UnmarshalRecord(ent.Value())
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

func (e *env) status(asset, partition string) protocol.StatusReply {
	e.t.Helper()
	st, perr := call[protocol.StatusReply](e, protocol.VerbStatus, protocol.StatusRequest{V: protocol.Version, Pipeline: "gated", Asset: asset, Partition: partition})
	if perr != nil {
		e.t.Fatal(perr)
	}
	return st
}

// TestApprovalSurvivesCoordinatorRestart: a coordinator that stops while
// its run waits at an approval gate hands the run back; restarted, it
// waits on at the same gate, and an approval then finishes the run,
// executing the asset once.
func TestApprovalSurvivesCoordinatorRestart(t *testing.T) {
	e := newEnv(t)
	c1 := e.startCoordinatorWith(coordinator.Config{ID: "gatekeeper"})
	var execs atomic.Int32
	e.startWorker(gatedPipeline(&execs, time.Hour))
	e.waitPipeline("gated")
	rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "gated", Asset: "after", Partition: "r1"})
	if perr != nil {
		t.Fatal(perr)
	}
	if want := (flowstone.DefaultRunTimeout + time.Hour).Milliseconds(); rep.LimitMS != want {
		t.Errorf("run reply's limit = %d ms, want the run's timeout and the gate's wait, %d ms", rep.LimitMS, want)
	}
	before := e.waitGates(1)[0]
	if before.Asset != "approved" || before.Partition != "r1" || before.RunID != rep.RunID || before.Kind != protocol.GateApproval || before.Message != "go?" {
		t.Fatalf("waiting gate = %+v", before)
	}
	// A hard stop: the run is handed back, its gate's record left waiting.
	ctx, cancel := contextWithTimeout(100 * time.Millisecond)
	c1.Stop(ctx)
	cancel()
	if rec := e.record("approved", "r1"); rec.State != flowstone.StateWaitingApproval || rec.Gate == nil || rec.RunID != rep.RunID {
		t.Fatalf("record with no coordinator driving = %+v", rec)
	}

	e.startCoordinatorWith(coordinator.Config{ID: "gatekeeper"})
	after := e.waitGates(1)[0]
	if after.RunID != rep.RunID || !after.OpenedAt.Equal(before.OpenedAt) || !after.Deadline.Equal(before.Deadline) {
		t.Fatalf("the gate after the restart = %+v, want the same gate as before, %+v", after, before)
	}
	if execs.Load() != 0 {
		t.Fatalf("approved ran %d times before its approval", execs.Load())
	}
	if _, perr := call[protocol.DecisionReply](e, protocol.VerbApprove, protocol.ApproveRequest{V: protocol.Version, Pipeline: "gated", Asset: "approved", Partition: "r1"}); perr != nil {
		t.Fatal(perr)
	}
	if rec := e.waitRun(rep.RunID); rec.State != protocol.StateCompleted {
		t.Fatalf("run after the approval: %s %v", rec.State, rec.Error)
	}
	got, perr := call[protocol.GetReply](e, protocol.VerbGet, protocol.GetRequest{V: protocol.Version, Pipeline: "gated", Asset: "after", Partition: "r1"})
	var v int
	if perr != nil || json.Unmarshal(got.Value, &v) != nil || v != 42 {
		t.Fatalf("after = %s, %v; want 42", got.Value, perr)
	}
	if execs.Load() != 1 {
		t.Fatalf("approved ran %d times, want once", execs.Load())
	}
}

// TestGateExpiresAfterRestart: the deadline is in the record, so a gate
// whose time ran out while no coordinator drove its run expires when one
// resumes it.
func TestGateExpiresAfterRestart(t *testing.T) {
	e := newEnv(t)
	c1 := e.startCoordinatorWith(coordinator.Config{ID: "forgetful"})
	var execs atomic.Int32
	e.startWorker(gatedPipeline(&execs, 500*time.Millisecond))
	e.waitPipeline("gated")
	rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "gated", Asset: "after", Partition: "x"})
	if perr != nil {
		t.Fatal(perr)
	}
	g := e.waitGates(1)[0]
	ctx, cancel := contextWithTimeout(time.Millisecond)
	c1.Stop(ctx)
	cancel()
	// The deadline passes with no coordinator.
	time.Sleep(time.Until(g.Deadline))
	if rec := e.record("approved", "x"); rec.State != flowstone.StateWaitingApproval {
		t.Fatalf("record before the restart = %+v", rec)
	}
	e.startCoordinatorWith(coordinator.Config{ID: "forgetful"})
	rec := e.waitRun(rep.RunID)
	if rec.State != protocol.StateFailed || rec.Error == nil || rec.Error.Code != protocol.CodeDependencyFailed {
		t.Fatalf("run after the restart: %s %v; want failed, dependency_failed over the expiry", rec.State, rec.Error)
	}
	if st := e.status("approved", "x"); st.State != protocol.StateFailed || st.Error == nil || st.Error.Code != protocol.CodeTimeout ||
		st.Gate == nil || st.Gate.Decision != string(flowstone.GateExpired) {
		t.Fatalf("status of the expired gate = %+v", st)
	}
	if execs.Load() != 0 {
		t.Fatalf("approved ran %d times", execs.Load())
	}
}

// TestSignalGatesNeedTheFleetsSecret: a coordinator without a signal
// secret refuses runs that may reach a signal gate, and signals; with
// one, a signal delivered to any coordinator reaches the run.
func TestSignalGatesNeedTheFleetsSecret(t *testing.T) {
	e := newEnv(t)
	c1 := e.startCoordinator("no-secret")
	var execs atomic.Int32
	e.startWorker(gatedPipeline(&execs, time.Hour))
	e.waitPipeline("gated")
	_, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "gated", Asset: "signalled"})
	wantCode(t, perr, protocol.CodeConfigError)
	_, perr = call[protocol.DecisionReply](e, protocol.VerbSignal, protocol.SignalRequest{V: protocol.Version, Token: "fsg1.a.b"})
	wantCode(t, perr, protocol.CodeConfigError)
	ctx, cancel := contextWithTimeout(5 * time.Second)
	c1.Stop(ctx)
	cancel()

	e.startCoordinatorWith(coordinator.Config{ID: "s1", SignalSecret: testSecret})
	e.startCoordinatorWith(coordinator.Config{ID: "s2", SignalSecret: testSecret})
	rep, perr := call[protocol.RunReply](e, protocol.VerbRun, protocol.RunRequest{V: protocol.Version, Pipeline: "gated", Asset: "signalled"})
	if perr != nil {
		t.Fatal(perr)
	}
	g := e.waitGates(1)[0]
	if g.Kind != protocol.GateSignal || g.Token == "" {
		t.Fatalf("waiting gate = %+v", g)
	}
	_, perr = call[protocol.DecisionReply](e, protocol.VerbSignal, protocol.SignalRequest{V: protocol.Version, Token: g.Token + "x"})
	wantCode(t, perr, protocol.CodeBadRequest)
	got, perr := call[protocol.DecisionReply](e, protocol.VerbSignal, protocol.SignalRequest{V: protocol.Version, Token: g.Token, Payload: json.RawMessage(`{"ok":1}`)})
	if perr != nil || got.Asset != "signalled" || got.Partition != flowstone.DefaultPartition {
		t.Fatalf("signal = %+v, %v", got, perr)
	}
	if rec := e.waitRun(rep.RunID); rec.State != protocol.StateCompleted {
		t.Fatalf("run after the signal: %s %v", rec.State, rec.Error)
	}
	v, perr := call[protocol.GetReply](e, protocol.VerbGet, protocol.GetRequest{V: protocol.Version, Pipeline: "gated", Asset: "signalled"})
	if perr != nil || string(v.Value) != `{"ok":1}` {
		t.Fatalf("signalled = %s, %v; want the payload", v.Value, perr)
	}
	_, perr = call[protocol.DecisionReply](e, protocol.VerbSignal, protocol.SignalRequest{V: protocol.Version, Token: g.Token, Payload: json.RawMessage(`{"ok":2}`)})
	wantCode(t, perr, protocol.CodeNotFound)
}
