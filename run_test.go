package flowstone_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

func TestRunExampleSumIs30(t *testing.T) {
	e := newEngine(t)
	p := examplePipeline(t, nil)
	res, err := e.Run(ctxT(t), p, "sum")
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeInt(t, res); got != 30 {
		t.Fatalf("sum = %d, want 30", got)
	}
	if res.Cached || res.Asset != "sum" || res.Partition != flowstone.DefaultPartition || res.RunID == "" {
		t.Fatalf("result = %+v", res)
	}
}

func TestRunCachesPerAssetAndPartition(t *testing.T) {
	e := newEngine(t)
	var n, d, s int
	p := keyedPipeline(t, map[string]*int{"numbers": &n, "doubled": &d, "sum": &s})
	ctx := ctxT(t)
	for i := 0; i < 3; i++ {
		res, err := e.Run(ctx, p, "sum")
		if err != nil {
			t.Fatal(err)
		}
		if res.Cached != (i > 0) {
			t.Fatalf("run %d: Cached = %v", i, res.Cached)
		}
	}
	if n != 1 || d != 1 || s != 1 {
		t.Fatalf("executions numbers=%d doubled=%d sum=%d, want 1 each", n, d, s)
	}
	// Running a dependency directly reuses it too.
	if res, err := e.Run(ctx, p, "doubled"); err != nil || !res.Cached {
		t.Fatalf("doubled: %v cached=%v", err, res != nil && res.Cached)
	}
	// Another partition is materialized separately.
	if _, err := e.Run(ctx, p, "sum", flowstone.Partition("2025-01-15")); err != nil {
		t.Fatal(err)
	}
	if n != 2 || d != 2 || s != 2 {
		t.Fatalf("after a second partition: numbers=%d doubled=%d sum=%d, want 2 each", n, d, s)
	}
}

func TestForceRerunsTargetOnly(t *testing.T) {
	e := newEngine(t)
	var n, d, s int
	p := examplePipeline(t, map[string]*int{"numbers": &n, "doubled": &d, "sum": &s})
	ctx := ctxT(t)
	first, err := e.Run(ctx, p, "sum")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(ctx, p, "sum", flowstone.Force())
	if err != nil {
		t.Fatal(err)
	}
	if res.Cached || res.RunID == first.RunID {
		t.Fatalf("forced run: cached=%v run %s (first %s)", res.Cached, res.RunID, first.RunID)
	}
	if n != 1 || d != 1 || s != 2 {
		t.Fatalf("numbers=%d doubled=%d sum=%d, want 1 1 2", n, d, s)
	}
	if got := decodeInt(t, res); got != 30 {
		t.Fatalf("sum = %d", got)
	}
}

func TestWithDepsFalse(t *testing.T) {
	e := newEngine(t)
	p := examplePipeline(t, nil)
	ctx := ctxT(t)
	_, err := e.Run(ctx, p, "sum", flowstone.WithDeps(false))
	fe := wantType(t, err, flowstone.TypeDependencyFailed)
	if fe.Details["missing"] != "doubled" || !strings.Contains(fe.Message, `"doubled"`) {
		t.Fatalf("error does not name the missing dependency: %v %v", fe, fe.Details)
	}
	if ok, _ := e.Exists(ctx, p, "sum"); ok {
		t.Fatal("failed WithDeps(false) run materialized sum")
	}
	if _, err := e.Run(ctx, p, "doubled"); err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(ctx, p, "sum", flowstone.WithDeps(false))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeInt(t, res); got != 30 {
		t.Fatalf("sum = %d", got)
	}
}

func TestFailedDependencyNamesRootCause(t *testing.T) {
	e := newEngine(t)
	var downstreamRan atomic.Bool
	p := flowstone.MustPipeline("p",
		flowstone.Asset("source", func(*flowstone.Context) (any, error) { return nil, errors.New("disk on fire") }),
		flowstone.Asset("middle", func(*flowstone.Context) (any, error) { downstreamRan.Store(true); return 1, nil }, flowstone.DependsOn("source")),
		flowstone.Asset("top", func(*flowstone.Context) (any, error) { downstreamRan.Store(true); return 1, nil }, flowstone.DependsOn("middle")),
	)
	ctx := ctxT(t)
	_, err := e.Run(ctx, p, "top")
	fe := wantType(t, err, flowstone.TypeDependencyFailed)
	if fe.Details["root_asset"] != "source" || !strings.Contains(fe.Message, "disk on fire") || !strings.Contains(fe.Message, `"source"`) {
		t.Fatalf("error %q / %v does not name the root cause", fe.Message, fe.Details)
	}
	root, _ := fe.Details["root_error"].(*flowstone.Error)
	if root == nil || root.Type != flowstone.TypeExecutionFailed {
		t.Fatalf("root_error = %#v", fe.Details["root_error"])
	}
	if downstreamRan.Load() {
		t.Fatal("a dependent of a failed asset executed")
	}
	for asset, want := range map[string]flowstone.ErrorType{"source": flowstone.TypeExecutionFailed, "middle": flowstone.TypeDependencyFailed, "top": flowstone.TypeDependencyFailed} {
		st, err := e.Status(ctx, p, asset)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != flowstone.StateFailed || st.Error == nil || st.Error.Type != want {
			t.Fatalf("status of %s = %+v, want failed with %s", asset, st, want)
		}
	}
}

func TestOptionalDependencyFailureIsTolerated(t *testing.T) {
	e := newEngine(t)
	p := flowstone.MustPipeline("p",
		flowstone.Asset("flaky", func(*flowstone.Context) (any, error) { return nil, errors.New("nope") }),
		flowstone.Asset("base", func(*flowstone.Context) (any, error) { return 10, nil }),
		flowstone.Asset("report", func(c *flowstone.Context) (any, error) {
			b, err := flowstone.Dep[int](c, "base")
			if err != nil {
				return nil, err
			}
			if c.HasDep("flaky") {
				return nil, errors.New("flaky should be missing")
			}
			if _, err := flowstone.Dep[int](c, "flaky"); !errors.Is(err, flowstone.ErrNotFound) {
				return nil, fmt.Errorf("Dep(flaky) = %v, want NotFound", err)
			}
			return b + 1, nil
		}, flowstone.DependsOn("base"), flowstone.OptionalDeps("flaky")),
	)
	res, err := e.Run(ctxT(t), p, "report")
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeInt(t, res); got != 11 {
		t.Fatalf("report = %d", got)
	}
}

func TestDepOnUndeclaredAssetFails(t *testing.T) {
	e := newEngine(t)
	p := flowstone.MustPipeline("p",
		flowstone.Asset("a", func(*flowstone.Context) (any, error) { return 1, nil }),
		flowstone.Asset("b", func(c *flowstone.Context) (any, error) { return flowstone.Dep[int](c, "a") }),
	)
	_, err := e.Run(ctxT(t), p, "b")
	fe := wantType(t, err, flowstone.TypeBadRequest)
	if !strings.Contains(fe.Message, "DependsOn") {
		t.Fatalf("message %q does not say how to fix it", fe.Message)
	}
}

func TestPanicBecomesErrorWithStack(t *testing.T) {
	e := newEngine(t)
	p := flowstone.MustPipeline("p", flowstone.Asset("boom", func(*flowstone.Context) (any, error) {
		var m map[string]int
		//lint:ignore SA5000 the asset panics on purpose
		m["x"] = 1
		return nil, nil
	}))
	_, err := e.Run(ctxT(t), p, "boom")
	fe := wantType(t, err, flowstone.TypeExecutionFailed)
	stack, _ := fe.Details["stack"].(string)
	if !strings.Contains(fe.Message, "panicked") || !strings.Contains(stack, "run_test.go") {
		t.Fatalf("panic error lacks message or stack: %q\n%s", fe.Message, stack)
	}
}

func TestAssetTimeoutCancelsItsContext(t *testing.T) {
	e := newEngine(t)
	sawDone := make(chan struct{})
	p := flowstone.MustPipeline("p", flowstone.Asset("slow", func(c *flowstone.Context) (any, error) {
		<-c.Context().Done()
		close(sawDone)
		return nil, c.Context().Err()
	}, flowstone.Timeout(50*time.Millisecond)))
	_, err := e.Run(ctxT(t), p, "slow")
	fe := wantType(t, err, flowstone.TypeTimeout)
	if !strings.Contains(fe.Message, "slow") {
		t.Fatalf("timeout message %q does not name the asset", fe.Message)
	}
	waitFor(t, sawDone, "the asset to see its context cancelled")
	st, _ := e.Status(ctxT(t), p, "slow")
	if st.State != flowstone.StateFailed || st.Error == nil || st.Error.Type != flowstone.TypeTimeout {
		t.Fatalf("status = %+v", st)
	}
}

func TestRunTimeout(t *testing.T) {
	e := newEngine(t)
	p := flowstone.MustPipeline("p", flowstone.Asset("slow", func(c *flowstone.Context) (any, error) {
		<-c.Context().Done()
		return nil, c.Context().Err()
	}))
	_, err := e.Run(ctxT(t), p, "slow", flowstone.Timeout(50*time.Millisecond))
	wantType(t, err, flowstone.TypeTimeout)
}

func TestCancelReachesRunningAsset(t *testing.T) {
	e := newEngine(t)
	started := make(chan struct{})
	sawCancel := make(chan struct{})
	p := flowstone.MustPipeline("p", flowstone.Asset("long", func(c *flowstone.Context) (any, error) {
		close(started)
		<-c.Context().Done()
		close(sawCancel)
		return nil, c.Context().Err()
	}))
	ctx := ctxT(t)
	errc := make(chan error, 1)
	go func() { _, err := e.Run(ctx, p, "long"); errc <- err }()
	waitFor(t, started, "the asset to start")
	if st, _ := e.Status(ctx, p, "long"); st.State != flowstone.StateRunning {
		t.Fatalf("status while running = %s", st.State)
	}
	if err := e.Cancel(ctx, p, "long"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sawCancel, "the asset's context to be cancelled")
	wantType(t, <-errc, flowstone.TypeCancelled)
	if st, _ := e.Status(ctx, p, "long"); st.State != flowstone.StateCancelled {
		t.Fatalf("status after cancel = %s", st.State)
	}
	// Nothing left to cancel.
	wantType(t, e.Cancel(ctx, p, "long"), flowstone.TypeNotFound)
}

func TestCancelledRunNeverStartsPendingSteps(t *testing.T) {
	e := newEngine(t)
	started := make(chan struct{})
	var topRan atomic.Bool
	p := flowstone.MustPipeline("p",
		flowstone.Asset("dep", func(c *flowstone.Context) (any, error) {
			close(started)
			<-c.Context().Done()
			return nil, c.Context().Err()
		}),
		flowstone.Asset("top", func(*flowstone.Context) (any, error) { topRan.Store(true); return 1, nil }, flowstone.DependsOn("dep")),
	)
	ctx := ctxT(t)
	errc := make(chan error, 1)
	go func() { _, err := e.Run(ctx, p, "top"); errc <- err }()
	waitFor(t, started, "dep to start")
	if st, _ := e.Status(ctx, p, "top"); st.State != flowstone.StatePending {
		t.Fatalf("status of top while dep runs = %s, want pending", st.State)
	}
	if err := e.Cancel(ctx, p, "top"); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	if !errors.Is(err, flowstone.ErrCancelled) && !errors.Is(err, flowstone.ErrDependencyFailed) {
		t.Fatalf("err = %v", err)
	}
	if topRan.Load() {
		t.Fatal("a pending step started after cancel")
	}
	if st, _ := e.Status(ctx, p, "top"); st.State == flowstone.StateCompleted || st.State == flowstone.StatePending {
		t.Fatalf("top state after cancel = %s", st.State)
	}
}

func TestConcurrentRunsExecuteOnce(t *testing.T) {
	e := newEngine(t)
	var execs atomic.Int32
	release := make(chan struct{})
	p := flowstone.MustPipeline("p", flowstone.Asset("slow", func(c *flowstone.Context) (any, error) {
		execs.Add(1)
		<-release
		return "value", nil
	}))
	ctx := ctxT(t)
	const callers = 16
	var wg, calling sync.WaitGroup
	results := make([]string, callers)
	errs := make([]error, callers)
	calling.Add(callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			calling.Done()
			res, err := e.Run(ctx, p, "slow")
			if err == nil {
				err = res.Decode(&results[i])
			}
			errs[i] = err
		}()
	}
	// Hold the execution until every caller is inside Run, so they overlap
	// with it; a broken single-flight shows up as a second execution.
	calling.Wait()
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || results[i] != "value" {
			t.Fatalf("caller %d: %v %q", i, errs[i], results[i])
		}
	}
	if n := execs.Load(); n != 1 {
		t.Fatalf("executed %d times, want 1", n)
	}
}

func TestIndependentBranchesRunInParallel(t *testing.T) {
	e := newEngine(t)
	var arrived sync.WaitGroup
	arrived.Add(2)
	both := make(chan struct{})
	go func() { arrived.Wait(); close(both) }()
	branch := func(c *flowstone.Context) (any, error) {
		arrived.Done()
		select { // each branch waits for the other: serial execution would time out
		case <-both:
			return 1, nil
		case <-time.After(10 * time.Second):
			return nil, errors.New("the other branch never ran alongside")
		}
	}
	p := flowstone.MustPipeline("p",
		flowstone.Asset("left", branch),
		flowstone.Asset("right", branch),
		flowstone.Asset("join", func(c *flowstone.Context) (any, error) {
			l, _ := flowstone.Dep[int](c, "left")
			r, _ := flowstone.Dep[int](c, "right")
			return l + r, nil
		}, flowstone.DependsOn("left", "right")),
	)
	res, err := e.Run(ctxT(t), p, "join")
	if err != nil {
		t.Fatal(err)
	}
	if decodeInt(t, res) != 2 {
		t.Fatal("join != 2")
	}
}

func TestRetry(t *testing.T) {
	e := newEngine(t)
	var calls atomic.Int32
	var attempts []int // Context.Attempt of each call
	p := flowstone.MustPipeline("p", flowstone.Asset("flaky", func(c *flowstone.Context) (any, error) {
		attempts = append(attempts, c.Attempt())
		if calls.Add(1) < 3 {
			return nil, errors.New("transient")
		}
		return "ok", nil
	}, flowstone.Retry(3, time.Millisecond)))
	if _, err := e.Run(ctxT(t), p, "flaky"); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Fatalf("calls = %d", calls.Load())
	}
	if fmt.Sprint(attempts) != "[1 2 3]" {
		t.Fatalf("Context.Attempt across retries = %v, want [1 2 3]", attempts)
	}
}

func TestRawAndStreamedResults(t *testing.T) {
	e := newEngine(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	p := flowstone.MustPipeline("p",
		flowstone.Asset("blob", func(*flowstone.Context) (any, error) { return []byte("raw bytes"), nil }),
		flowstone.Asset("stream", func(*flowstone.Context) (any, error) { return bytes.NewReader(big), nil }),
		flowstone.Asset("size", func(c *flowstone.Context) (any, error) {
			r, err := flowstone.Dep[io.Reader](c, "stream")
			if err != nil {
				return nil, err
			}
			n, err := io.Copy(io.Discard, r)
			if err != nil {
				return nil, err
			}
			b, err := flowstone.Dep[string](c, "blob")
			return fmt.Sprintf("%d %s", n, b), err
		}, flowstone.DependsOn("stream", "blob")),
	)
	ctx := ctxT(t)
	res, err := e.Run(ctx, p, "size")
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := res.Decode(&s); err != nil || s != fmt.Sprintf("%d raw bytes", len(big)) {
		t.Fatalf("size = %q, %v", s, err)
	}
	blob, err := e.Get(ctx, p, "blob")
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	if err := blob.Decode(&b); err != nil || string(b) != "raw bytes" {
		t.Fatalf("blob = %q %v", b, err)
	}
	if blob.Record.Value.Encoding != flowstone.EncodingRaw || blob.Record.Value.Size != 9 || len(blob.Record.Value.SHA256) != 64 {
		t.Fatalf("blob record = %+v", blob.Record)
	}
}

func TestUnencodableValueFailsInDevelopment(t *testing.T) {
	e := newEngine(t)
	p := flowstone.MustPipeline("p", flowstone.Asset("ch", func(*flowstone.Context) (any, error) { return make(chan int), nil }))
	_, err := e.Run(ctxT(t), p, "ch")
	fe := wantType(t, err, flowstone.TypeExecutionFailed)
	if !strings.Contains(fe.Message, "cannot be encoded") {
		t.Fatalf("message %q", fe.Message)
	}
}

func TestContextAccessors(t *testing.T) {
	e := newEngine(t)
	got := make(chan string, 1)
	p := flowstone.MustPipeline("p", flowstone.Asset("who", func(c *flowstone.Context) (any, error) {
		c.Logger().Info().Msg("hello") // goes nowhere by default, must not panic
		got <- c.Pipeline() + "|" + c.Asset() + "|" + c.Partition() + "|" + fmt.Sprint(c.RunID() != "") + "|" + fmt.Sprint(c.Attempt())
		return nil, nil
	}, flowstone.PartitionedBy(flowstone.Static("us", "eu"))))
	if _, err := e.Run(ctxT(t), p, "who", flowstone.Partition("eu")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "p|who|eu|true|1" {
		t.Fatalf("context = %s", s)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newEngine(t)
	var n int
	p := examplePipeline(t, map[string]*int{"numbers": &n})
	ctx := ctxT(t)
	_, err := e.Run(ctx, p, "nope")
	fe := wantType(t, err, flowstone.TypeAssetNotFound)
	if fe.Message != `Asset "nope" not found in example. Available: [numbers doubled sum]` {
		t.Fatalf("message = %q", fe.Message)
	}
	wantType(t, func() error { _, err := e.Run(ctx, p, "sum", flowstone.Partition("")); return err }(), flowstone.TypeBadRequest)
	wantType(t, func() error { _, err := e.Run(ctx, p, "sum", flowstone.Priority(7)); return err }(), flowstone.TypeBadRequest)
	wantType(t, func() error {
		_, err := e.Run(ctx, p, "sum", flowstone.Partition(strings.Repeat("x", 5000)))
		return err
	}(), flowstone.TypeBadRequest)
	wantType(t, func() error { _, err := e.Run(ctx, p, "sum", flowstone.Partition("\xff\xfe")); return err }(), flowstone.TypeBadRequest)
	if n != 0 {
		t.Fatal("bad input executed an asset")
	}
	for _, a := range flowstone.Assets(p) {
		if st, _ := e.Status(ctx, p, a); st.State != flowstone.StateNotFound {
			t.Fatalf("%s state = %s after bad input", a, st.State)
		}
	}
}

// A run naming a storage the engine has no store for is refused before it
// starts: a forced run must not replace a good result with a failed record.
func TestUnknownStorageIsRefusedAndChangesNothing(t *testing.T) {
	e := newEngine(t)
	var n int
	p := examplePipeline(t, map[string]*int{"numbers": &n})
	ctx := ctxT(t)
	if _, err := e.Run(ctx, p, "numbers"); err != nil {
		t.Fatal(err)
	}
	_, err := e.Run(ctx, p, "numbers", flowstone.Force(), flowstone.Storage("s4"))
	fe := wantType(t, err, flowstone.TypeConfigError)
	if fe.Details["storage"] != "s4" || !strings.Contains(fe.Message, "s4") {
		t.Fatalf("error does not name the storage: %q %v", fe.Message, fe.Details)
	}
	if err := e.Validate(p, "sum", flowstone.Storage("s4")); !errors.Is(err, flowstone.ErrConfig) {
		t.Fatalf("Validate with an unknown storage: %v", err)
	}
	if n != 1 {
		t.Fatalf("numbers executed %d times, want once (the refused run must not execute)", n)
	}
	if st, err := e.Status(ctx, p, "numbers"); err != nil || st.State != flowstone.StateCompleted {
		t.Fatalf("status after the refused run = %s %v, want the earlier completed result", st.State, err)
	}
}

func TestPartitionSchemeRejectsForeignKeys(t *testing.T) {
	e := newEngine(t)
	var ran atomic.Bool
	p := flowstone.MustPipeline("p",
		flowstone.Asset("daily", func(*flowstone.Context) (any, error) { ran.Store(true); return 1, nil }, flowstone.PartitionedBy(flowstone.Daily)),
		flowstone.Asset("region", func(*flowstone.Context) (any, error) { ran.Store(true); return 1, nil }, flowstone.PartitionedBy(flowstone.Static("us", "eu"))),
		flowstone.Asset("top", func(*flowstone.Context) (any, error) { ran.Store(true); return 1, nil }, flowstone.DependsOn("daily")),
	)
	ctx := ctxT(t)
	for _, tc := range []struct{ asset, part string }{{"daily", "us"}, {"daily", "2025-13-01"}, {"top", "us"}, {"region", "asia"}} {
		_, err := e.Run(ctx, p, tc.asset, flowstone.Partition(tc.part))
		wantType(t, err, flowstone.TypeBadRequest)
	}
	if ran.Load() {
		t.Fatal("an asset ran for a rejected partition")
	}
	if _, err := e.Run(ctx, p, "top", flowstone.Partition("2025-01-15")); err != nil {
		t.Fatal(err)
	}
}

func TestHostilePartitionTextRoundTrips(t *testing.T) {
	e := newEngine(t)
	p := flowstone.MustPipeline("p", flowstone.Asset("echo", func(c *flowstone.Context) (any, error) { return c.Partition(), nil }, flowstone.PartitionedBy(flowstone.AnyKey)))
	ctx := ctxT(t)
	keys := []string{"a/b/../../etc/passwd", "..", "*", ">", "flowstone.api.>", "with space", "ünïcödé ✓", strings.Repeat("é", 500), "us_east|2025-01-15", ".", "a.b.c", "%2F"}
	for _, k := range keys {
		if _, err := e.Run(ctx, p, "echo", flowstone.Partition(k)); err != nil {
			t.Fatalf("run %q: %v", k, err)
		}
	}
	for _, k := range keys {
		res, err := e.Get(ctx, p, "echo", flowstone.Partition(k))
		if err != nil {
			t.Fatalf("get %q: %v", k, err)
		}
		var got string
		if err := res.Decode(&got); err != nil || got != k {
			t.Fatalf("partition %q came back as %q (%v)", k, got, err)
		}
	}
}

func TestAsyncWithoutFleetIsConfigError(t *testing.T) {
	e := newEngine(t)
	p := examplePipeline(t, nil)
	_, err := e.Run(ctxT(t), p, "sum", flowstone.Async(), flowstone.Priority(2))
	fe := wantType(t, err, flowstone.TypeConfigError)
	if !strings.Contains(fe.Message, "client.Connect") || fe.Details["required_for"] != "async" {
		t.Fatalf("config error does not say how to connect a fleet: %q %v", fe.Message, fe.Details)
	}
	// A backfill fails the same way, up front: no partition counted failed.
	kp := keyedPipeline(t, nil)
	stats, err := e.Backfill(ctxT(t), kp, "sum", flowstone.Partitions("a", "b"), flowstone.Async())
	fe = wantType(t, err, flowstone.TypeConfigError)
	if !strings.Contains(fe.Message, "c.Backfill(") || fe.Details["required_for"] != "async" || stats.Failed != 0 || stats.Errors != nil {
		t.Fatalf("async backfill without a fleet = %+v, %v", stats, fe)
	}
}

func TestSmallResultsStayInTheirRecordLargeOnesGoToTheStore(t *testing.T) {
	e := newEngine(t)
	big := strings.Repeat("x", flowstone.InlineLimit+1)
	p := flowstone.MustPipeline("sizes",
		flowstone.Asset("small", func(*flowstone.Context) (any, error) { return "tiny", nil }),
		flowstone.Asset("large", func(*flowstone.Context) (any, error) { return big, nil }),
		flowstone.Asset("both", func(c *flowstone.Context) (any, error) {
			s, err := flowstone.Dep[string](c, "small")
			if err != nil {
				return nil, err
			}
			l, err := flowstone.Dep[string](c, "large")
			return len(s) + len(l), err
		}, flowstone.DependsOn("small", "large")),
	)
	ctx := ctxT(t)
	res, err := e.Run(ctx, p, "both")
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeInt(t, res); got != 4+len(big) {
		t.Fatalf("both = %d", got)
	}
	small, _ := e.Get(ctx, p, "small")
	large, _ := e.Get(ctx, p, "large")
	if small.Record.Value.Storage != flowstone.InlineStorage || small.Record.Value.ObjectKey != "" || string(small.Record.Value.Inline) != `"tiny"` {
		t.Fatalf("small record = %+v", small.Record)
	}
	if large.Record.Value.Storage != "memory" || large.Record.Value.ObjectKey == "" || large.Record.Value.Inline != nil {
		t.Fatalf("large record = %+v", large.Record)
	}
	// Naming a store puts even a small result there.
	res, err = e.Run(ctx, p, "small", flowstone.Force(), flowstone.Storage("memory"))
	if err != nil || res.Record.Value.Storage != "memory" || res.Record.Value.ObjectKey == "" {
		t.Fatalf("small with Storage: %+v %v", res.Record, err)
	}
	var s string
	if err := res.Decode(&s); err != nil || s != "tiny" {
		t.Fatalf("decode = %q %v", s, err)
	}
}
