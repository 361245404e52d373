package faces_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/filestore"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats-server/v2/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The default embedded engine (the *Pipeline face) lives as long
		// as the process.
		goleak.IgnoreAnyFunction("github.com/flowstone-go/flowstone/internal/gopool.(*Pool).run"),
	)
}

// face is one way of calling the verbs. Each takes the pipeline; the
// fleet's client sends its name.
type face interface {
	Run(ctx context.Context, p *flowstone.Pipeline, asset string, opts ...flowstone.RunOption) (*flowstone.Result, error)
	Get(ctx context.Context, p *flowstone.Pipeline, asset string, opts ...flowstone.GetOption) (*flowstone.Result, error)
	Exists(ctx context.Context, p *flowstone.Pipeline, asset string, opts ...flowstone.GetOption) (bool, error)
	Status(ctx context.Context, p *flowstone.Pipeline, asset string, opts ...flowstone.GetOption) (flowstone.StatusInfo, error)
	Cancel(ctx context.Context, p *flowstone.Pipeline, asset string, opts ...flowstone.GetOption) error
	Invalidate(ctx context.Context, p *flowstone.Pipeline, asset string, opts ...flowstone.InvalidateOption) (int, error)
	Backfill(ctx context.Context, p *flowstone.Pipeline, asset string, opts ...flowstone.BackfillOption) (flowstone.BackfillStats, error)
	Approve(ctx context.Context, p *flowstone.Pipeline, asset string, opts ...flowstone.ApproveOption) error
	Reject(ctx context.Context, p *flowstone.Pipeline, asset string, opts ...flowstone.ApproveOption) error
	Approvals(ctx context.Context, p *flowstone.Pipeline) ([]flowstone.WaitingGate, error)
	// Signal delivers a signal; the *Pipeline face's Default engine has
	// no signal secret, so it runs no signal gate (signals reports false).
	Signal(ctx context.Context, token string, payload []byte) error
	signals() bool
	// restart stops what drives the face's runs the hard way, as a
	// process that dies, and starts it again over the same store: the
	// fleet's coordinator (the same id, which resumes its runs, while the
	// client keeps waiting for them), or an engine, which resumes runID's
	// run of asset when it is run again with that id. It returns the face
	// after the restart and the outcome of the resumed run (done, on the
	// fleet). The *Pipeline face's Default engine lives as long as the
	// process: it skips.
	restart(t *testing.T, ctx context.Context, p *flowstone.Pipeline, asset, runID string, done <-chan error) (face, <-chan error)
}

// signalSecret is the engine face's and the fleet's signal secret.
var signalSecret = []byte("faces-signal-secret-0123456789ab")

// fleetFace is a face over a fleet of workers.
type fleetFace interface {
	// itemWorkers calls run and returns how many items of the scatter
	// asset each worker ran meanwhile, from the fleet's events.
	itemWorkers(t *testing.T, ctx context.Context, p *flowstone.Pipeline, asset string, run func()) map[string]int
}

func (f clientFace) itemWorkers(t *testing.T, ctx context.Context, p *flowstone.Pipeline, asset string, run func()) map[string]int {
	wctx, stop := context.WithCancel(ctx)
	var (
		mu       sync.Mutex
		byWorker = map[string]int{}
		total    int
		watched  = make(chan error, 1)
	)
	ready := make(chan struct{})
	var once sync.Once
	go func() {
		watched <- f.c.Watch(wctx, p.Name(), func(ev protocol.Event) {
			switch {
			case ev.Asset == "faces_watch_marker":
				once.Do(func() { close(ready) })
			case ev.Kind == protocol.EventScatterItemStop && ev.Asset == asset:
				mu.Lock()
				w, _ := ev.Metadata["worker"].(string)
				byWorker[w]++
				total++
				mu.Unlock()
			}
		})
	}()
	// The watch is on once it shows a marker event: publish one until.
	nc := natstest.Connect(t, f.fl.srv)
	marker := protocol.Event{V: protocol.Version, Kind: protocol.EventRunStart, Pipeline: p.Name(), Asset: "faces_watch_marker",
		Partition: "marker", RunID: "faces-watch-marker"}
	for waiting := true; waiting; {
		marker.Time = time.Now().UTC()
		body, perr := protocol.EncodeEventBatch(protocol.EventBatch{V: protocol.Version, Pipeline: p.Name(), Kind: marker.Kind, Events: []protocol.Event{marker}})
		if perr != nil {
			t.Fatal(perr)
		}
		if err := nc.Publish(protocol.EventSubject(p.Name(), marker.Kind), body); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ready:
			waiting = false
		case <-ctx.Done():
			t.Fatal("the watch never showed its marker event")
		case <-time.After(20 * time.Millisecond):
		}
	}
	run()
	// Every item's stop event arrives (events are batched for a moment).
	for {
		mu.Lock()
		n := total
		mu.Unlock()
		if n >= 10_000 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d item stop events seen of 10,000", n)
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	<-watched
	mu.Lock()
	defer mu.Unlock()
	return maps.Clone(byWorker)
}

// engineFace calls an Engine of the test's own, over a store it can fence
// off (see restart).
type engineFace struct {
	e      *flowstone.Engine
	kv     *fencedKV
	stores map[string]objectstore.Store
}

// newEngineFace returns an engine face over store, fenced anew, and the
// object stores, closing the engine when the test ends.
func newEngineFace(t *testing.T, store kv.Store, stores map[string]objectstore.Store) engineFace {
	t.Helper()
	fenced := &fencedKV{Store: store}
	e, err := flowstone.NewEngine(flowstone.EngineConfig{KV: fenced, Stores: stores, SignalSecret: signalSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return engineFace{e, fenced, stores}
}

// fencedKV is a kv.Store that, once fenced, refuses every call as a closed
// store does: the engine that uses it can record nothing more, as a
// process that died (or a coordinator handing its runs back).
type fencedKV struct {
	kv.Store
	fenced atomic.Bool
}

func (f *fencedKV) check() error {
	if f.fenced.Load() {
		return kv.ErrClosed
	}
	return nil
}

func (f *fencedKV) Get(ctx context.Context, key string) (kv.Entry, error) {
	if err := f.check(); err != nil {
		return kv.Entry{}, err
	}
	return f.Store.Get(ctx, key)
}
func (f *fencedKV) Put(ctx context.Context, key string, v []byte) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Store.Put(ctx, key, v)
}
func (f *fencedKV) Create(ctx context.Context, key string, v []byte) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Store.Create(ctx, key, v)
}
func (f *fencedKV) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Store.Update(ctx, key, v, rev)
}
func (f *fencedKV) Delete(ctx context.Context, key string, rev uint64) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key, rev)
}
func (f *fencedKV) Keys(ctx context.Context, prefix string) ([]string, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.Store.Keys(ctx, prefix)
}
func (f *fencedKV) Watch(ctx context.Context, prefix string) (<-chan kv.Entry, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.Store.Watch(ctx, prefix)
}

// restart fences the engine's store off, stops the engine at once (its
// runs end, recording nothing), and runs asset again as runID's run on a
// new engine over the same store.
func (f engineFace) restart(t *testing.T, ctx context.Context, p *flowstone.Pipeline, asset, runID string, done <-chan error) (face, <-chan error) {
	t.Helper()
	f.kv.fenced.Store(true)
	now, cancel := context.WithCancel(ctx)
	cancel()
	f.e.Stop(now)
	if err := waitDone(t, ctx, done); err == nil {
		t.Fatal("the run ended well on a stopped engine")
	}
	nf := newEngineFace(t, f.kv.Store, f.stores)
	resumed := make(chan error, 1)
	go func() {
		_, err := nf.Run(ctx, p, asset, flowstone.WithRunID(runID))
		resumed <- err
	}()
	return nf, resumed
}

func (f engineFace) Run(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.RunOption) (*flowstone.Result, error) {
	return f.e.Run(ctx, p, a, o...)
}
func (f engineFace) Get(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.GetOption) (*flowstone.Result, error) {
	return f.e.Get(ctx, p, a, o...)
}
func (f engineFace) Exists(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.GetOption) (bool, error) {
	return f.e.Exists(ctx, p, a, o...)
}
func (f engineFace) Status(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.GetOption) (flowstone.StatusInfo, error) {
	return f.e.Status(ctx, p, a, o...)
}
func (f engineFace) Cancel(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.GetOption) error {
	return f.e.Cancel(ctx, p, a, o...)
}
func (f engineFace) Invalidate(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.InvalidateOption) (int, error) {
	return f.e.Invalidate(ctx, p, a, o...)
}
func (f engineFace) Backfill(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.BackfillOption) (flowstone.BackfillStats, error) {
	return f.e.Backfill(ctx, p, a, o...)
}
func (f engineFace) Approve(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.ApproveOption) error {
	return f.e.Approve(ctx, p, a, o...)
}
func (f engineFace) Reject(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.ApproveOption) error {
	return f.e.Reject(ctx, p, a, o...)
}
func (f engineFace) Approvals(ctx context.Context, p *flowstone.Pipeline) ([]flowstone.WaitingGate, error) {
	return f.e.Approvals(ctx, p)
}
func (f engineFace) Signal(ctx context.Context, token string, payload []byte) error {
	return f.e.Signal(ctx, token, payload)
}
func (engineFace) signals() bool { return true }

// pipelineFace calls the *Pipeline methods (the default embedded engine).
type pipelineFace struct{}

func (pipelineFace) Run(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.RunOption) (*flowstone.Result, error) {
	return p.Run(ctx, a, o...)
}
func (pipelineFace) Get(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.GetOption) (*flowstone.Result, error) {
	return p.Get(ctx, a, o...)
}
func (pipelineFace) Exists(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.GetOption) (bool, error) {
	return p.Exists(ctx, a, o...)
}
func (pipelineFace) Status(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.GetOption) (flowstone.StatusInfo, error) {
	return p.Status(ctx, a, o...)
}
func (pipelineFace) Cancel(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.GetOption) error {
	return p.Cancel(ctx, a, o...)
}
func (pipelineFace) Invalidate(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.InvalidateOption) (int, error) {
	return p.Invalidate(ctx, a, o...)
}
func (pipelineFace) Backfill(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.BackfillOption) (flowstone.BackfillStats, error) {
	return p.Backfill(ctx, a, o...)
}
func (pipelineFace) Approve(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.ApproveOption) error {
	return p.Approve(ctx, a, o...)
}
func (pipelineFace) Reject(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.ApproveOption) error {
	return p.Reject(ctx, a, o...)
}
func (pipelineFace) Approvals(ctx context.Context, p *flowstone.Pipeline) ([]flowstone.WaitingGate, error) {
	return p.Approvals(ctx)
}
func (pipelineFace) Signal(ctx context.Context, token string, payload []byte) error {
	return flowstone.Default().Signal(ctx, token, payload)
}
func (pipelineFace) signals() bool { return false }
func (pipelineFace) restart(t *testing.T, _ context.Context, _ *flowstone.Pipeline, _, _ string, _ <-chan error) (face, <-chan error) {
	t.Skip("the Default engine lives as long as the process: it is never restarted")
	return nil, nil
}

// clientFace calls a fleet through client.Client.
type clientFace struct {
	c  *client.Client
	fl *testFleet
}

// restart restarts the fleet's coordinator; the run goes on, and the
// client waiting for it keeps waiting.
func (f clientFace) restart(t *testing.T, _ context.Context, _ *flowstone.Pipeline, _, _ string, done <-chan error) (face, <-chan error) {
	t.Helper()
	f.fl.restart(t)
	return f, done
}

func (f clientFace) Run(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.RunOption) (*flowstone.Result, error) {
	return f.c.Run(ctx, p.Name(), a, o...)
}
func (f clientFace) Get(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.GetOption) (*flowstone.Result, error) {
	return f.c.Get(ctx, p.Name(), a, o...)
}
func (f clientFace) Exists(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.GetOption) (bool, error) {
	return f.c.Exists(ctx, p.Name(), a, o...)
}
func (f clientFace) Status(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.GetOption) (flowstone.StatusInfo, error) {
	return f.c.Status(ctx, p.Name(), a, o...)
}
func (f clientFace) Cancel(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.GetOption) error {
	return f.c.Cancel(ctx, p.Name(), a, o...)
}
func (f clientFace) Invalidate(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.InvalidateOption) (int, error) {
	return f.c.Invalidate(ctx, p.Name(), a, o...)
}
func (f clientFace) Backfill(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.BackfillOption) (flowstone.BackfillStats, error) {
	return f.c.Backfill(ctx, p.Name(), a, o...)
}
func (f clientFace) Approve(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.ApproveOption) error {
	return f.c.Approve(ctx, p.Name(), a, o...)
}
func (f clientFace) Reject(ctx context.Context, p *flowstone.Pipeline, a string, o ...flowstone.ApproveOption) error {
	return f.c.Reject(ctx, p.Name(), a, o...)
}
func (f clientFace) Approvals(ctx context.Context, p *flowstone.Pipeline) ([]flowstone.WaitingGate, error) {
	return f.c.Approvals(ctx, p.Name())
}
func (f clientFace) Signal(ctx context.Context, token string, payload []byte) error {
	return f.c.Signal(ctx, token, payload)
}
func (clientFace) signals() bool { return true }

// counts counts the executions of each asset of one pipeline instance, and
// lets a case steer its assets.
type counts struct {
	mu    sync.Mutex
	execs map[string]int
	fail  atomic.Bool   // the asset "flaky" fails while set
	gate  chan struct{} // the asset "slow" waits for it (or its context)
	start chan struct{} // "slow" reports each start here
}

func newCounts() *counts {
	return &counts{execs: map[string]int{}, gate: make(chan struct{}), start: make(chan struct{}, 16)}
}

func (c *counts) add(asset string) {
	c.mu.Lock()
	c.execs[asset]++
	c.mu.Unlock()
}

func (c *counts) of(asset string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.execs[asset]
}

// pipeline is the table's pipeline, named name: the proposal's example
// (numbers → doubled → sum = 30), a daily asset, one that fails on
// demand and its dependent, one that waits, and gated ones: publish
// (an approval, over numbers) with its dependent announce, and ack (a
// signal, whose value is the payload's n plus 1) with its dependent
// after_ack.
func pipeline(name string, c *counts) *flowstone.Pipeline {
	counted := func(asset string, fn flowstone.AssetFunc) flowstone.AssetFunc {
		return func(ctx *flowstone.Context) (any, error) {
			c.add(asset)
			return fn(ctx)
		}
	}
	return flowstone.MustPipeline(name,
		flowstone.Asset("numbers", counted("numbers", func(*flowstone.Context) (any, error) { return []int{1, 2, 3, 4, 5}, nil })),
		flowstone.Asset("doubled", counted("doubled", func(ctx *flowstone.Context) (any, error) {
			nums, err := flowstone.Dep[[]int](ctx, "numbers")
			out := make([]int, len(nums))
			for i, n := range nums {
				out[i] = 2 * n
			}
			return out, err
		}), flowstone.DependsOn("numbers")),
		flowstone.Asset("sum", counted("sum", func(ctx *flowstone.Context) (any, error) {
			nums, err := flowstone.Dep[[]int](ctx, "doubled")
			s := 0
			for _, n := range nums {
				s += n
			}
			return s, err
		}), flowstone.DependsOn("doubled")),
		flowstone.Asset("daily", counted("daily", func(ctx *flowstone.Context) (any, error) {
			return "day " + ctx.Partition(), nil
		}), flowstone.PartitionedBy(flowstone.Daily)),
		flowstone.Asset("flaky", counted("flaky", func(*flowstone.Context) (any, error) {
			if c.fail.Load() {
				return nil, errors.New("flaky failed on purpose")
			}
			return 7, nil
		})),
		flowstone.Asset("after_flaky", counted("after_flaky", func(ctx *flowstone.Context) (any, error) {
			n, err := flowstone.Dep[int](ctx, "flaky")
			return n + 1, err
		}), flowstone.DependsOn("flaky")),
		flowstone.Asset("fan", counted("fan", func(ctx *flowstone.Context) (any, error) {
			return "item " + ctx.ScatterItem(), nil
		}), flowstone.Scatter(func(*flowstone.Context) ([]string, error) {
			return []string{"a", "b", "a", "c"}, nil
		}, flowstone.ScatterConfig{Parallel: 2})),
		flowstone.Asset("many_lenient", counted("many", manyItem), flowstone.Scatter(manyItems, flowstone.ScatterConfig{Parallel: 256, MaxFailureRate: 0.02})),
		flowstone.Asset("many_strict", counted("many", manyItem), flowstone.Scatter(manyItems, flowstone.ScatterConfig{Parallel: 256, MaxFailureRate: 0.005})),
		flowstone.Asset("batched", counted("batched", func(ctx *flowstone.Context) (any, error) {
			b, ok := ctx.ScatterBatch()
			if !ok || b.Count != 4 {
				return nil, fmt.Errorf("batch %+v, %v: want one of 4", b, ok)
			}
			if slices.Contains(b.Items, "c1") {
				return nil, errors.New("c's batch fails")
			}
			return fmt.Sprintf("%d:%s", b.Index, strings.Join(b.Items, "+")), nil
		}), flowstone.Scatter(func(*flowstone.Context) ([]string, error) {
			return []string{"a1", "b1", "a2", "b2", "c1", "b3"}, nil
		}, flowstone.ScatterConfig{MaxFailures: 1, Batching: &flowstone.Batching{MaxItems: 2, GroupBy: func(it string) string { return it[:1] }}})),
		flowstone.Asset("long_fan", counted("long_fan", func(ctx *flowstone.Context) (any, error) {
			// The first half end at once; the rest wait for the cancel.
			if c.of("long_fan") <= 200 {
				return 1, nil
			}
			select {
			case <-c.gate:
				return 1, nil
			case <-ctx.Context().Done():
				return nil, ctx.Context().Err()
			}
		}), flowstone.Scatter(func(*flowstone.Context) ([]string, error) {
			items := make([]string, 400)
			for i := range items {
				items[i] = fmt.Sprintf("i%03d", i)
			}
			return items, nil
		}, flowstone.ScatterConfig{Parallel: 16, BatchSize: 4})),
		flowstone.Asset("slow", counted("slow", func(ctx *flowstone.Context) (any, error) {
			c.start <- struct{}{}
			select {
			case <-c.gate:
				return "done", nil
			case <-ctx.Context().Done():
				return nil, ctx.Context().Err()
			}
		})),
		flowstone.Asset("publish", counted("publish", func(ctx *flowstone.Context) (any, error) {
			nums, err := flowstone.Dep[[]int](ctx, "numbers")
			return len(nums), err
		}), flowstone.DependsOn("numbers"), flowstone.Approval(flowstone.ApprovalConfig{Message: "Publish the numbers?", Context: map[string]any{"count": 5}})),
		flowstone.Asset("announce", counted("announce", func(ctx *flowstone.Context) (any, error) {
			n, err := flowstone.Dep[int](ctx, "publish")
			return fmt.Sprintf("published %d", n), err
		}), flowstone.DependsOn("publish")),
		flowstone.Asset("ack", nil, flowstone.WaitForSignal(flowstone.SignalConfig{
			OnSignal: func(ctx *flowstone.Context, payload []byte) (any, error) {
				c.add("ack")
				var msg struct{ N int }
				err := json.Unmarshal(payload, &msg)
				return msg.N + 1, err
			},
		})),
		flowstone.Asset("after_ack", counted("after_ack", func(ctx *flowstone.Context) (any, error) {
			n, err := flowstone.Dep[int](ctx, "ack")
			return n * 2, err
		}), flowstone.DependsOn("ack")),
	)
}

// runBehind runs asset on f in the background.
func runBehind(ctx context.Context, f face, p *flowstone.Pipeline, asset string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := f.Run(ctx, p, asset)
		done <- err
	}()
	return done
}

// waitGate polls the face's list of waiting gates until asset's is there,
// and returns it.
func waitGate(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, asset string) flowstone.WaitingGate {
	t.Helper()
	for {
		list, err := f.Approvals(ctx, p)
		if err != nil {
			t.Fatalf("approvals: %v", err)
		}
		for _, g := range list {
			if g.Asset == asset {
				return g
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the gate of %s never waited (approvals: %+v)", asset, list)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func waitDone(t *testing.T, ctx context.Context, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		t.Fatal("the run never ended")
	}
	return nil
}

// row is one behaviour, checked on every face with a pipeline of its own.
type row struct {
	name  string
	check func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts)
}

func decode[T any](t *testing.T, r *flowstone.Result) T {
	t.Helper()
	var v T
	if err := r.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", r.Asset, err)
	}
	return v
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s = %v, want an error matching %v", what, err, target)
	}
}

var rows = []row{
	{"run materializes the target and its dependencies, once", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		res, err := f.Run(ctx, p, "sum")
		if err != nil {
			t.Fatal(err)
		}
		if got := decode[int](t, res); got != 30 || res.Cached {
			t.Fatalf("sum = %d (cached %v), want 30 computed now", got, res.Cached)
		}
		again, err := f.Run(ctx, p, "sum")
		if err != nil || !again.Cached || again.RunID != res.RunID {
			t.Fatalf("second run = %+v, %v; want the first run's value, cached", again, err)
		}
		if c.of("numbers") != 1 || c.of("doubled") != 1 || c.of("sum") != 1 {
			t.Fatalf("executions %v, want each asset once", c.execs)
		}
	}},
	{"get, exists and status before and after a run", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		_, err := f.Get(ctx, p, "doubled")
		wantErr(t, "get before any run", err, flowstone.ErrNotFound)
		if ok, err := f.Exists(ctx, p, "doubled"); ok || err != nil {
			t.Fatalf("exists before any run = %v, %v", ok, err)
		}
		st, err := f.Status(ctx, p, "doubled")
		if err != nil || st.State != flowstone.StateNotFound || st.Value != nil {
			t.Fatalf("status before any run = %+v, %v", st, err)
		}
		if _, err := f.Run(ctx, p, "doubled"); err != nil {
			t.Fatal(err)
		}
		res, err := f.Get(ctx, p, "doubled")
		if err != nil {
			t.Fatal(err)
		}
		if got := decode[[]int](t, res); len(got) != 5 || got[4] != 10 {
			t.Fatalf("get doubled = %v", got)
		}
		if ok, err := f.Exists(ctx, p, "numbers"); !ok || err != nil {
			t.Fatalf("exists numbers after the run = %v, %v", ok, err)
		}
		st, err = f.Status(ctx, p, "doubled")
		if err != nil || st.State != flowstone.StateCompleted || st.CompletedAt == nil || st.Value == nil || st.RunID != res.RunID {
			t.Fatalf("status after the run = %+v, %v", st, err)
		}
	}},
	{"an unknown asset is asset_not_found on every verb", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		_, err := f.Run(ctx, p, "nope")
		wantErr(t, "run", err, flowstone.ErrAssetNotFound)
		_, err = f.Get(ctx, p, "nope")
		wantErr(t, "get", err, flowstone.ErrAssetNotFound)
		_, err = f.Exists(ctx, p, "nope")
		wantErr(t, "exists", err, flowstone.ErrAssetNotFound)
		_, err = f.Status(ctx, p, "nope")
		wantErr(t, "status", err, flowstone.ErrAssetNotFound)
		_, err = f.Invalidate(ctx, p, "nope")
		wantErr(t, "invalidate", err, flowstone.ErrAssetNotFound)
		_, err = f.Backfill(ctx, p, "nope", flowstone.Partitions("2025-01-01"))
		wantErr(t, "backfill", err, flowstone.ErrAssetNotFound)
	}},
	{"a failure fails its dependents and keeps the last good value", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		if _, err := f.Run(ctx, p, "flaky"); err != nil {
			t.Fatal(err)
		}
		c.fail.Store(true)
		_, err := f.Run(ctx, p, "flaky", flowstone.Force())
		wantErr(t, "forced run that fails", err, flowstone.ErrExecutionFailed)
		st, err := f.Status(ctx, p, "flaky")
		if err != nil || st.State != flowstone.StateFailed || st.Error == nil || st.Value == nil {
			t.Fatalf("status after the failed re-run = %+v, %v; want failed, with the last good value", st, err)
		}
		res, err := f.Get(ctx, p, "flaky")
		if err != nil || decode[int](t, res) != 7 {
			t.Fatalf("get after the failed re-run = %v; want the last good value 7", err)
		}
		// The dependent uses the good value.
		res, err = f.Run(ctx, p, "after_flaky")
		if err != nil || decode[int](t, res) != 8 {
			t.Fatalf("after_flaky = %v; want 8 from the good value", err)
		}
		// Without a good value, the dependent fails as dependency_failed.
		if _, err := f.Invalidate(ctx, p, "flaky", flowstone.Cascade()); err != nil {
			t.Fatal(err)
		}
		_, err = f.Run(ctx, p, "after_flaky")
		wantErr(t, "after_flaky over a failing flaky", err, flowstone.ErrDependencyFailed)
	}},
	{"invalidate with cascade removes the values downstream", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		if _, err := f.Run(ctx, p, "sum"); err != nil {
			t.Fatal(err)
		}
		n, err := f.Invalidate(ctx, p, "numbers", flowstone.Cascade())
		if err != nil || n != 3 {
			t.Fatalf("invalidate numbers --cascade = %d, %v; want 3", n, err)
		}
		_, err = f.Get(ctx, p, "sum")
		wantErr(t, "get sum after the invalidate", err, flowstone.ErrNotFound)
		if _, err := f.Run(ctx, p, "sum"); err != nil || c.of("numbers") != 2 {
			t.Fatalf("run after the invalidate: %v, numbers ran %d times; want 2", err, c.of("numbers"))
		}
	}},
	{"partitions: a run per day, a bad key refused", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		res, err := f.Run(ctx, p, "daily", flowstone.Partition("2025-01-15"))
		if err != nil {
			t.Fatal(err)
		}
		if got := decode[string](t, res); got != "day 2025-01-15" || res.Partition != "2025-01-15" {
			t.Fatalf("daily 2025-01-15 = %q (partition %q)", got, res.Partition)
		}
		if ok, err := f.Exists(ctx, p, "daily", flowstone.Partition("2025-01-16")); ok || err != nil {
			t.Fatalf("exists of another day = %v, %v", ok, err)
		}
		_, err = f.Run(ctx, p, "daily", flowstone.Partition("15/01/2025"))
		wantErr(t, "run with a key that is not a day", err, flowstone.ErrBadRequest)
	}},
	{"backfill runs every partition of a range", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		day := func(d int) time.Time { return time.Date(2025, 3, d, 0, 0, 0, 0, time.UTC) }
		st, err := f.Backfill(ctx, p, "daily", flowstone.DateRange(day(1), day(5)), flowstone.Parallel(2))
		if err != nil || st.Succeeded != 5 || st.Failed != 0 {
			t.Fatalf("backfill of 5 days = %+v, %v", st, err)
		}
		st, err = f.Backfill(ctx, p, "daily", flowstone.DateRange(day(4), day(6)))
		if err != nil || st.Succeeded+st.Skipped != 3 || c.of("daily") != 6 {
			t.Fatalf("overlapping backfill = %+v, %v, %d executions; want the new day only executed", st, err, c.of("daily"))
		}
		_, err = f.Backfill(ctx, p, "daily")
		wantErr(t, "backfill without partitions", err, flowstone.ErrBadRequest)
	}},
	{"a run past its timeout ends timeout, and the asset's context ends", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		_, err := f.Run(ctx, p, "slow", flowstone.Timeout(300*time.Millisecond))
		wantErr(t, "run of slow with a timeout", err, flowstone.ErrTimeout)
		st, err := f.Status(ctx, p, "slow")
		if err != nil || st.State != flowstone.StateFailed || st.Error == nil || !errors.Is(st.Error, flowstone.ErrTimeout) {
			t.Fatalf("status after the timeout = %+v, %v; want failed with a timeout error", st, err)
		}
	}},
	{"a run id given is the run's, and values name the runs they came from", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		res, err := f.Run(ctx, p, "sum", flowstone.WithRunID("my-run-1"))
		if err != nil || res.RunID != "my-run-1" {
			t.Fatalf("run with WithRunID = %+v, %v; want run id my-run-1", res, err)
		}
		got, err := f.Get(ctx, p, "sum")
		if err != nil || got.Record == nil || got.Record.Value == nil {
			t.Fatalf("get sum = %+v, %v", got, err)
		}
		up := got.Record.Value.Upstream
		if len(up) != 1 || up[0].Asset != "doubled" || up[0].RunID != "my-run-1" {
			t.Fatalf("lineage of sum = %+v; want doubled of run my-run-1", up)
		}
	}},
	{"an unpartitioned asset refuses a partition; a daily one a key that is not a day, on every verb", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		_, err := f.Run(ctx, p, "sum", flowstone.Partition("../../etc/passwd"))
		wantErr(t, "run of an unpartitioned asset with a partition", err, flowstone.ErrBadRequest)
		_, err = f.Status(ctx, p, "sum", flowstone.Partition("2025-01-15"))
		wantErr(t, "status of an unpartitioned asset with a partition", err, flowstone.ErrBadRequest)
		_, err = f.Get(ctx, p, "daily", flowstone.Partition("someday"))
		wantErr(t, "get of a daily asset with a key that is not a day", err, flowstone.ErrBadRequest)
		_, err = f.Status(ctx, p, "daily", flowstone.Partition("someday"))
		wantErr(t, "status of a daily asset with a key that is not a day", err, flowstone.ErrBadRequest)
		_, err = f.Exists(ctx, p, "daily", flowstone.Partition("someday"))
		wantErr(t, "exists of a daily asset with a key that is not a day", err, flowstone.ErrBadRequest)
		if c.of("sum") != 0 {
			t.Fatalf("sum executed %d times", c.of("sum"))
		}
	}},
	{"invalidate many partitions, or all of them; a bare one of a partitioned asset is refused", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		day := func(d int) time.Time { return time.Date(2025, 4, d, 0, 0, 0, 0, time.UTC) }
		if st, err := f.Backfill(ctx, p, "daily", flowstone.DateRange(day(1), day(6)), flowstone.Parallel(3)); err != nil || st.Succeeded != 6 {
			t.Fatalf("backfill = %+v, %v", st, err)
		}
		_, err := f.Invalidate(ctx, p, "daily")
		wantErr(t, "invalidate of a partitioned asset naming no partition", err, flowstone.ErrBadRequest)
		n, err := f.Invalidate(ctx, p, "daily", flowstone.DateRange(day(1), day(2)))
		if err != nil || n != 2 {
			t.Fatalf("invalidate of 2 days = %d, %v", n, err)
		}
		n, err = f.Invalidate(ctx, p, "daily", flowstone.Partitions("2025-04-03", "2025-04-20"))
		if err != nil || n != 1 {
			t.Fatalf("invalidate of a day with a value and one without = %d, %v; want 1", n, err)
		}
		n, err = f.Invalidate(ctx, p, "daily", flowstone.AllPartitions())
		if err != nil || n != 3 {
			t.Fatalf("invalidate of all partitions = %d, %v; want the 3 left", n, err)
		}
		if ok, err := f.Exists(ctx, p, "daily", flowstone.Partition("2025-04-06")); ok || err != nil {
			t.Fatalf("exists after invalidating all = %v, %v", ok, err)
		}
	}},
	{"a scatter runs each item once and gathers them; its status counts them", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		res, err := f.Run(ctx, p, "fan")
		if err != nil {
			t.Fatal(err)
		}
		got := decode[map[string]string](t, res)
		if len(got) != 3 || got["a"] != "item a" || got["c"] != "item c" || c.of("fan") != 3 {
			t.Fatalf("fan = %v after %d executions; want a, b and c once each", got, c.of("fan"))
		}
		st, err := f.Status(ctx, p, "fan")
		if err != nil || st.Scatter == nil || !sameCounts(st.Scatter, flowstone.ScatterStatus{Total: 3, Completed: 3}) {
			t.Fatalf("status = %+v (scatter %+v), %v; want 3 of 3 completed", st, st.Scatter, err)
		}
	}},
	{"a 10,000-item scatter with 1% failing items succeeds under a 2% threshold, listing them, and fails past 0.5%", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		var res *flowstone.Result
		run := func() {
			var err error
			if res, err = f.Run(ctx, p, "many_lenient"); err != nil {
				t.Fatal(err)
			}
		}
		if fl, ok := f.(fleetFace); ok {
			// On the fleet, both workers run items.
			if byWorker := fl.itemWorkers(t, ctx, p, "many_lenient", run); len(byWorker) != 2 {
				t.Fatalf("items ran on workers %v; want both", byWorker)
			}
		} else {
			run()
		}
		got := decode[map[string]int](t, res)
		if len(got) != 9_900 || got["i00001"] != 1 {
			t.Fatalf("value holds %d items; want the 9,900 that succeeded", len(got))
		}
		st, err := f.Status(ctx, p, "many_lenient")
		if err != nil || st.Scatter == nil || !sameCounts(st.Scatter, flowstone.ScatterStatus{Total: 10_000, Completed: 9_900, Failed: 100}) ||
			len(st.Scatter.FailedItems) != 100 || st.Scatter.FailedItems[0].Item != "i00000" || st.Scatter.FailedItems[99].Item != "i09900" ||
			!strings.Contains(st.Scatter.FailedItems[0].Error.Message, "failed on purpose") {
			t.Fatalf("status = %+v (scatter %+v), %v", st, st.Scatter, err)
		}
		_, err = f.Run(ctx, p, "many_strict")
		wantErr(t, "a scatter past its threshold", err, flowstone.ErrScatterThreshold)
		st, err = f.Status(ctx, p, "many_strict")
		if err != nil || st.State != flowstone.StateFailed || st.Scatter == nil || st.Scatter.Pending != 0 || st.Scatter.Failed <= 50 ||
			st.Scatter.Completed+st.Scatter.Failed+st.Scatter.Cancelled != 10_000 {
			t.Fatalf("status past the threshold = %+v (scatter %+v), %v", st, st.Scatter, err)
		}
	}},
	{"a batched scatter calls its function once per batch, grouped and capped, and gathers the batches in order", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		res, err := f.Run(ctx, p, "batched")
		if err != nil {
			t.Fatal(err)
		}
		got := decode[[]*string](t, res)
		var texts []string
		for _, v := range got {
			if v == nil {
				texts = append(texts, "null")
			} else {
				texts = append(texts, *v)
			}
		}
		if strings.Join(texts, " ") != "0:a1+a2 1:b1+b2 2:b3 null" || c.of("batched") != 4 {
			t.Fatalf("batched = %v after %d calls; want 4 batches, grouped by letter, at most 2 items, c's failed", texts, c.of("batched"))
		}
		st, err := f.Status(ctx, p, "batched")
		if err != nil || st.Scatter == nil || !sameCounts(st.Scatter, flowstone.ScatterStatus{Total: 6, Completed: 5, Failed: 1}) ||
			len(st.Scatter.FailedItems) != 1 || st.Scatter.FailedItems[0].Item != "c1" {
			t.Fatalf("status = %+v (scatter %+v), %v", st, st.Scatter, err)
		}
	}},
	{"a scatter's counts move while it runs, and add up after a cancel with nothing pending", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		done := make(chan error, 1)
		go func() {
			_, err := f.Run(ctx, p, "long_fan")
			done <- err
		}()
		for {
			st, err := f.Status(ctx, p, "long_fan")
			if err != nil {
				t.Fatal(err)
			}
			if s := st.Scatter; st.State == flowstone.StateRunning && s != nil && s.Completed >= 100 && s.Pending > 0 && c.of("long_fan") > 200 {
				break
			}
			select {
			case err := <-done:
				t.Fatalf("the scatter ended before its cancel: %v", err)
			case <-ctx.Done():
				t.Fatalf("the counts never moved: %+v", st.Scatter)
			case <-time.After(20 * time.Millisecond):
			}
		}
		if err := f.Cancel(ctx, p, "long_fan"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "the cancelled scatter", <-done, flowstone.ErrCancelled)
		st, err := f.Status(ctx, p, "long_fan")
		if s := st.Scatter; err != nil || st.State != flowstone.StateCancelled || s == nil || s.Total != 400 || s.Pending != 0 || s.Failed != 0 ||
			s.Completed+s.Cancelled != 400 || s.Completed < 200 || s.Cancelled == 0 {
			t.Fatalf("status after the cancel = %+v (scatter %+v), %v", st, st.Scatter, err)
		}
	}},
	{"cancel ends a running asset; with nothing running it is not_found", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		err := f.Cancel(ctx, p, "sum")
		wantErr(t, "cancel with nothing running", err, flowstone.ErrNotFound)
		done := make(chan error, 1)
		go func() {
			_, err := f.Run(ctx, p, "slow")
			done <- err
		}()
		select {
		case <-c.start:
		case <-ctx.Done():
			t.Fatal("slow never started")
		}
		// The run is under way; cancel until it is seen (the fleet's
		// record says running a moment after the asset starts).
		for {
			err := f.Cancel(ctx, p, "slow")
			if err == nil {
				break
			}
			if !errors.Is(err, flowstone.ErrNotFound) || ctx.Err() != nil {
				t.Fatalf("cancel of the running asset: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		wantErr(t, "the cancelled run", <-done, flowstone.ErrCancelled)
		st, err := f.Status(ctx, p, "slow")
		if err != nil || st.State != flowstone.StateCancelled {
			t.Fatalf("status after the cancel = %+v, %v; want cancelled", st, err)
		}
	}},
	{"an approval gate waits without running; approve resumes it and its dependents run", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		done := runBehind(ctx, f, p, "announce")
		g := waitGate(t, ctx, f, p, "publish")
		if g.Kind != flowstone.GateApproval || g.Message != "Publish the numbers?" || g.Partition != flowstone.DefaultPartition || g.Token != "" ||
			g.Deadline.Sub(g.OpenedAt) != flowstone.DefaultGateTimeout {
			t.Fatalf("waiting gate = %+v", g)
		}
		st, err := f.Status(ctx, p, "publish")
		if err != nil || st.State != flowstone.StateWaitingApproval || st.Gate == nil || st.Gate.Kind != flowstone.GateApproval || st.RunID != g.RunID {
			t.Fatalf("status of the waiting gate = %+v, %v", st, err)
		}
		if c.of("publish") != 0 || c.of("numbers") != 1 {
			t.Fatalf("before the approval publish ran %d times, numbers %d; want 0 and 1", c.of("publish"), c.of("numbers"))
		}
		if err := f.Approve(ctx, p, "publish", flowstone.Reason("looks right")); err != nil {
			t.Fatal(err)
		}
		if err := waitDone(t, ctx, done); err != nil {
			t.Fatalf("the run after the approval: %v", err)
		}
		res, err := f.Get(ctx, p, "announce")
		if err != nil || decode[string](t, res) != "published 5" || c.of("publish") != 1 || c.of("announce") != 1 {
			t.Fatalf("announce = %v after publish ran %d times, announce %d", err, c.of("publish"), c.of("announce"))
		}
		if list, err := f.Approvals(ctx, p); err != nil || len(list) != 0 {
			t.Fatalf("approvals after the approval = %+v, %v", list, err)
		}
	}},
	{"reject fails the gated asset, and its dependents with dependency_failed naming the rejection", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		done := runBehind(ctx, f, p, "announce")
		waitGate(t, ctx, f, p, "publish")
		if err := f.Reject(ctx, p, "publish", flowstone.Reason("wrong numbers")); err != nil {
			t.Fatal(err)
		}
		err := waitDone(t, ctx, done)
		wantErr(t, "the run after the rejection", err, flowstone.ErrDependencyFailed)
		fe := flowstone.AsError(err)
		if fe.Details["root_asset"] != "publish" || !strings.Contains(fe.Message, "rejected") || !strings.Contains(fe.Message, "wrong numbers") {
			t.Fatalf("the run's error = %v (%+v); want it to name publish's rejection", fe, fe.Details)
		}
		st, err := f.Status(ctx, p, "publish")
		if err != nil || st.State != flowstone.StateFailed || !errors.Is(st.Error, flowstone.ErrRejected) || st.Gate == nil ||
			st.Gate.Decision != flowstone.GateRejected || st.Gate.Reason != "wrong numbers" {
			t.Fatalf("status after the rejection = %+v (gate %+v), %v", st, st.Gate, err)
		}
		if c.of("publish") != 0 || c.of("announce") != 0 {
			t.Fatalf("publish ran %d times, announce %d; want neither", c.of("publish"), c.of("announce"))
		}
	}},
	{"approving or rejecting what does not wait, or with bad input, is refused and changes nothing", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		wantErr(t, "approve with nothing waiting", f.Approve(ctx, p, "publish"), flowstone.ErrNotFound)
		wantErr(t, "reject with nothing waiting", f.Reject(ctx, p, "publish"), flowstone.ErrNotFound)
		wantErr(t, "approve of an unknown asset", f.Approve(ctx, p, "nope"), flowstone.ErrAssetNotFound)
		wantErr(t, "approve of an asset without a gate", f.Approve(ctx, p, "numbers"), flowstone.ErrBadRequest)
		wantErr(t, "approve of a signal gate", f.Approve(ctx, p, "ack"), flowstone.ErrBadRequest)
		wantErr(t, "approve with a hostile partition", f.Approve(ctx, p, "publish", flowstone.Partition("../../x.>")), flowstone.ErrBadRequest)
		wantErr(t, "approve with an empty partition", f.Approve(ctx, p, "publish", flowstone.Partition("")), flowstone.ErrBadRequest)
		if st, err := f.Status(ctx, p, "publish"); err != nil || st.State != flowstone.StateNotFound {
			t.Fatalf("status after the refusals = %+v, %v", st, err)
		}
	}},
	{"an approval survives a restart of what drives the run: the gate waits on, and approve then resumes it", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		done := runBehind(ctx, f, p, "announce")
		before := waitGate(t, ctx, f, p, "publish")
		f, done = f.restart(t, ctx, p, "announce", before.RunID, done)
		after := waitGate(t, ctx, f, p, "publish")
		if after.RunID != before.RunID || !after.OpenedAt.Equal(before.OpenedAt) || !after.Deadline.Equal(before.Deadline) {
			t.Fatalf("the gate after the restart = %+v, want the one before it, %+v", after, before)
		}
		if st, err := f.Status(ctx, p, "publish"); err != nil || st.State != flowstone.StateWaitingApproval {
			t.Fatalf("status after the restart = %+v, %v", st, err)
		}
		if err := f.Approve(ctx, p, "publish"); err != nil {
			t.Fatal(err)
		}
		if err := waitDone(t, ctx, done); err != nil {
			t.Fatalf("the resumed run after the approval: %v", err)
		}
		res, err := f.Get(ctx, p, "announce")
		if err != nil || decode[string](t, res) != "published 5" || c.of("publish") != 1 || c.of("numbers") != 1 {
			t.Fatalf("announce = %v; publish ran %d times, numbers %d; want once each", err, c.of("publish"), c.of("numbers"))
		}
	}},
	{"a signal gate takes one signal with its token: a forged or replayed token is refused", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
		if !f.signals() {
			// No signal secret: refused up front, nothing runs.
			_, err := f.Run(ctx, p, "after_ack")
			wantErr(t, "a run of a signal gate without a secret", err, flowstone.ErrConfig)
			wantErr(t, "a signal without a secret", f.Signal(ctx, "fsg1.x.y", nil), flowstone.ErrConfig)
			return
		}
		done := runBehind(ctx, f, p, "after_ack")
		g := waitGate(t, ctx, f, p, "ack")
		if g.Kind != flowstone.GateSignal || g.Token == "" {
			t.Fatalf("waiting gate = %+v", g)
		}
		for _, forged := range []string{g.Token[:len(g.Token)-3] + "abc", "fsg1.e30.AAAA", "not a token"} {
			wantErr(t, "a forged token", f.Signal(ctx, forged, []byte(`{"N":1}`)), flowstone.ErrBadRequest)
		}
		if st, err := f.Status(ctx, p, "ack"); err != nil || st.State != flowstone.StateWaitingSignal || c.of("ack") != 0 {
			t.Fatalf("after the forged signals: %+v, %v; ack ran %d times", st, err, c.of("ack"))
		}
		if err := f.Signal(ctx, g.Token, []byte(`{"N":20}`)); err != nil {
			t.Fatal(err)
		}
		if err := waitDone(t, ctx, done); err != nil {
			t.Fatalf("the run after the signal: %v", err)
		}
		wantErr(t, "the same signal again", f.Signal(ctx, g.Token, []byte(`{"N":99}`)), flowstone.ErrNotFound)
		res, err := f.Get(ctx, p, "after_ack")
		if err != nil || decode[int](t, res) != 42 || c.of("ack") != 1 {
			t.Fatalf("after_ack = %v, ack ran %d times; want 42 from one signal", err, c.of("ack"))
		}
	}},
}

// manyItems lists 10,000 items; manyItem fails every hundredth.
func manyItems(*flowstone.Context) ([]string, error) {
	items := make([]string, 10_000)
	for i := range items {
		items[i] = fmt.Sprintf("i%05d", i)
	}
	return items, nil
}

func manyItem(c *flowstone.Context) (any, error) {
	if strings.HasSuffix(c.ScatterItem(), "00") {
		return nil, fmt.Errorf("%s failed on purpose", c.ScatterItem())
	}
	return 1, nil
}

// runs counts the runs of TestEveryFaceBehavesTheSame in this process.
var runs atomic.Int32

func TestEveryFaceBehavesTheSame(t *testing.T) {
	runs.Add(1)
	faces := []string{"engine", "pipeline", "client"}
	type inst struct {
		p *flowstone.Pipeline
		c *counts
	}
	// Every row gets a pipeline of its own on every face; the fleet's
	// worker hosts the client face's.
	insts := map[string]inst{}
	var hosted []*flowstone.Pipeline
	for i := range rows {
		for _, fc := range faces {
			c := newCounts()
			// Named apart from earlier runs of the test in this process
			// (-count): the default engine keeps their records.
			p := pipeline(fmt.Sprintf("t%d_r%d_%s", runs.Load(), i, fc), c)
			insts[fmt.Sprint(i, fc)] = inst{p, c}
			if fc == "client" {
				hosted = append(hosted, p)
			}
		}
	}
	fl := startFleet(t, hosted)
	for i, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			for _, fc := range faces {
				t.Run(fc, func(t *testing.T) {
					in := insts[fmt.Sprint(i, fc)]
					ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
					defer cancel()
					var f face
					switch fc {
					case "engine":
						f = newEngineFace(t, kv.NewMemory(), map[string]objectstore.Store{"memory": objectstore.NewMemory()})
					case "pipeline":
						f = pipelineFace{}
					case "client":
						f = clientFace{fl.client, fl}
					}
					defer close(in.c.gate) // release a "slow" left waiting
					r.check(t, ctx, f, in.p, in.c)
				})
			}
		})
	}
}

// testFleet is the client face's fleet: a coordinator (restartable) and
// a worker on an embedded nats-server, and a client of it.
type testFleet struct {
	t      *testing.T // the whole table's: what it starts lasts as long
	srv    *server.Server
	stores map[string]objectstore.Store
	coord  *coordinator.Coordinator
	client *client.Client
}

// startCoordinator starts the fleet's coordinator "c1".
func (fl *testFleet) startCoordinator(t *testing.T) {
	t.Helper()
	c, err := coordinator.New(coordinator.Config{ID: "c1", Conn: natstest.Connect(fl.t, fl.srv), Stores: fl.stores, PollInterval: 200 * time.Millisecond,
		SignalSecret: signalSecret})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(fl.t.Context()); err != nil {
		t.Fatal(err)
	}
	fl.coord = c
}

// restart stops the coordinator the hard way (its runs are handed back)
// and starts it again with the same id, which resumes them.
func (fl *testFleet) restart(t *testing.T) {
	t.Helper()
	now, cancel := context.WithCancel(context.Background())
	cancel()
	fl.coord.Stop(now)
	fl.startCoordinator(t)
}

// startFleet starts a coordinator and two workers hosting ps on an
// embedded nats-server, and returns the fleet once the coordinator knows
// every pipeline.
func startFleet(t *testing.T, ps []*flowstone.Pipeline) *testFleet {
	t.Helper()
	srv := natstest.Server(t)
	fs, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]objectstore.Store{"file": fs}
	fl := &testFleet{t: t, srv: srv, stores: stores}
	fl.startCoordinator(t)
	// Two workers host every pipeline, as a fleet would.
	var ws []*worker.Worker
	for range 2 {
		w, err := worker.New(worker.Config{Conn: natstest.Connect(t, srv), Pipelines: ps, Stores: stores, Concurrency: 16})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, w := range ws {
			if err := w.Stop(ctx); err != nil {
				t.Errorf("worker stop: %v", err)
			}
		}
		if err := fl.coord.Stop(ctx); err != nil {
			t.Errorf("coordinator stop: %v", err)
		}
	})
	cl, err := client.New(natstest.Connect(t, srv), client.WithStore("file", fs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	fl.client = cl
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		got, err := cl.Pipelines(ctx)
		if err == nil && len(got) == len(ps) {
			return fl
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the coordinator knows %d pipelines, want %d: %v", len(got), len(ps), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sameCounts reports whether got has want's counts (its failed items'
// list aside).
func sameCounts(got *flowstone.ScatterStatus, want flowstone.ScatterStatus) bool {
	return got.Total == want.Total && got.Completed == want.Completed && got.Failed == want.Failed &&
		got.Cancelled == want.Cancelled && got.Pending == want.Pending
}
