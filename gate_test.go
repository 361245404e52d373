package flowstone_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
)

// counter counts executions by asset.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) inc(asset string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[asset]++
}

func (c *counter) of(asset string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[asset]
}

// releasePipeline is build → publish → announce, every asset taking any
// partition key, with publish behind gate: build is 4, publish 10 times
// its input (or, behind a signal gate, what the signal makes), announce
// one more.
func releasePipeline(t testing.TB, c *counter, gate flowstone.AssetOption, signal bool) *flowstone.Pipeline {
	t.Helper()
	var publish flowstone.AssetFunc
	if !signal {
		publish = func(ctx *flowstone.Context) (any, error) {
			c.inc("publish")
			v, err := flowstone.Dep[int](ctx, "build")
			return v * 10, err
		}
	}
	p, err := flowstone.NewPipeline("release",
		flowstone.Asset("build", func(*flowstone.Context) (any, error) {
			c.inc("build")
			return 4, nil
		}, flowstone.PartitionedBy(flowstone.AnyKey)),
		flowstone.Asset("publish", publish, flowstone.DependsOn("build"), gate),
		flowstone.Asset("announce", func(ctx *flowstone.Context) (any, error) {
			c.inc("announce")
			v, err := flowstone.Dep[int](ctx, "publish")
			return v + 1, err
		}, flowstone.DependsOn("publish")),
	)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// gateEvents returns a channel of e's gate events.
func gateEvents(t testing.TB, e *flowstone.Engine) <-chan flowstone.Event {
	t.Helper()
	ch := make(chan flowstone.Event, 64)
	t.Cleanup(e.Subscribe(func(ev flowstone.Event) {
		if strings.HasPrefix(string(ev.Kind), "gate.") {
			ch <- ev
		}
	}))
	return ch
}

// nextEvent waits for the next event on ch, which must be of kind.
func nextEvent(t testing.TB, ch <-chan flowstone.Event, kind flowstone.EventKind) flowstone.Event {
	t.Helper()
	select {
	case ev := <-ch:
		if ev.Kind != kind {
			t.Fatalf("event %s (%+v), want %s", ev.Kind, ev, kind)
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s event", kind)
	}
	return flowstone.Event{}
}

type runOutcome struct {
	res *flowstone.Result
	err error
}

// runAsync runs asset in the background.
func runAsync(ctx context.Context, e *flowstone.Engine, p *flowstone.Pipeline, asset string, opts ...flowstone.RunOption) <-chan runOutcome {
	ch := make(chan runOutcome, 1)
	go func() {
		res, err := e.Run(ctx, p, asset, opts...)
		ch <- runOutcome{res, err}
	}()
	return ch
}

func waitRun(t testing.TB, ch <-chan runOutcome) runOutcome {
	t.Helper()
	select {
	case out := <-ch:
		return out
	case <-time.After(20 * time.Second):
		t.Fatal("the run did not end")
	}
	return runOutcome{}
}

func TestApprovalGateWaitsThenRuns(t *testing.T) {
	ctx := ctxT(t)
	e := newEngine(t)
	evs := gateEvents(t, e)
	var c counter
	p := releasePipeline(t, &c, flowstone.Approval(flowstone.ApprovalConfig{Message: "Publish?", Context: map[string]any{"ticket": "REL-1"}}), false)

	done := runAsync(ctx, e, p, "announce", flowstone.Partition("v1"))
	wait := nextEvent(t, evs, flowstone.EventGateWait)
	if wait.Asset != "publish" || wait.Partition != "v1" || wait.Metadata["gate"] != "approval" {
		t.Fatalf("gate.wait = %+v", wait)
	}
	st, err := e.Status(ctx, p, "publish", flowstone.Partition("v1"))
	if err != nil || st.State != flowstone.StateWaitingApproval || st.Gate == nil || st.Gate.Message != "Publish?" || st.Gate.Decision != "" {
		t.Fatalf("status of the waiting gate = %+v (gate %+v), %v", st, st.Gate, err)
	}
	if c.of("publish") != 0 || c.of("build") != 1 {
		t.Fatalf("before the approval: publish ran %d times, build %d; want 0 and 1", c.of("publish"), c.of("build"))
	}
	list, err := e.Approvals(ctx, p)
	if err != nil || len(list) != 1 || list[0].Asset != "publish" || list[0].Partition != "v1" || list[0].Kind != flowstone.GateApproval ||
		list[0].Context["ticket"] != "REL-1" || list[0].RunID != wait.RunID || list[0].Token != "" {
		t.Fatalf("approvals = %+v, %v", list, err)
	}

	if err := e.Approve(ctx, p, "publish", flowstone.Partition("v1"), flowstone.Reason("ship it")); err != nil {
		t.Fatal(err)
	}
	out := waitRun(t, done)
	if out.err != nil || decodeInt(t, out.res) != 41 {
		t.Fatalf("run after the approval = %v", out.err)
	}
	if ev := nextEvent(t, evs, flowstone.EventGateApproved); ev.Metadata["reason"] != "ship it" {
		t.Fatalf("gate.approved = %+v", ev)
	}
	if c.of("publish") != 1 || c.of("announce") != 1 {
		t.Fatalf("publish ran %d times, announce %d; want once each", c.of("publish"), c.of("announce"))
	}
	if list, _ := e.Approvals(ctx, p); len(list) != 0 {
		t.Fatalf("approvals after the approval = %+v", list)
	}
	// A materialized gated asset is reused: no gate.
	if res, err := e.Run(ctx, p, "announce", flowstone.Partition("v1")); err != nil || !res.Cached {
		t.Fatalf("second run = %+v, %v; want the cached value", res, err)
	}
	err = e.Approve(ctx, p, "publish", flowstone.Partition("v1"))
	if fe := wantType(t, err, flowstone.TypeNotFound); fe.Details["state"] != flowstone.StateCompleted {
		t.Fatalf("approve with nothing waiting: %v", fe)
	}
}

func TestRejectFailsTheAssetAndItsDependents(t *testing.T) {
	ctx := ctxT(t)
	e := newEngine(t)
	evs := gateEvents(t, e)
	var c counter
	p := releasePipeline(t, &c, flowstone.Approval(flowstone.ApprovalConfig{}), false)

	// A first value, approved.
	done := runAsync(ctx, e, p, "publish")
	nextEvent(t, evs, flowstone.EventGateWait)
	if err := e.Approve(ctx, p, "publish"); err != nil {
		t.Fatal(err)
	}
	if out := waitRun(t, done); out.err != nil {
		t.Fatal(out.err)
	}
	nextEvent(t, evs, flowstone.EventGateApproved)

	// A forced re-run, rejected: the value stays.
	done = runAsync(ctx, e, p, "publish", flowstone.Force())
	nextEvent(t, evs, flowstone.EventGateWait)
	if err := e.Reject(ctx, p, "publish", flowstone.Reason("not today")); err != nil {
		t.Fatal(err)
	}
	out := waitRun(t, done)
	fe := wantType(t, out.err, flowstone.TypeRejected)
	if fe.Details["reason"] != "not today" || !strings.Contains(fe.Message, "not today") {
		t.Fatalf("rejection = %v", fe)
	}
	nextEvent(t, evs, flowstone.EventGateRejected)
	st, err := e.Status(ctx, p, "publish")
	if err != nil || st.State != flowstone.StateFailed || !errors.Is(st.Error, flowstone.ErrRejected) || st.Value == nil ||
		st.Gate == nil || st.Gate.Decision != flowstone.GateRejected || st.Gate.Reason != "not today" {
		t.Fatalf("status after the rejection = %+v (gate %+v), %v", st, st.Gate, err)
	}
	if res, err := e.Get(ctx, p, "publish"); err != nil || decodeInt(t, res) != 40 {
		t.Fatalf("get after the rejection: %v; want the last good value 40", err)
	}

	// Its dependents fail with dependency_failed naming the rejection.
	if _, err := e.Invalidate(ctx, p, "publish", flowstone.Cascade()); err != nil {
		t.Fatal(err)
	}
	done = runAsync(ctx, e, p, "announce")
	nextEvent(t, evs, flowstone.EventGateWait)
	if err := e.Reject(ctx, p, "publish", flowstone.Reason("no")); err != nil {
		t.Fatal(err)
	}
	out = waitRun(t, done)
	fe = wantType(t, out.err, flowstone.TypeDependencyFailed)
	root, _ := fe.Details["root_error"].(*flowstone.Error)
	if fe.Details["root_asset"] != "publish" || root == nil || root.Type != flowstone.TypeRejected {
		t.Fatalf("announce's error = %v (%+v), want dependency_failed naming publish's rejection", fe, fe.Details)
	}
	if c.of("announce") != 0 || c.of("publish") != 1 {
		t.Fatalf("announce ran %d times, publish %d", c.of("announce"), c.of("publish"))
	}
}

func TestGateBadInputChangesNothing(t *testing.T) {
	ctx := ctxT(t)
	e := newEngine(t)
	evs := gateEvents(t, e)
	var c counter
	p := releasePipeline(t, &c, flowstone.Approval(flowstone.ApprovalConfig{}), false)
	done := runAsync(ctx, e, p, "publish", flowstone.Partition("k"))
	nextEvent(t, evs, flowstone.EventGateWait)

	wantType(t, e.Approve(ctx, p, "nope", flowstone.Partition("k")), flowstone.TypeAssetNotFound)
	wantType(t, e.Approve(ctx, p, "build", flowstone.Partition("k")), flowstone.TypeBadRequest)
	wantType(t, e.Reject(ctx, p, "announce", flowstone.Partition("k")), flowstone.TypeBadRequest)
	wantType(t, e.Approve(ctx, p, "publish", flowstone.Partition("")), flowstone.TypeBadRequest)
	wantType(t, e.Approve(ctx, p, "publish", flowstone.Partition("\xff")), flowstone.TypeBadRequest)
	wantType(t, e.Approve(ctx, p, "publish", flowstone.Partition("k"), flowstone.Reason(strings.Repeat("x", flowstone.MaxReasonLen+1))), flowstone.TypeBadRequest)
	// A hostile partition is a partition like any other: nothing waits there.
	wantType(t, e.Approve(ctx, p, "publish", flowstone.Partition("../../k")), flowstone.TypeNotFound)
	wantType(t, e.Reject(ctx, p, "publish", flowstone.Partition("k.*>")), flowstone.TypeNotFound)

	if st, err := e.Status(ctx, p, "publish", flowstone.Partition("k")); err != nil || st.State != flowstone.StateWaitingApproval {
		t.Fatalf("status after the bad requests = %+v, %v; want it still waiting", st, err)
	}
	if err := e.Approve(ctx, p, "publish", flowstone.Partition("k")); err != nil {
		t.Fatal(err)
	}
	if out := waitRun(t, done); out.err != nil {
		t.Fatal(out.err)
	}
	wantType(t, e.Approve(ctx, p, "publish", flowstone.Partition("k")), flowstone.TypeNotFound)
}

func TestApprovalExpires(t *testing.T) {
	ctx := ctxT(t)
	e := newEngine(t)
	evs := gateEvents(t, e)
	var c counter
	p := releasePipeline(t, &c, flowstone.Approval(flowstone.ApprovalConfig{Timeout: 100 * time.Millisecond}), false)
	out := waitRun(t, runAsync(ctx, e, p, "announce"))
	fe := wantType(t, out.err, flowstone.TypeDependencyFailed)
	if root, _ := fe.Details["root_error"].(*flowstone.Error); root == nil || root.Type != flowstone.TypeTimeout {
		t.Fatalf("announce's error = %v, want dependency_failed over publish's timeout", fe)
	}
	nextEvent(t, evs, flowstone.EventGateWait)
	nextEvent(t, evs, flowstone.EventGateExpired)
	st, err := e.Status(ctx, p, "publish")
	if err != nil || st.State != flowstone.StateFailed || !errors.Is(st.Error, flowstone.ErrTimeout) || st.Gate.Decision != flowstone.GateExpired {
		t.Fatalf("status of the expired gate = %+v, %v", st, err)
	}
	if c.of("publish") != 0 {
		t.Fatalf("publish ran %d times", c.of("publish"))
	}
}

// TestGateWaitDoesNotCountAgainstTheRun: the run's Timeout bounds its
// work; a gate's wait comes on top of it.
func TestGateWaitDoesNotCountAgainstTheRun(t *testing.T) {
	ctx := ctxT(t)
	e := newEngine(t)
	evs := gateEvents(t, e)
	var c counter
	p := releasePipeline(t, &c, flowstone.Approval(flowstone.ApprovalConfig{Timeout: time.Hour}), false)
	done := runAsync(ctx, e, p, "announce", flowstone.Timeout(100*time.Millisecond))
	nextEvent(t, evs, flowstone.EventGateWait)
	// Longer than the run's Timeout: the approval still finds it waiting.
	time.Sleep(300 * time.Millisecond)
	if err := e.Approve(ctx, p, "publish"); err != nil {
		t.Fatal(err)
	}
	if out := waitRun(t, done); out.err != nil {
		t.Fatal(out.err)
	}
}

func TestCancelReachesAWaitingGate(t *testing.T) {
	ctx := ctxT(t)
	e := newEngine(t)
	evs := gateEvents(t, e)
	var c counter
	p := releasePipeline(t, &c, flowstone.Approval(flowstone.ApprovalConfig{}), false)
	done := runAsync(ctx, e, p, "announce")
	nextEvent(t, evs, flowstone.EventGateWait)
	if err := e.Cancel(ctx, p, "publish"); err != nil {
		t.Fatal(err)
	}
	out := waitRun(t, done)
	fe := wantType(t, out.err, flowstone.TypeDependencyFailed)
	if root, _ := fe.Details["root_error"].(*flowstone.Error); root == nil || root.Type != flowstone.TypeCancelled {
		t.Fatalf("announce's error = %v", fe)
	}
	if st, _ := e.Status(ctx, p, "publish"); st.State != flowstone.StateCancelled {
		t.Fatalf("status after the cancel = %+v", st)
	}
}

// TestConcurrentRunsShareAGate: a run that needs a gated partition while
// another run's gate waits there waits for that gate: one approval, one
// execution, both runs served.
func TestConcurrentRunsShareAGate(t *testing.T) {
	ctx := ctxT(t)
	e := newEngine(t)
	evs := gateEvents(t, e)
	var c counter
	p := releasePipeline(t, &c, flowstone.Approval(flowstone.ApprovalConfig{}), false)
	a := runAsync(ctx, e, p, "announce")
	nextEvent(t, evs, flowstone.EventGateWait)
	b := runAsync(ctx, e, p, "publish")
	if list, err := e.Approvals(ctx, p); err != nil || len(list) != 1 {
		t.Fatalf("approvals = %+v, %v; want the first run's gate alone", list, err)
	}
	if err := e.Approve(ctx, p, "publish"); err != nil {
		t.Fatal(err)
	}
	outA, outB := waitRun(t, a), waitRun(t, b)
	if outA.err != nil || outB.err != nil || decodeInt(t, outB.res) != 40 {
		t.Fatalf("runs = %v, %v", outA.err, outB.err)
	}
	if c.of("publish") != 1 {
		t.Fatalf("publish ran %d times, want once", c.of("publish"))
	}
	select {
	case ev := <-evs:
		if ev.Kind != flowstone.EventGateApproved {
			t.Fatalf("event %+v after the approval", ev)
		}
	default:
	}
}

func TestSignalGate(t *testing.T) {
	ctx := ctxT(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	e, err := flowstone.NewEngine(flowstone.EngineConfig{SignalSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	evs := gateEvents(t, e)
	var c counter
	p := releasePipeline(t, &c, flowstone.WaitForSignal(flowstone.SignalConfig{
		OnSignal: func(ctx *flowstone.Context, payload []byte) (any, error) {
			c.inc("publish")
			var msg struct{ N int }
			if err := json.Unmarshal(payload, &msg); err != nil {
				return nil, err
			}
			b, err := flowstone.Dep[int](ctx, "build")
			return msg.N + b, err
		},
	}), true)
	done := runAsync(ctx, e, p, "announce", flowstone.Partition("s1"))
	nextEvent(t, evs, flowstone.EventGateWait)
	list, err := e.Approvals(ctx, p)
	if err != nil || len(list) != 1 || list[0].Kind != flowstone.GateSignal || list[0].Token == "" {
		t.Fatalf("approvals = %+v, %v", list, err)
	}
	token := list[0].Token
	wantType(t, e.Approve(ctx, p, "publish", flowstone.Partition("s1")), flowstone.TypeBadRequest)

	// Forged: another MAC, another claim, or another secret's token.
	forged := []string{
		token[:len(token)-2] + "AA",
		"fsg1." + strings.TrimPrefix(token, "fsg1.")[1:],
		"",
		"fsg1.e30.AAAA",
	}
	// The same gate's token as another secret signs it.
	other, err := flowstone.NewEngine(flowstone.EngineConfig{SignalSecret: []byte("another secret, 32 bytes long!!!")})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherEvs := gateEvents(t, other)
	octx, ocancel := context.WithCancel(ctx)
	odone := runAsync(octx, other, p, "publish", flowstone.Partition("s1"))
	nextEvent(t, otherEvs, flowstone.EventGateWait)
	olist, err := other.Approvals(ctx, p)
	if err != nil || len(olist) != 1 {
		t.Fatalf("the other engine's approvals = %+v, %v", olist, err)
	}
	ocancel()
	waitRun(t, odone)
	forged = append(forged, olist[0].Token)
	for _, f := range forged {
		wantType(t, e.Signal(ctx, f, []byte(`{"N":1}`)), flowstone.TypeBadRequest)
	}
	wantType(t, e.Signal(ctx, token, []byte(`{not json`)), flowstone.TypeBadRequest)
	if st, _ := e.Status(ctx, p, "publish", flowstone.Partition("s1")); st.State != flowstone.StateWaitingSignal || c.of("publish") != 0 {
		t.Fatalf("after the forged signals: %+v, publish ran %d times", st, c.of("publish"))
	}

	if err := e.Signal(ctx, token, []byte(`{"N":100}`)); err != nil {
		t.Fatal(err)
	}
	out := waitRun(t, done)
	if out.err != nil || decodeInt(t, out.res) != 105 {
		t.Fatalf("run after the signal: %v", out.err)
	}
	nextEvent(t, evs, flowstone.EventGateSignalled)
	// Replayed: refused, and the value stays.
	wantType(t, e.Signal(ctx, token, []byte(`{"N":7}`)), flowstone.TypeNotFound)
	if res, err := e.Get(ctx, p, "publish", flowstone.Partition("s1")); err != nil || decodeInt(t, res) != 104 || c.of("publish") != 1 {
		t.Fatalf("publish after the replay: %v, ran %d times", err, c.of("publish"))
	}
}

func TestSignalGateTimesOut(t *testing.T) {
	ctx := ctxT(t)
	e, err := flowstone.NewEngine(flowstone.EngineConfig{SignalSecret: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	var c counter
	p := releasePipeline(t, &c, flowstone.WaitForSignal(flowstone.SignalConfig{
		Timeout:   50 * time.Millisecond,
		OnTimeout: func(*flowstone.Context) (any, error) { return -1, nil },
	}), true)
	res, err := e.Run(ctx, p, "announce")
	if err != nil || decodeInt(t, res) != 0 {
		t.Fatalf("run over an expired signal gate with OnTimeout = %v", err)
	}
	// Without OnTimeout, expiry fails the asset with a timeout.
	p = releasePipeline(t, &c, flowstone.WaitForSignal(flowstone.SignalConfig{Timeout: 50 * time.Millisecond}), true)
	_, err = e.Run(ctx, p, "publish", flowstone.Partition("x"))
	wantType(t, err, flowstone.TypeTimeout)
}

func TestSignalGateNeedsASecret(t *testing.T) {
	ctx := ctxT(t)
	e := newEngine(t)
	var c counter
	p := releasePipeline(t, &c, flowstone.WaitForSignal(flowstone.SignalConfig{}), true)
	_, err := e.Run(ctx, p, "announce")
	if fe := wantType(t, err, flowstone.TypeConfigError); fe.Details["missing"] != "signal_secret" {
		t.Fatalf("run without a secret = %v", fe)
	}
	if c.of("build") != 0 {
		t.Fatal("build ran although the run was refused")
	}
	_, err = e.Backfill(ctx, p, "publish", flowstone.Partitions("a", "b"))
	wantType(t, err, flowstone.TypeConfigError)
	wantType(t, e.Validate(p, "announce"), flowstone.TypeConfigError)
	// Only what the run may reach counts.
	if _, err := e.Run(ctx, p, "build"); err != nil {
		t.Fatal(err)
	}
	wantType(t, e.Signal(ctx, "fsg1.x.y", nil), flowstone.TypeConfigError)
	_, err = flowstone.NewEngine(flowstone.EngineConfig{SignalSecret: []byte("short")})
	wantType(t, err, flowstone.TypeConfigError)
}

func TestGateDeclarations(t *testing.T) {
	fn := func(*flowstone.Context) (any, error) { return 1, nil }
	for name, def := range map[string]flowstone.AssetDef{
		"two gates": flowstone.Asset("a", fn, flowstone.Approval(flowstone.ApprovalConfig{}),
			flowstone.WaitForSignal(flowstone.SignalConfig{})),
		"a signal asset with a function": flowstone.Asset("a", fn, flowstone.WaitForSignal(flowstone.SignalConfig{})),
		"a negative timeout":             flowstone.Asset("a", fn, flowstone.Approval(flowstone.ApprovalConfig{Timeout: -time.Second})),
		"a context that is not JSON":     flowstone.Asset("a", fn, flowstone.Approval(flowstone.ApprovalConfig{Context: map[string]any{"f": fn}})),
	} {
		if _, err := flowstone.NewPipeline("p", def); !errors.Is(err, flowstone.ErrConfig) {
			t.Errorf("%s: NewPipeline = %v, want a config error", name, err)
		}
	}
	var c counter
	p := releasePipeline(t, &c, flowstone.Approval(flowstone.ApprovalConfig{}), false)
	if info, err := p.AssetInfo("publish"); err != nil || !info.HasApproval || info.HasSignal {
		t.Fatalf("info of publish = %+v, %v", info, err)
	}
	if info, _ := p.AssetInfo("build"); info.HasApproval {
		t.Fatalf("info of build = %+v", info)
	}
	p = releasePipeline(t, &c, flowstone.WaitForSignal(flowstone.SignalConfig{}), true)
	if info, err := p.AssetInfo("publish"); err != nil || info.HasApproval || !info.HasSignal {
		t.Fatalf("info of the signal asset = %+v, %v", info, err)
	}
}

// TestAFollowerEndingLeavesTheGateAlone: a run that waits at another
// run's gate and ends (its context cancelled) records nothing over that
// gate, which waits on for its own run.
func TestAFollowerEndingLeavesTheGateAlone(t *testing.T) {
	ctx := ctxT(t)
	e := newEngine(t)
	evs := gateEvents(t, e)
	var c counter
	p := releasePipeline(t, &c, flowstone.Approval(flowstone.ApprovalConfig{}), false)
	a := runAsync(ctx, e, p, "announce")
	wait := nextEvent(t, evs, flowstone.EventGateWait)
	bctx, cancelB := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelB()
	out := waitRun(t, runAsync(bctx, e, p, "publish"))
	wantType(t, out.err, flowstone.TypeTimeout)
	st, err := e.Status(ctx, p, "publish")
	if err != nil || st.State != flowstone.StateWaitingApproval || st.RunID != wait.RunID {
		t.Fatalf("status after the follower ended = %+v, %v; want the first run's gate, waiting", st, err)
	}
	if err := e.Approve(ctx, p, "publish"); err != nil {
		t.Fatal(err)
	}
	if out := waitRun(t, a); out.err != nil {
		t.Fatal(out.err)
	}
}

// TestApproveAfterExpiryIsRefused: an expired gate cannot be approved.
func TestApproveAfterExpiryIsRefused(t *testing.T) {
	ctx := ctxT(t)
	e := newEngine(t)
	evs := gateEvents(t, e)
	var c counter
	p := releasePipeline(t, &c, flowstone.Approval(flowstone.ApprovalConfig{Timeout: 50 * time.Millisecond}), false)
	done := runAsync(ctx, e, p, "publish")
	nextEvent(t, evs, flowstone.EventGateWait)
	nextEvent(t, evs, flowstone.EventGateExpired)
	wantType(t, e.Approve(ctx, p, "publish"), flowstone.TypeNotFound)
	wantType(t, waitRun(t, done).err, flowstone.TypeTimeout)
	if c.of("publish") != 0 {
		t.Fatalf("publish ran %d times", c.of("publish"))
	}
}

// TestGatesCrossTheManifest: a coordinator's pipeline, rebuilt from a
// worker's manifest without the code, knows each gate: its kind, its wait
// (and so a run's limit), whether a signal gate's expiry has a handler.
func TestGatesCrossTheManifest(t *testing.T) {
	var c counter
	p := releasePipeline(t, &c, flowstone.WaitForSignal(flowstone.SignalConfig{Timeout: time.Minute,
		OnTimeout: func(*flowstone.Context) (any, error) { return 0, nil }}), true)
	m := bridge.Manifest(p, "w1")
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	spec := m.Assets[1]
	if spec.Name != "publish" || !spec.HasSignal || !spec.SignalOnTimeout || spec.GateTimeoutMS != 60_000 || spec.HasApproval {
		t.Fatalf("publish's spec = %+v", spec)
	}
	q, err := bridge.PipelineFromManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := q.AssetInfo("publish"); !info.HasSignal {
		t.Fatalf("info from the manifest = %+v", info)
	}
	limit, err := bridge.RunLimit(q, "announce", true, time.Hour)
	if err != nil || limit != time.Hour+time.Minute {
		t.Fatalf("run limit from the manifest = %v, %v", limit, err)
	}

	a := releasePipeline(t, &c, flowstone.Approval(flowstone.ApprovalConfig{Message: "go?", Context: map[string]any{"n": 1}}), false)
	m = bridge.Manifest(a, "w1")
	if spec := m.Assets[1]; !spec.HasApproval || spec.ApprovalMessage != "go?" || spec.ApprovalContext["n"] != 1 ||
		spec.GateTimeoutMS != flowstone.DefaultGateTimeout.Milliseconds() {
		t.Fatalf("approval spec = %+v", spec)
	}
	q, err = bridge.PipelineFromManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	if approval, signal := bridge.HasGates(q); !approval || signal {
		t.Fatalf("gates of the rebuilt pipeline: approval %v, signal %v", approval, signal)
	}
}
