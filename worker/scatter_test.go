package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/readers"
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

// A scatter's counts move while it runs; cancelled, its items stop on
// every worker and the counts add up, with nothing pending.
func TestScatterCountsMoveAndAddUpAfterACancel(t *testing.T) {
	e := newFleet(t)
	const n = 400
	list := make([]string, n)
	for i := range list {
		list[i] = fmt.Sprintf("i%03d", i)
	}
	var started atomic.Int64
	release := make(chan struct{})
	p := func() *flowstone.Pipeline {
		return flowstone.MustPipeline("fan",
			flowstone.Asset("items", func(c *flowstone.Context) (any, error) {
				// The first half end at once; the rest wait for the
				// cancel.
				if started.Add(1) <= n/2 {
					return 1, nil
				}
				select {
				case <-release:
					return 1, nil
				case <-c.Context().Done():
					return nil, c.Context().Err()
				}
			}, flowstone.Scatter(func(*flowstone.Context) ([]string, error) { return list, nil },
				flowstone.ScatterConfig{Parallel: 16, BatchSize: 4})))
	}
	defer close(release)
	for range 2 {
		e.start(worker.Config{Pipelines: []*flowstone.Pipeline{p()}})
	}
	tk := task("fan", "items", "default", 0)
	e.publish(tk)
	// The counts show items completed while others still run.
	waitFor(t, "the record to count completed items while the scatter runs", func() bool {
		rec := e.recordIfAny("fan", "items", "default")
		return rec != nil && rec.State == flowstone.StateRunning && rec.Scatter != nil &&
			rec.Scatter.Completed >= n/4 && rec.Scatter.Pending > 0
	})
	waitFor(t, "items to wait for the cancel", func() bool { return started.Load() > n/2 })
	if err := e.nc.Publish(protocol.CancelSubject(tk.RunID), nil); err != nil {
		t.Fatal(err)
	}
	comp := e.completion()
	if comp.OK || errCode(comp) != protocol.CodeCancelled {
		t.Fatalf("completion ok=%v code %s, want cancelled", comp.OK, errCode(comp))
	}
	rec := e.record("fan", "items", "default")
	st := rec.Scatter
	if rec.State != flowstone.StateCancelled || st == nil || st.Total != n || st.Pending != 0 || st.Failed != 0 ||
		st.Completed+st.Cancelled != n || st.Completed < n/2 || st.Cancelled == 0 {
		t.Fatalf("record %s, counts %+v; want cancelled, adding up to %d with nothing pending or failed", rec.State, st, n)
	}
}

// openLog records the checkpoints a scatter's reader was opened at.
type openLog struct {
	mu  sync.Mutex
	cps []string
}

func (l *openLog) reader(items []string) func(*flowstone.Context) (flowstone.ItemReader, error) {
	return func(*flowstone.Context) (flowstone.ItemReader, error) {
		return &loggedReader{ItemReader: readers.Slice(items), log: l}, nil
	}
}

func (l *openLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.cps)
}

type loggedReader struct {
	flowstone.ItemReader
	log *openLog
}

func (r *loggedReader) Open(c *flowstone.Context, checkpoint string) error {
	r.log.mu.Lock()
	r.log.cps = append(r.log.cps, checkpoint)
	r.log.mu.Unlock()
	return r.ItemReader.Open(c, checkpoint)
}

// A scatter fed by a reader whose worker stops midway resumes on another
// worker at the reader's last checkpoint, and still runs every item.
func TestScatterFromAReaderResumesAtItsCheckpoint(t *testing.T) {
	e := newFleet(t)
	const n = 200
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("r%03d", i)
	}
	var log openLog
	var ran atomic.Int64
	p := func() *flowstone.Pipeline {
		return flowstone.MustPipeline("fed",
			flowstone.Asset("each", func(c *flowstone.Context) (any, error) {
				select {
				case <-time.After(20 * time.Millisecond):
				case <-c.Context().Done():
					return nil, c.Context().Err()
				}
				ran.Add(1)
				return c.ScatterItem(), nil
			}, flowstone.ScatterFrom(log.reader(items), flowstone.ScatterConfig{Parallel: 8})))
	}
	// A batch the stopping worker's pull had received but not started is
	// redelivered after AckWait: short here, so the test does not wait
	// the default 30 s for it.
	const ackWait = 2 * time.Second
	first := e.newWorker(worker.Config{Pipelines: []*flowstone.Pipeline{p()}, AckWait: ackWait})
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.publish(task("fed", "each", "default", 0))
	waitFor(t, "a quarter of the items to run", func() bool { return ran.Load() >= n/4 })
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{p()}, AckWait: ackWait})
	// The first worker stops at once: its task and batches are handed back.
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	first.Stop(ctx)
	cancel()

	comp := e.completion()
	if !comp.OK {
		t.Fatalf("completion: %v", comp.Error)
	}
	cps := log.all()
	if len(cps) != 2 || cps[0] != "" || cps[1] == "" {
		t.Fatalf("the reader was opened at %q; want from the start, then at a checkpoint", cps)
	}
	resumed, _ := strconv.Atoi(cps[1])
	if resumed < n/4-16 || resumed >= n {
		t.Fatalf("resumed at item %d of %d, after %d had run", resumed, n, n/4)
	}
	rec := e.record("fed", "each", "default")
	if rec.Scatter == nil || rec.Scatter.Total != n || rec.Scatter.Completed != n {
		t.Fatalf("counts %+v, want all %d completed", rec.Scatter, n)
	}
	var values map[string]string
	if err := json.Unmarshal(e.value(rec), &values); err != nil || len(values) != n || values["r000"] != "r000" || values["r199"] != "r199" {
		t.Fatalf("gathered %d values, %v", len(values), err)
	}
}

// A batch whose item values cannot fit one recorded outcome fails its
// items with an error that says what to do, and the scatter ends.
func TestScatterBatchTooLargeToRecordFailsItsItems(t *testing.T) {
	e := newFleet(t)
	big := strings.Repeat("x", 400<<10)
	p := flowstone.MustPipeline("huge",
		flowstone.Asset("each", func(c *flowstone.Context) (any, error) { return big, nil },
			flowstone.Scatter(func(*flowstone.Context) ([]string, error) { return []string{"a", "b", "c", "d"}, nil },
				flowstone.ScatterConfig{Parallel: 4, BatchSize: 4, MaxFailures: 4})))
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{p}})
	e.publish(task("huge", "each", "default", 0))
	if comp := e.completion(); !comp.OK {
		t.Fatalf("completion: %v", comp.Error)
	}
	st := e.record("huge", "each", "default").Scatter
	if st == nil || st.Failed != 4 || len(st.FailedItems) != 4 || !strings.Contains(st.FailedItems[0].Error.Message, "lower the scatter's BatchSize") {
		t.Fatalf("scatter = %+v", st)
	}
}
