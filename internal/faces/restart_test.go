package faces_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/filestore"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats-server/v2/server"
)

// Restarts of what drives a run, on each face (see
// face.resumeAfterDecision).

// newEngineFace returns an engine face over store, fenced anew, and the
// object stores, closing the engine when the test ends.
func newEngineFace(t *testing.T, store kv.Store, stores map[string]objectstore.Store) engineFace {
	t.Helper()
	fenced := &fencedKV{Store: store}
	e, err := flowstone.NewEngine(flowstone.EngineConfig{KV: fenced, Stores: stores})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return engineFace{e, fenced, stores}
}

// fencedKV is a kv.Store that, once fenced, refuses every call as a closed
// store does: the engine that uses it can record nothing more, as a
// process that died. With a trip set, it fences itself right after the
// first write the trip approves, and closes tripped.
type fencedKV struct {
	kv.Store
	fenced  atomic.Bool
	mu      sync.Mutex
	trip    func(key string, value []byte) bool
	tripped chan struct{}
}

// fenceAfter fences the store right after the first write of key whose
// value holds every one of marks.
func (f *fencedKV) fenceAfter(key string, marks ...string) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tripped = make(chan struct{})
	f.trip = func(k string, v []byte) bool {
		if k != key {
			return false
		}
		for _, m := range marks {
			if !strings.Contains(string(v), m) {
				return false
			}
		}
		return true
	}
	return f.tripped
}

func (f *fencedKV) check() error {
	if f.fenced.Load() {
		return kv.ErrClosed
	}
	return nil
}

// wrote fences the store if the write trips it.
func (f *fencedKV) wrote(key string, v []byte, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && f.trip != nil && f.trip(key, v) {
		f.fenced.Store(true)
		f.trip = nil
		close(f.tripped)
	}
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
	rev, err := f.Store.Put(ctx, key, v)
	f.wrote(key, v, err)
	return rev, err
}
func (f *fencedKV) Create(ctx context.Context, key string, v []byte) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	rev, err := f.Store.Create(ctx, key, v)
	f.wrote(key, v, err)
	return rev, err
}
func (f *fencedKV) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	nrev, err := f.Store.Update(ctx, key, v, rev)
	f.wrote(key, v, err)
	return nrev, err
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

// resumeAfterDecision fences the engine's store right after router's
// decision is written, stops the engine at once (its run ends, recording
// nothing more), and runs target again as runID's run on a new engine
// over the same store.
func (f engineFace) resumeAfterDecision(t *testing.T, ctx context.Context, p *flowstone.Pipeline, target, router, runID string) (face, <-chan error) {
	t.Helper()
	tripped := f.kv.fenceAfter(bridge.MaterializationKey(p.Name(), router, flowstone.DefaultPartition),
		`"state":"completed"`, `"run_id":"`+runID+`"`)
	done := runBehind(ctx, f, p, target, flowstone.WithRunID(runID))
	select {
	case <-tripped:
	case <-ctx.Done():
		t.Fatal("the router never decided")
	}
	now, cancel := context.WithCancel(ctx)
	cancel()
	f.e.Stop(now)
	if err := waitDone(t, ctx, done); err == nil {
		t.Fatal("the run ended well on a fenced, stopped engine")
	}
	nf := newEngineFace(t, f.kv.Store, f.stores)
	return nf, runBehind(ctx, nf, p, target, flowstone.WithRunID(runID))
}

func (pipelineFace) resumeAfterDecision(t *testing.T, _ context.Context, _ *flowstone.Pipeline, _, _, _ string) (face, <-chan error) {
	t.Skip("the Default engine lives as long as the process: it is never restarted")
	return nil, nil
}

// resumeAfterDecision restarts the fleet's coordinator once the router's
// status says it decided; the run goes on, and the client waiting for it
// keeps waiting.
func (f clientFace) resumeAfterDecision(t *testing.T, ctx context.Context, p *flowstone.Pipeline, target, router, runID string) (face, <-chan error) {
	t.Helper()
	done := runBehind(ctx, f, p, target, flowstone.WithRunID(runID))
	for {
		st, err := f.Status(ctx, p, router)
		if err == nil && st.State == flowstone.StateCompleted && st.RunID == runID {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the router never decided: %+v, %v", st, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	f.fl.restart(t)
	return f, done
}

// runBehind runs asset on f in the background.
func runBehind(ctx context.Context, f face, p *flowstone.Pipeline, asset string, opts ...flowstone.RunOption) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := f.Run(ctx, p, asset, opts...)
		done <- err
	}()
	return done
}

// waitDone waits for a run started by runBehind and returns its error.
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

// testFleet is the client face's fleet: a coordinator (restartable) and
// two workers on an embedded nats-server, and a client of it.
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
	c, err := coordinator.New(coordinator.Config{ID: "c1", Conn: natstest.Connect(fl.t, fl.srv), Stores: fl.stores, PollInterval: 200 * time.Millisecond})
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
