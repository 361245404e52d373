package faces_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/kv"
)

// A run resumed after its router decided, on each face (see
// face.resumeAfterDecision).

// tripKV is a kv.Store that calls trip right after the first write whose
// key is key and whose value holds every one of marks, before the write
// returns.
type tripKV struct {
	kv.Store
	key   string
	marks []string
	mu    sync.Mutex
	trip  func()
}

func (k *tripKV) wrote(key string, v []byte, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil || k.trip == nil || key != k.key {
		return
	}
	for _, m := range k.marks {
		if !strings.Contains(string(v), m) {
			return
		}
	}
	k.trip()
	k.trip = nil
}

func (k *tripKV) Put(ctx context.Context, key string, v []byte) (uint64, error) {
	rev, err := k.Store.Put(ctx, key, v)
	k.wrote(key, v, err)
	return rev, err
}
func (k *tripKV) Create(ctx context.Context, key string, v []byte) (uint64, error) {
	rev, err := k.Store.Create(ctx, key, v)
	k.wrote(key, v, err)
	return rev, err
}
func (k *tripKV) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	nrev, err := k.Store.Update(ctx, key, v, rev)
	k.wrote(key, v, err)
	return nrev, err
}

// resumeAfterDecision runs target on an engine whose store fences itself
// off right after router's decision is written, stops that engine at once
// (its run ends, recording nothing more), and runs target again as
// runID's run on a new engine over the same store.
func (f engineFace) resumeAfterDecision(t *testing.T, ctx context.Context, p *flowstone.Pipeline, target, router, runID string) (face, <-chan error) {
	t.Helper()
	tripped := make(chan struct{})
	trip := &tripKV{Store: f.kv.Store, key: bridge.MaterializationKey(p.Name(), router, flowstone.DefaultPartition),
		marks: []string{`"state":"completed"`, `"run_id":"` + runID + `"`}}
	doomed := newEngineFace(t, trip, f.stores)
	// trip runs inside the write, before the engine's next call.
	trip.trip = func() {
		doomed.kv.fenced.Store(true)
		close(tripped)
	}
	done := runBehind(ctx, doomed, p, target, flowstone.WithRunID(runID))
	select {
	case <-tripped:
	case <-ctx.Done():
		t.Fatal("the router never decided")
	}
	now, cancel := context.WithCancel(ctx)
	cancel()
	doomed.e.Stop(now)
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
