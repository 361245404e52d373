package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
)

// TestScatterSurvivesItsWorkerSIGKILL: the worker driving a scatter (and
// running some of its items) is SIGKILLed midway. The other worker takes
// the scatter's task over, finds the batches recorded before the kill and
// runs only the rest: no item of a recorded batch starts again, every item
// completes, and the value holds every product.
func TestScatterSurvivesItsWorkerSIGKILL(t *testing.T) {
	f := newFleet(t)
	f.coordinator("c1")
	victim := f.worker("victim", "--source-latency", "200ms", "--ack-wait", "2s")
	f.waitReady(1)
	w := f.watch("dynamic")
	const part = "kill"
	var run runOut
	f.ok(&run, "run", "dynamic", "prices", "--partition", part, "--async")
	if ev := w.waitEvent(protocol.EventScatterStart, "prices", part); ev.Metadata["worker"] != "victim" {
		t.Fatalf("the scatter started on %v, want victim", ev.Metadata["worker"])
	}
	f.worker("survivor", "--source-latency", "200ms", "--ack-wait", "2s")
	f.waitReady(2)

	// Midway: some batches recorded, on both workers.
	const batch = 16 // Parallel 64 / 4
	total := pipelines.CatalogSize / batch
	var recorded []int
	f.eventually("batches to be recorded by both workers", func() (bool, string) {
		recorded = f.scatterBatches()
		byWorker := map[any]int{}
		for _, ev := range w.matching(protocol.EventScatterItemStop, "prices", part) {
			byWorker[ev.Metadata["worker"]]++
		}
		return len(recorded) >= 20 && byWorker["victim"] > 0 && byWorker["survivor"] > 0,
			fmt.Sprintf("%d batches recorded, item stops by worker %v", len(recorded), byWorker)
	})
	if len(recorded) >= total {
		t.Fatalf("all %d batches were recorded before the kill: make the items slower", total)
	}
	killed := time.Now()
	victim.kill(t)

	st := f.waitStatus("dynamic", "prices", part, "completed", stateIs("completed", "failed", "cancelled"))
	if st.State != "completed" || st.RunID != run.RunID || st.Scatter == nil ||
		st.Scatter.Completed != pipelines.CatalogSize || st.Scatter.Total != pipelines.CatalogSize {
		t.Fatalf("prices = %+v (scatter %+v), want every item completed by run %s", st, st.Scatter, run.RunID)
	}
	// No item of a batch recorded before the kill started again after it.
	done := map[string]bool{}
	for _, b := range recorded {
		for i := b * batch; i < (b+1)*batch; i++ {
			done[fmt.Sprintf("sku-%05d", i)] = true
		}
	}
	for _, ev := range w.matching(protocol.EventScatterItemStart, "prices", part) {
		if item, _ := ev.Metadata["item"].(string); done[item] && ev.Time.After(killed) {
			t.Errorf("item %s of a batch recorded before the kill started again on %v", item, ev.Metadata["worker"])
		}
	}
	var got runOut
	f.ok(&got, "get", "dynamic", "prices", "--partition", part)
	if n := strings.Count(string(got.Value), `"sku"`); n != pipelines.CatalogSize {
		t.Fatalf("the value holds %d quotes, want %d", n, pipelines.CatalogSize)
	}
	// The scatter's batch outcomes are dropped once its value is recorded.
	if left := f.scatterBatches(); len(left) != 0 {
		t.Errorf("%d batch outcomes left in %s", len(left), protocol.ScatterBucket)
	}
}

// scatterBatches lists the indexes of the batches recorded in the scatter
// bucket (of any scatter).
func (f *fleet) scatterBatches() []int {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	kvb := f.bucket(ctx, protocol.ScatterBucket)
	if kvb == nil {
		return nil
	}
	keys, err := kvb.ListKeys(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []int
	for k := range keys.Keys() {
		i, err := strconv.Atoi(k[strings.LastIndexByte(k, '.')+1:])
		if err != nil {
			f.t.Fatalf("scatter key %q", k)
		}
		out = append(out, i)
	}
	return out
}
