package worker_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
)

// scatterPipeline fans "items" out over n items; every hundredth item
// fails. ran counts the items this copy of the pipeline ran: each worker
// gets its own copy.
func scatterPipeline(n int, cfg flowstone.ScatterConfig, ran *atomic.Int64) *flowstone.Pipeline {
	list := make([]string, n)
	for i := range list {
		list[i] = fmt.Sprintf("i%05d", i)
	}
	return flowstone.MustPipeline("fan",
		flowstone.Asset("items", func(c *flowstone.Context) (any, error) {
			ran.Add(1)
			if strings.HasSuffix(c.ScatterItem(), "00") {
				return nil, fmt.Errorf("item %s failed on purpose", c.ScatterItem())
			}
			return len(c.ScatterItem()), nil
		}, flowstone.Scatter(func(*flowstone.Context) ([]string, error) { return list, nil }, cfg)))
}

func TestScatterSpreadsItemsOverTheFleet(t *testing.T) {
	for _, c := range []struct {
		name string
		rate float64
		ok   bool
	}{
		{"within the threshold", 0.02, true},
		{"past the threshold", 0.005, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newFleet(t)
			const n = 10_000
			cfg := flowstone.ScatterConfig{Parallel: 512, MaxFailureRate: c.rate}
			var ran [2]atomic.Int64
			for i := range ran {
				e.start(worker.Config{Pipelines: []*flowstone.Pipeline{scatterPipeline(n, cfg, &ran[i])}})
			}
			e.publish(task("fan", "items", "default", 0))
			comp := e.completion()
			if ran[0].Load() == 0 || ran[1].Load() == 0 {
				t.Fatalf("items ran %d and %d times on the two workers; both should take some", ran[0].Load(), ran[1].Load())
			}
			rec := e.record("fan", "items", "default")
			st := rec.Scatter
			if st == nil || st.Total != n || st.Pending != 0 || st.Completed+st.Failed+st.Cancelled != n {
				t.Fatalf("scatter counts = %+v", st)
			}
			if len(st.FailedItems) == 0 || st.FailedItems[0].Item != "i00000" || !strings.Contains(st.FailedItems[0].Error.Message, "failed on purpose") {
				t.Fatalf("failed items = %d listed, first %+v", len(st.FailedItems), st.FailedItems[:min(2, len(st.FailedItems))])
			}
			if !c.ok {
				// Past the threshold no more items go out: those are
				// cancelled.
				if comp.OK || errCode(comp) != protocol.CodeScatterThreshold || rec.State != flowstone.StateFailed {
					t.Fatalf("completion ok=%v code %s, record %s; want scatter_threshold", comp.OK, errCode(comp), rec.State)
				}
				if st.Failed <= n/200 || int64(st.Completed+st.Failed) != ran[0].Load()+ran[1].Load() {
					t.Fatalf("counts %+v after %d items ran", st, ran[0].Load()+ran[1].Load())
				}
				return
			}
			if got := ran[0].Load() + ran[1].Load(); got != n {
				t.Fatalf("items ran %d times in all, want %d", got, n)
			}
			if st.Completed != n-n/100 || st.Failed != n/100 || len(st.FailedItems) != n/100 || st.FailedItems[1].Item != "i00100" {
				t.Fatalf("scatter counts = %+v, %d failures listed", st, len(st.FailedItems))
			}
			if !comp.OK || rec.State != flowstone.StateCompleted {
				t.Fatalf("completion ok=%v (%v), record %s", comp.OK, comp.Error, rec.State)
			}
			var values map[string]int
			if err := json.Unmarshal(e.value(rec), &values); err != nil || len(values) != n-n/100 || values["i00001"] != 6 {
				t.Fatalf("gathered %d values (i00001: %d), %v; want %d", len(values), values["i00001"], err, n-n/100)
			}
			// The batches' outcomes are dropped once the asset's is recorded.
			keys, err := e.scatterKeys()
			if err != nil || len(keys) != 0 {
				t.Fatalf("scatter bucket keeps %d keys (%v)", len(keys), err)
			}
		})
	}
}
