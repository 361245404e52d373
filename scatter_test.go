package flowstone_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

func listOf(items ...string) flowstone.ScatterFunc {
	return func(*flowstone.Context) ([]string, error) { return items, nil }
}

func TestScatterGathersAnObjectByItem(t *testing.T) {
	e := newEngine(t)
	var running, peak atomic.Int32
	items := []string{"us", "eu", "asia", "africa", "oceania", "antarctica", "americas"}
	p := flowstone.MustPipeline("regions",
		flowstone.Asset("base", func(*flowstone.Context) (any, error) { return 100, nil }),
		flowstone.Asset("sales", func(c *flowstone.Context) (any, error) {
			n := running.Add(1)
			defer running.Add(-1)
			for old := peak.Load(); n > old && !peak.CompareAndSwap(old, n); old = peak.Load() {
			}
			base, err := flowstone.Dep[int](c, "base") // dependencies are readable per item
			if err != nil {
				return nil, err
			}
			return base + len(c.ScatterItem()), nil
		}, flowstone.DependsOn("base"), flowstone.Scatter(listOf(items...), flowstone.ScatterConfig{Parallel: 3})),
		flowstone.Asset("total", func(c *flowstone.Context) (any, error) {
			byRegion, err := flowstone.Dep[map[string]int](c, "sales")
			if err != nil {
				return nil, err
			}
			sum := 0
			for _, v := range byRegion {
				sum += v
			}
			return sum, nil
		}, flowstone.DependsOn("sales")),
	)
	ctx := ctxT(t)
	res, err := e.Run(ctx, p, "total")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	wantSum := 0
	for _, it := range items {
		want[it] = 100 + len(it)
		wantSum += want[it]
	}
	if got := decodeInt(t, res); got != wantSum {
		t.Fatalf("downstream total = %d, want %d", got, wantSum)
	}

	sales, err := e.Get(ctx, p, "sales")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := sales.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("scatter value = %v, want %v", got, want)
	}
	if p := peak.Load(); p > 3 {
		t.Fatalf("%d items ran at once, Parallel is 3", p)
	}
	st, err := e.Status(ctx, p, "sales")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != flowstone.StateCompleted || st.Scatter == nil ||
		!sameCounts(st.Scatter, flowstone.ScatterStatus{Total: len(items), Completed: len(items)}) {
		t.Fatalf("status after the scatter = %+v (scatter %+v)", st, st.Scatter)
	}
	// A plain asset has no scatter counts.
	if st, _ := e.Status(ctx, p, "total"); st.Scatter != nil {
		t.Fatalf("status of a plain asset has scatter %+v", st.Scatter)
	}
}

func TestScatterBeyondMaxFailuresFails(t *testing.T) {
	e := newEngine(t)
	var downstream atomic.Bool
	p := flowstone.MustPipeline("p",
		flowstone.Asset("fetch", func(c *flowstone.Context) (any, error) {
			if strings.HasPrefix(c.ScatterItem(), "bad") {
				return nil, fmt.Errorf("%s: connection refused", c.ScatterItem())
			}
			return c.ScatterItem(), nil
		}, flowstone.Scatter(listOf("a", "bad1", "b", "bad2", "c"), flowstone.ScatterConfig{Parallel: 3, MaxFailures: 1})),
		flowstone.Asset("report", func(*flowstone.Context) (any, error) { downstream.Store(true); return 1, nil }, flowstone.DependsOn("fetch")),
	)
	ctx := ctxT(t)
	_, err := e.Run(ctx, p, "fetch")
	if !errors.Is(err, flowstone.ErrScatterThreshold) {
		t.Fatalf("err = %v, want scatter_threshold", err)
	}
	fe := wantType(t, err, flowstone.TypeScatterThreshold)
	if fe.Details["failed"] != 2 || fe.Details["total"] != 5 || fe.Details["max_failures"] != 1 ||
		!strings.Contains(fe.Message, "connection refused") || !strings.Contains(fe.Message, "2 of 5") {
		t.Fatalf("threshold error %q / %v does not say how many items failed and why", fe.Message, fe.Details)
	}
	st, _ := e.Status(ctx, p, "fetch")
	if st.State != flowstone.StateFailed || st.Error == nil || st.Error.Type != flowstone.TypeScatterThreshold ||
		st.Scatter == nil || st.Scatter.Total != 5 || st.Scatter.Failed != 2 || st.Scatter.Pending != 0 ||
		st.Scatter.Completed+st.Scatter.Failed+st.Scatter.Cancelled != 5 {
		// Past the threshold no more items go out: an item not yet out
		// when the second failure came is cancelled.
		t.Fatalf("status = %+v (scatter %+v)", st, st.Scatter)
	}
	if ok, _ := e.Exists(ctx, p, "fetch"); ok {
		t.Fatal("a failed scatter is materialized")
	}
	// Its dependents fail with the threshold as their root cause.
	_, err = e.Run(ctx, p, "report", flowstone.Force())
	fe = wantType(t, err, flowstone.TypeDependencyFailed)
	if root, _ := fe.Details["root_error"].(*flowstone.Error); root == nil || root.Type != flowstone.TypeScatterThreshold {
		t.Fatalf("dependent's root error = %v", fe.Details["root_error"])
	}
	if downstream.Load() {
		t.Fatal("the dependent of a failed scatter executed")
	}
}

func TestScatterWithinMaxFailuresLeavesFailedItemsOut(t *testing.T) {
	e := newEngine(t)
	p := flowstone.MustPipeline("p", flowstone.Asset("fetch", func(c *flowstone.Context) (any, error) {
		if c.ScatterItem() == "flaky" {
			panic("flaky item")
		}
		return strings.ToUpper(c.ScatterItem()), nil
	}, flowstone.Scatter(listOf("a", "flaky", "b"), flowstone.ScatterConfig{Parallel: 3, MaxFailures: 1})))
	ctx := ctxT(t)
	res, err := e.Run(ctx, p, "fetch")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := res.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, map[string]string{"a": "A", "b": "B"}) {
		t.Fatalf("value = %v, want the two good items only", got)
	}
	st, _ := e.Status(ctx, p, "fetch")
	if st.State != flowstone.StateCompleted || st.Scatter == nil || !sameCounts(st.Scatter, flowstone.ScatterStatus{Total: 3, Completed: 2, Failed: 1}) {
		t.Fatalf("status = %+v (scatter %+v)", st, st.Scatter)
	}
}

func TestScatterStatusWhileRunning(t *testing.T) {
	e := newEngine(t)
	items := []string{"i0", "i1", "i2", "i3", "i4", "i5"}
	started := make(chan string, len(items))
	release := map[string]chan struct{}{}
	for _, it := range items {
		release[it] = make(chan struct{})
	}
	p := flowstone.MustPipeline("p", flowstone.Asset("slow", func(c *flowstone.Context) (any, error) {
		started <- c.ScatterItem()
		select {
		case <-release[c.ScatterItem()]:
		case <-c.Context().Done():
			return nil, c.Context().Err()
		}
		if c.ScatterItem() == "i1" {
			return nil, errors.New("i1 failed")
		}
		return 1, nil
	}, flowstone.Scatter(listOf(items...), flowstone.ScatterConfig{Parallel: 3, MaxFailures: 1})))
	ctx := ctxT(t)
	errc := make(chan error, 1)
	go func() { _, err := e.Run(ctx, p, "slow"); errc <- err }()

	next := func() string {
		t.Helper()
		select {
		case it := <-started:
			return it
		case err := <-errc:
			t.Fatalf("run ended early: %v", err)
		case <-ctx.Done():
			t.Fatal("timed out waiting for an item to start")
		}
		return ""
	}
	// The counts are written as batches end, at most every 200 ms: wait
	// for them to show.
	status := func(want flowstone.ScatterStatus) {
		t.Helper()
		for {
			st, err := e.Status(ctx, p, "slow")
			if err != nil {
				t.Fatal(err)
			}
			if st.State == flowstone.StateRunning && st.Scatter != nil && sameCounts(st.Scatter, want) {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("status = %s, scatter %+v; want running, %+v", st.State, st.Scatter, want)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}

	// Parallel 3: three items start, the others wait for a free slot.
	running := []string{next(), next(), next()}
	slices.Sort(running)
	if !slices.Equal(running, []string{"i0", "i1", "i2"}) {
		t.Fatalf("first items started = %v", running)
	}
	status(flowstone.ScatterStatus{Total: 6, Pending: 6})

	// A finished item frees its slot for the next.
	close(release["i0"])
	if it := next(); it != "i3" {
		t.Fatalf("started %s, want i3", it)
	}
	status(flowstone.ScatterStatus{Total: 6, Completed: 1, Pending: 5})

	close(release["i1"])
	if it := next(); it != "i4" {
		t.Fatalf("started %s, want i4", it)
	}
	status(flowstone.ScatterStatus{Total: 6, Completed: 1, Failed: 1, Pending: 4})

	for _, it := range items[2:] {
		close(release[it])
	}
	if it := next(); it != "i5" {
		t.Fatalf("started %s, want i5", it)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st, err := e.Status(ctx, p, "slow")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != flowstone.StateCompleted || st.Scatter == nil || !sameCounts(st.Scatter, flowstone.ScatterStatus{Total: 6, Completed: 5, Failed: 1}) {
		t.Fatalf("final status = %+v (scatter %+v)", st, st.Scatter)
	}
	b, _ := jsonMarshal(st)
	if !strings.Contains(b, `"scatter":{"total":6,"completed":5,"failed":1,"cancelled":0,"pending":0,"failed_items":[{"item":"i1","error":{"type":"execution_failed"`) {
		t.Fatalf("status JSON %s lacks the proposal's scatter keys, or the failed item", b)
	}
}

func TestScatterCancelStopsItems(t *testing.T) {
	e := newEngine(t)
	started := make(chan string, 8)
	sawCancel := make(chan string, 8)
	scatterDone := make(chan struct{})
	t.Cleanup(e.Subscribe(func(ev flowstone.Event) {
		if ev.Kind == flowstone.EventScatterStop {
			close(scatterDone)
		}
	}))
	p := flowstone.MustPipeline("p", flowstone.Asset("slow", func(c *flowstone.Context) (any, error) {
		started <- c.ScatterItem()
		<-c.Context().Done()
		sawCancel <- c.ScatterItem()
		return nil, c.Context().Err()
	}, flowstone.Scatter(listOf("a", "b", "c", "d", "e"), flowstone.ScatterConfig{Parallel: 2})))
	ctx := ctxT(t)
	errc := make(chan error, 1)
	go func() { _, err := e.Run(ctx, p, "slow"); errc <- err }()
	for range 2 {
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatal("items did not start")
		}
	}
	if err := e.Cancel(ctx, p, "slow"); err != nil {
		t.Fatal(err)
	}
	wantType(t, <-errc, flowstone.TypeCancelled)
	// Both running items see their context cancelled, and once the
	// scatter has wound down no further item has started.
	for range 2 {
		select {
		case <-sawCancel:
		case <-ctx.Done():
			t.Fatal("a running item never saw the cancellation")
		}
	}
	waitFor(t, scatterDone, "the scatter to stop")
	if n := len(started); n != 0 {
		t.Fatalf("%d more items started after cancel", n)
	}
	// The counts add up, and nothing is left pending: the two items
	// stopped and the three never started are cancelled, not failed.
	st, err := e.Status(ctx, p, "slow")
	if err != nil {
		t.Fatal(err)
	}
	if want := (flowstone.ScatterStatus{Total: 5, Cancelled: 5}); st.State != flowstone.StateCancelled || st.Scatter == nil || !sameCounts(st.Scatter, want) {
		t.Fatalf("status after the cancel = %s, scatter %+v; want cancelled, %+v", st.State, st.Scatter, want)
	}
}

func TestScatterListFailureFailsTheAsset(t *testing.T) {
	e := newEngine(t)
	var itemRan atomic.Bool
	p := flowstone.MustPipeline("p", flowstone.Asset("fan", func(*flowstone.Context) (any, error) { itemRan.Store(true); return 1, nil },
		flowstone.Scatter(func(*flowstone.Context) ([]string, error) { return nil, errors.New("cannot list buckets") }, flowstone.ScatterConfig{})))
	_, err := e.Run(ctxT(t), p, "fan")
	fe := wantType(t, err, flowstone.TypeExecutionFailed)
	if !strings.Contains(fe.Message, "cannot list buckets") {
		t.Fatalf("message %q lacks the cause", fe.Message)
	}
	if itemRan.Load() {
		t.Fatal("an item ran although listing failed")
	}
}

// A key listed twice runs once and counts once; the value has it once.
func TestScatterRunsARepeatedItemOnce(t *testing.T) {
	e := newEngine(t)
	var runs sync.Map
	p := flowstone.MustPipeline("p", flowstone.Asset("s", func(c *flowstone.Context) (any, error) {
		n, _ := runs.LoadOrStore(c.ScatterItem(), new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		return c.ScatterItem(), nil
	}, flowstone.Scatter(listOf("a", "b", "a", "c", "b"), flowstone.ScatterConfig{Parallel: 2})))
	ctx := ctxT(t)
	res, err := e.Run(ctx, p, "s")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := res.Decode(&got); err != nil || len(got) != 3 {
		t.Fatalf("value = %v, %v; want a, b and c once", got, err)
	}
	runs.Range(func(k, v any) bool {
		if n := v.(*atomic.Int32).Load(); n != 1 {
			t.Errorf("item %v ran %d times", k, n)
		}
		return true
	})
	st, err := e.Status(ctx, p, "s")
	if err != nil || st.Scatter == nil || !sameCounts(st.Scatter, flowstone.ScatterStatus{Total: 3, Completed: 3}) {
		t.Fatalf("status = %+v (scatter %+v), %v; want 3 of 3", st, st.Scatter, err)
	}
}

// Item lists past the limits fail the asset with an error that says which
// limit, before any item runs.
func TestScatterItemLimits(t *testing.T) {
	many := make([]string, flowstone.MaxScatterItems+1)
	for i := range many {
		many[i] = strconv.Itoa(i)
	}
	for _, tc := range []struct {
		name  string
		items []string
		want  string
	}{
		{"too many", many, "at most"},
		{"empty key", []string{"a", ""}, "empty"},
		{"long key", []string{strings.Repeat("x", flowstone.MaxScatterItemLen+1)}, "longer than"},
		{"not UTF-8", []string{"a\xff"}, "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			var ran atomic.Int32
			p := flowstone.MustPipeline("p", flowstone.Asset("s", func(c *flowstone.Context) (any, error) {
				ran.Add(1)
				return 1, nil
			}, flowstone.Scatter(listOf(tc.items...), flowstone.ScatterConfig{Parallel: 4})))
			_, err := e.Run(ctxT(t), p, "s")
			wantType(t, err, flowstone.TypeExecutionFailed)
			if !strings.Contains(err.Error(), tc.want) || ran.Load() != 0 {
				t.Fatalf("error %v, %d items ran; want it to say %q and nothing run", err, ran.Load(), tc.want)
			}
		})
	}
}

// MaxFailureRate allows a fraction of the items to fail: with 100 items
// of which 3 fail, 5 % succeeds (the failed ones left out of the value)
// and 2 % fails with scatter_threshold, naming the allowance.
func TestScatterFailureRate(t *testing.T) {
	items := make([]string, 100)
	for i := range items {
		items[i] = fmt.Sprintf("i%03d", i)
	}
	for _, tc := range []struct {
		rate    float64
		allowed int
		ok      bool
	}{{0.05, 5, true}, {0.02, 2, false}} {
		t.Run(fmt.Sprint(tc.rate), func(t *testing.T) {
			e := newEngine(t)
			p := flowstone.MustPipeline("p", flowstone.Asset("fetch", func(c *flowstone.Context) (any, error) {
				if n, _ := strconv.Atoi(c.ScatterItem()[1:]); n%40 == 7 {
					return nil, fmt.Errorf("%s failed on purpose", c.ScatterItem())
				}
				return 1, nil
			}, flowstone.Scatter(listOf(items...), flowstone.ScatterConfig{Parallel: 8, MaxFailureRate: tc.rate})))
			res, err := e.Run(ctxT(t), p, "fetch")
			if !tc.ok {
				fe := wantType(t, err, flowstone.TypeScatterThreshold)
				if fe.Details["failed"] != 3 || fe.Details["max_failures"] != tc.allowed {
					t.Fatalf("threshold error details %v; want 3 failed, %d allowed", fe.Details, tc.allowed)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]int
			if err := res.Decode(&got); err != nil || len(got) != 97 {
				t.Fatalf("value has %d items, %v; want the 97 that succeeded", len(got), err)
			}
		})
	}
}

// sameCounts reports whether got has want's counts (its failed items'
// list aside).
func sameCounts(got *flowstone.ScatterStatus, want flowstone.ScatterStatus) bool {
	return got.Total == want.Total && got.Completed == want.Completed && got.Failed == want.Failed &&
		got.Cancelled == want.Cancelled && got.Pending == want.Pending
}

func TestScatterRetriesAFailedItem(t *testing.T) {
	e := newEngine(t)
	var mu sync.Mutex
	tries := map[string]int{}
	p := flowstone.MustPipeline("p", flowstone.Asset("fetch", func(c *flowstone.Context) (any, error) {
		mu.Lock()
		tries[c.ScatterItem()]++
		n := tries[c.ScatterItem()]
		mu.Unlock()
		// "twice" fails twice then succeeds; "always" never does.
		if c.ScatterItem() == "always" || c.ScatterItem() == "twice" && n <= 2 {
			return nil, fmt.Errorf("%s: try %d failed", c.ScatterItem(), n)
		}
		return n, nil
	}, flowstone.Scatter(listOf("once", "twice", "always"), flowstone.ScatterConfig{
		ItemRetries: 2, ItemBackoff: time.Millisecond, ItemMaxBackoff: 2 * time.Millisecond, MaxFailures: 1})))
	ctx := ctxT(t)
	res, err := e.Run(ctx, p, "fetch")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := res.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, map[string]int{"once": 1, "twice": 3}) {
		t.Fatalf("value = %v; want once on its first try, twice on its third", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if tries["always"] != 3 {
		t.Fatalf("an always-failing item ran %d times; ItemRetries 2 means 3", tries["always"])
	}
	st, _ := e.Status(ctx, p, "fetch")
	if st.Scatter == nil || len(st.Scatter.FailedItems) != 1 || st.Scatter.FailedItems[0].Item != "always" ||
		!strings.Contains(st.Scatter.FailedItems[0].Error.Message, "try 3 failed") {
		t.Fatalf("scatter = %+v; want always listed with its last error", st.Scatter)
	}
}

// Rate spreads the items' starts: the tenth item at 20 per second starts
// at least 0.45 s after the run began (a lower bound only: a busy machine
// just takes longer).
func TestScatterRateSpreadsItemStarts(t *testing.T) {
	e := newEngine(t)
	var mu sync.Mutex
	var starts []time.Time
	items := make([]string, 10)
	for i := range items {
		items[i] = strconv.Itoa(i)
	}
	p := flowstone.MustPipeline("p", flowstone.Asset("call", func(c *flowstone.Context) (any, error) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		return nil, nil
	}, flowstone.Scatter(listOf(items...), flowstone.ScatterConfig{Parallel: 8, Rate: 20})))
	began := time.Now()
	if _, err := e.Run(ctxT(t), p, "call"); err != nil {
		t.Fatal(err)
	}
	last := slices.MaxFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	if d := last.Sub(began); d < 450*time.Millisecond {
		t.Fatalf("10 items at 20 per second all started within %v", d)
	}
}

func TestScatterBatchingCapsBytes(t *testing.T) {
	e := newEngine(t)
	p := flowstone.MustPipeline("p", flowstone.Asset("bulk", func(c *flowstone.Context) (any, error) {
		b, _ := c.ScatterBatch()
		return strings.Join(b.Items, "+"), nil
	}, flowstone.Scatter(listOf("aaaa", "bb", "cccc", "d", "eeeeeeeee", "f"),
		flowstone.ScatterConfig{Batching: &flowstone.Batching{MaxBytes: 5}})))
	res, err := e.Run(ctxT(t), p, "bulk")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := res.Decode(&got); err != nil {
		t.Fatal(err)
	}
	// An item over the cap on its own makes a batch of one.
	if want := []string{"aaaa", "bb", "cccc+d", "eeeeeeeee", "f"}; !slices.Equal(got, want) {
		t.Fatalf("batches = %v, want %v", got, want)
	}
}
