package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/internal/devfleet"
	"github.com/flowstone-go/flowstone/objectstore/filestore"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.uber.org/goleak"
)

// bigSize is over protocol.InlineValueLimit, so the value is not inline.
const bigSize = protocol.InlineValueLimit + 4096

// testPipelines are the bundled pipelines plus one with a large raw
// result and failures.
func testPipelines(o pipelines.Options) []*flowstone.Pipeline {
	extra := flowstone.MustPipeline("clienttest",
		flowstone.Asset("big", func(*flowstone.Context) (any, error) {
			return bytes.Repeat([]byte("0123456789abcdef"), bigSize/16), nil
		}, flowstone.PartitionedBy(flowstone.AnyKey)),
		flowstone.Asset("broken", func(*flowstone.Context) (any, error) {
			return nil, errors.New("the source is down")
		}, flowstone.PartitionedBy(flowstone.AnyKey)),
		flowstone.Asset("downstream", func(c *flowstone.Context) (any, error) { return 1, nil }, flowstone.DependsOn("broken")),
		// flaky fails for the partitions in failing, else counts its
		// executions.
		flowstone.Asset("flaky", func(c *flowstone.Context) (any, error) {
			if _, ok := failing.Load(c.Partition()); ok {
				return nil, errors.New("the source is down for " + c.Partition())
			}
			return flakyRuns.Add(1), nil
		}, flowstone.PartitionedBy(flowstone.AnyKey)),
		flowstone.Asset("after_flaky", func(c *flowstone.Context) (any, error) {
			n, err := flowstone.Dep[int](c, "flaky")
			return n * 10, err
		}, flowstone.DependsOn("flaky")),
		// days -> after_days, partitioned by day, are TestInvalidateMany's.
		flowstone.Asset("days", func(c *flowstone.Context) (any, error) { return c.Partition(), nil }, flowstone.PartitionedBy(flowstone.Daily)),
		flowstone.Asset("after_days", func(c *flowstone.Context) (any, error) {
			return flowstone.Dep[string](c, "days")
		}, flowstone.DependsOn("days"), flowstone.PartitionedBy(flowstone.Daily)),
		// retried fails its first two calls of every partition, then
		// succeeds: a run of it emits start, exception, start, exception,
		// start, stop, of three kinds, within moments.
		flowstone.Asset("retried", func(c *flowstone.Context) (any, error) {
			n, _ := retriedCalls.LoadOrStore(c.Partition(), new(atomic.Int32))
			if n.(*atomic.Int32).Add(1) <= 2 {
				return nil, errors.New("not yet")
			}
			return c.Attempt(), nil
		}, flowstone.PartitionedBy(flowstone.AnyKey), flowstone.Retry(3, 0)),
		// changing stores other bytes at every execution.
		flowstone.Asset("changing", func(*flowstone.Context) (any, error) {
			b := bytes.Repeat([]byte{'.'}, bigSize)
			copy(b, strconv.FormatInt(changes.Add(1), 10))
			return b, nil
		}, flowstone.PartitionedBy(flowstone.AnyKey)),
	)
	return append(pipelines.All(o), extra, pipelines.KeyedExample())
}

// retriedCalls counts the calls of clienttest.retried by partition.
var retriedCalls sync.Map

// changes counts the executions of clienttest.changing.
var changes atomic.Int64

// failing holds the partitions clienttest.flaky fails for; flakyRuns
// counts its successful executions.
var (
	failing   sync.Map
	flakyRuns atomic.Int64
)

var shared struct {
	once  sync.Once
	fleet *devfleet.Fleet
	err   error
}

// fleet is the package's shared fleet (2 workers, fast pipelines); tests
// keep apart by using their own partitions.
func fleet(t *testing.T) *devfleet.Fleet {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shared.fleet, shared.err = devfleet.Start(ctx, devfleet.Config{Port: -1, Workers: 2, Pipelines: testPipelines(pipelines.Options{})})
	})
	if shared.err != nil {
		t.Fatalf("start fleet: %v", shared.err)
	}
	return shared.fleet
}

// slowFleet is a fleet of its own whose daily_sales.orders takes latency.
func slowFleet(t *testing.T, latency time.Duration) *devfleet.Fleet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := devfleet.Start(ctx, devfleet.Config{Port: -1, Workers: 1, SourceLatency: latency})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop(context.Background()) })
	return f
}

func connect(t *testing.T, f *devfleet.Fleet, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.Connect(f.URL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.fleet != nil {
		shared.fleet.Stop(context.Background())
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goroutine leak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

var daysTaken atomic.Int64

// freshDays returns n consecutive days no other test or round uses.
func freshDays(n int) []string {
	start := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(daysTaken.Add(int64(n)))-n)
	return flowstone.Dates(start, start.AddDate(0, 0, n-1))
}

// uniq is a partition no other test, and no other -count round, uses.
func uniq(t *testing.T, what string) string { return what + " " + t.Name() + " " + nuid.Next() }

func decodeInt(t *testing.T, r *flowstone.Result) int {
	t.Helper()
	var n int
	if err := r.Decode(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRunGetExistsStatus(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	key := uniq(t, "run-get")
	part := flowstone.Partition(key)

	if ok, err := c.Exists(ctx, "keyed", "sum", part); err != nil || ok {
		t.Fatalf("exists before run = %v, %v", ok, err)
	}
	if st, err := c.Status(ctx, "keyed", "sum", part); err != nil || st.State != flowstone.StateNotFound {
		t.Fatalf("status before run = %+v, %v", st, err)
	}
	if _, err := c.Get(ctx, "keyed", "sum", part); !errors.Is(err, flowstone.ErrNotFound) {
		t.Fatalf("get before run: err = %v, want not_found", err)
	}

	res, err := c.Run(ctx, "keyed", "sum", part)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeInt(t, res); got != 30 {
		t.Fatalf("sum = %d, want 30", got)
	}
	if res.Cached || res.RunID == "" || res.Asset != "sum" || res.Partition != key {
		t.Errorf("result = %+v", res)
	}
	if res.Record == nil || res.Record.Value.Storage != flowstone.InlineStorage || res.Record.Value.SHA256 == "" || res.Record.Pipeline != "keyed" {
		t.Errorf("record = %+v", res.Record)
	}

	again, err := c.Run(ctx, "keyed", "sum", part)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.RunID != res.RunID || decodeInt(t, again) != 30 {
		t.Errorf("second run: cached=%v run=%s, want cached run %s", again.Cached, again.RunID, res.RunID)
	}

	got, err := c.Get(ctx, "keyed", "doubled", part)
	if err != nil {
		t.Fatal(err)
	}
	var doubled []int
	if err := got.Decode(&doubled); err != nil || len(doubled) != 5 || doubled[4] != 10 {
		t.Errorf("doubled = %v, %v", doubled, err)
	}
	if ok, err := c.Exists(ctx, "keyed", "numbers", part); err != nil || !ok {
		t.Errorf("exists numbers = %v, %v", ok, err)
	}
	st, err := c.Status(ctx, "keyed", "sum", part)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != flowstone.StateCompleted || st.RunID != res.RunID || st.CompletedAt == nil || st.Storage != flowstone.InlineStorage {
		t.Errorf("status = %+v", st)
	}

	forced, err := c.Run(ctx, "keyed", "sum", part, flowstone.Force())
	if err != nil {
		t.Fatal(err)
	}
	if forced.Cached || forced.RunID == res.RunID {
		t.Errorf("forced run: cached=%v run=%s", forced.Cached, forced.RunID)
	}
}

func TestHostilePartitionsRoundTrip(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	for _, key := range []string{"a.b.*.>", "with space/and/slashes", "ünïcødé ✓", "$JS.API.>", "..", "tab\there", strings.Repeat("long", 300)} {
		res, err := c.Run(ctx, "keyed", "sum", flowstone.Partition(key))
		if err != nil {
			t.Fatalf("%q: %v", key, err)
		}
		if res.Partition != key || decodeInt(t, res) != 30 {
			t.Errorf("%q: partition %q", key, res.Partition)
		}
		st, err := c.Status(ctx, "keyed", "sum", flowstone.Partition(key))
		if err != nil || st.Partition != key || st.State != flowstone.StateCompleted {
			t.Errorf("%q: status %+v, %v", key, st, err)
		}
	}
}

func TestRemoteErrors(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)

	_, err := c.Run(ctx, "keyed", "nope")
	if !errors.Is(err, flowstone.ErrAssetNotFound) {
		t.Fatalf("unknown asset: err = %v", err)
	}
	var fe *flowstone.Error
	if !errors.As(err, &fe) || fe.Details["asset"] != "nope" || !strings.Contains(fe.Message, "sum") {
		t.Errorf("unknown asset error: %+v", fe)
	}
	if _, err := c.Assets(ctx, "nosuchpipeline"); !errors.Is(err, flowstone.ErrPipelineNotFound) {
		t.Errorf("unknown pipeline: err = %v", err)
	}
	if _, err := c.Run(ctx, "daily_sales", "revenue", flowstone.Partition("not-a-date")); !errors.Is(err, flowstone.ErrBadRequest) {
		t.Errorf("bad date partition: err = %v", err)
	}
	if _, err := c.Run(ctx, "clienttest", "broken"); !errors.Is(err, flowstone.ErrExecutionFailed) || !strings.Contains(err.Error(), "the source is down") {
		t.Errorf("failing asset: err = %v", err)
	}
	if _, err := c.Run(ctx, "clienttest", "downstream"); !errors.Is(err, flowstone.ErrDependencyFailed) || !strings.Contains(err.Error(), "broken") {
		t.Errorf("failed dependency: err = %v", err)
	}
	if st, err := c.Status(ctx, "clienttest", "broken"); err != nil || st.State != flowstone.StateFailed || st.Error == nil {
		t.Errorf("status of failed asset = %+v, %v", st, err)
	}
	if _, err := c.Run(ctx, "keyed", "sum", flowstone.Partition(uniq(t, "nodeps")), flowstone.WithDeps(false)); !errors.Is(err, flowstone.ErrDependencyFailed) {
		t.Errorf("WithDeps(false) without deps: err = %v", err)
	}
	if err := c.Cancel(ctx, "keyed", "sum", flowstone.Partition(uniq(t, "idle"))); !errors.Is(err, flowstone.ErrNotFound) {
		t.Errorf("cancel with nothing running: err = %v", err)
	}
}

func TestInvalidate(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	part := flowstone.Partition(uniq(t, "inv"))
	if _, err := c.Run(ctx, "keyed", "sum", part); err != nil {
		t.Fatal(err)
	}
	n, err := c.Invalidate(ctx, "keyed", "sum", part)
	if err != nil || n != 1 {
		t.Fatalf("invalidate sum = %d, %v; want 1", n, err)
	}
	if ok, _ := c.Exists(ctx, "keyed", "sum", part); ok {
		t.Error("sum exists after invalidate")
	}
	if _, err := c.Run(ctx, "keyed", "sum", part); err != nil {
		t.Fatal(err)
	}
	n, err = c.Invalidate(ctx, "keyed", "numbers", part, flowstone.Cascade())
	if err != nil || n != 3 {
		t.Fatalf("invalidate numbers with cascade = %d, %v; want 3", n, err)
	}
	if ok, _ := c.Exists(ctx, "keyed", "doubled", part); ok {
		t.Error("doubled exists after a cascade from numbers")
	}
}

func TestInvalidateMany(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	day := func(d int) time.Time { return time.Date(2025, 3, d, 0, 0, 0, 0, time.UTC) }
	key := func(d int) string { return flowstone.DatePartition(day(d)) }
	exist := func(asset string) string {
		t.Helper()
		var out []string
		for d := 1; d <= 4; d++ {
			ok, err := c.Exists(ctx, "clienttest", asset, flowstone.Partition(key(d)))
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				out = append(out, strconv.Itoa(d))
			}
		}
		return strings.Join(out, " ")
	}
	if _, err := c.Backfill(ctx, "clienttest", "after_days", flowstone.DateRange(day(1), day(4)), flowstone.Parallel(4)); err != nil {
		t.Fatal(err)
	}
	// Unnamed: refused, as embedded, and nothing deleted.
	n, err := c.Invalidate(ctx, "clienttest", "days", flowstone.Cascade())
	var fe *flowstone.Error
	if !errors.As(err, &fe) || fe.Type != flowstone.TypeBadRequest || fe.Details["missing"] != "partitions" || n != 0 {
		t.Fatalf("invalidate of a partitioned asset without partitions = %d, %v", n, err)
	}
	if n, err := c.Invalidate(ctx, "clienttest", "days", flowstone.Partitions(key(1), "tomorrow")); !errors.Is(err, flowstone.ErrBadRequest) || n != 0 {
		t.Fatalf("invalidate with a bad key = %d, %v", n, err)
	}
	if got := exist("days") + "|" + exist("after_days"); got != "1 2 3 4|1 2 3 4" {
		t.Fatalf("refused invalidates deleted records: %q left", got)
	}
	if n, err := c.Invalidate(ctx, "clienttest", "days", flowstone.Partitions(key(1), key(2))); n != 2 || err != nil {
		t.Fatalf("invalidate days 1 and 2 = %d, %v; want 2", n, err)
	}
	if n, err := c.Invalidate(ctx, "clienttest", "days", flowstone.DateRange(day(1), day(3)), flowstone.Cascade()); n != 4 || err != nil {
		t.Fatalf("invalidate days 1-3 with cascade = %d, %v; want 4", n, err)
	}
	if got := exist("days") + "|" + exist("after_days"); got != "4|4" {
		t.Fatalf("after invalidating days 1-3: %q left", got)
	}
	if n, err := c.Invalidate(ctx, "clienttest", "days", flowstone.AllPartitions(), flowstone.Cascade()); n != 2 || err != nil {
		t.Fatalf("invalidate every partition with cascade = %d, %v; want 2", n, err)
	}
	if got := exist("days") + "|" + exist("after_days"); got != "|" {
		t.Fatalf("after invalidating every partition: %q left", got)
	}
}

func TestInspection(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	ascii, err := c.Graph(ctx, "example")
	if err != nil || !strings.Contains(ascii, "numbers") || !strings.Contains(ascii, "└── ") {
		t.Errorf("ascii graph = %q, %v", ascii, err)
	}
	mermaid, err := c.Graph(ctx, "example", flowstone.Format(flowstone.Mermaid))
	if err != nil || !strings.HasPrefix(mermaid, "graph TD") || !strings.Contains(mermaid, "numbers --> doubled") {
		t.Errorf("mermaid graph = %q, %v", mermaid, err)
	}
	dot, err := c.Graph(ctx, "example", flowstone.Format(flowstone.DOT))
	if err != nil || !strings.Contains(dot, "digraph") {
		t.Errorf("dot graph = %q, %v", dot, err)
	}
	assets, err := c.Assets(ctx, "daily_sales")
	if err != nil || strings.Join(assets, " ") != "orders cleaned revenue" {
		t.Errorf("assets = %v, %v", assets, err)
	}
	info, err := c.AssetInfo(ctx, "example", "doubled")
	if err != nil || info.Name != "doubled" || len(info.DependsOn) != 1 || info.DependsOn[0] != "numbers" || info.Description != "Doubles each number" {
		t.Errorf("info = %+v, %v", info, err)
	}
	info, err = c.AssetInfo(ctx, "daily_sales", "revenue")
	if err != nil || info.PartitionedBy != "date" {
		t.Errorf("revenue info = %+v, %v", info, err)
	}
	if _, err := c.AssetInfo(ctx, "example", "nope"); !errors.Is(err, flowstone.ErrAssetNotFound) {
		t.Errorf("info of unknown asset: err = %v", err)
	}
	ps, err := c.Pipelines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range ps {
		if p.Name == "example" {
			found = p.Assets == 3 && p.Workers == 2
		}
	}
	if !found {
		t.Errorf("pipelines = %+v, want example with 3 assets on 2 workers", ps)
	}
}

func TestBackfillWithProgress(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	days := freshDays(14)
	var seen []flowstone.BackfillProgress
	progress := flowstone.OnProgress(func(p flowstone.BackfillProgress) { seen = append(seen, p) })
	stats, err := c.Backfill(ctx, "daily_sales", "revenue", flowstone.Partitions(days...), flowstone.Parallel(4), progress)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Succeeded != 14 || stats.Failed != 0 || stats.Skipped != 0 {
		t.Errorf("stats = %+v, want 14 succeeded", stats)
	}
	checkProgress(t, seen, days)
	for _, p := range seen {
		if p.Err != nil {
			t.Errorf("progress of %s has error %v", p.Partition, p.Err)
		}
	}

	seen = nil
	stats, err = c.Backfill(ctx, "daily_sales", "revenue", flowstone.Partitions(days...), progress)
	if err != nil || stats.Skipped != 14 {
		t.Errorf("second backfill = %+v, %v; want 14 skipped", stats, err)
	}
	checkProgress(t, seen, days)
	if last := seen[len(seen)-1]; last.Stats.Skipped != 14 {
		t.Errorf("progress of a cached backfill counts %+v, want 14 skipped", last.Stats)
	}

	seen = nil
	stats, err = c.Backfill(ctx, "daily_sales", "revenue", flowstone.Partitions(days[:3]...), flowstone.Force(), flowstone.Parallel(2), progress)
	if err != nil || stats.Succeeded != 3 {
		t.Errorf("forced backfill = %+v, %v; want 3 succeeded", stats, err)
	}
	checkProgress(t, seen, days[:3])
	if last := seen[len(seen)-1]; last.Stats.Succeeded != 3 {
		t.Errorf("progress of a forced backfill counts %+v, want 3 succeeded", last.Stats)
	}

	var revenue pipelines.Revenue
	res, err := c.Get(ctx, "daily_sales", "revenue", flowstone.Partition(days[6]))
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Decode(&revenue); err != nil || revenue.Day != days[6] || revenue.Total <= 0 {
		t.Errorf("revenue = %+v, %v", revenue, err)
	}
}

func TestBackfillFailuresAndBadInput(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	var seen []flowstone.BackfillProgress
	stats, err := c.Backfill(ctx, "clienttest", "broken", flowstone.Partitions("x1", "x2"),
		flowstone.OnProgress(func(p flowstone.BackfillProgress) { seen = append(seen, p) }))
	if err != nil {
		t.Fatal(err)
	}
	if stats.Failed != 2 || len(stats.Errors) != 2 || !errors.Is(stats.Errors["x1"], flowstone.ErrExecutionFailed) {
		t.Errorf("stats = %+v", stats)
	}
	checkProgress(t, seen, []string{"x1", "x2"})

	if _, err := c.Backfill(ctx, "daily_sales", "revenue", flowstone.Partitions("2024-01-01", "yesterday")); !errors.Is(err, flowstone.ErrBadRequest) {
		t.Errorf("bad partition: err = %v", err)
	}
	if _, err := c.Backfill(ctx, "daily_sales", "nope", flowstone.Partitions("2024-01-01")); !errors.Is(err, flowstone.ErrAssetNotFound) {
		t.Errorf("unknown asset: err = %v", err)
	}
}

// checkProgress checks that every partition was reported once, with Done
// counting up to the total.
func checkProgress(t *testing.T, seen []flowstone.BackfillProgress, parts []string) {
	t.Helper()
	if len(seen) != len(parts) {
		t.Fatalf("%d progress reports, want %d: %+v", len(seen), len(parts), seen)
	}
	reported := map[string]bool{}
	for i, p := range seen {
		if p.Done != i+1 || p.Total != len(parts) || reported[p.Partition] {
			t.Errorf("report %d = %+v", i, p)
		}
		reported[p.Partition] = true
	}
}

func TestAsyncRunAndEnqueue(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	part := uniq(t, "async")
	res, err := c.Run(ctx, "keyed", "sum", flowstone.Partition(part), flowstone.Async(), flowstone.Priority(2))
	if err != nil {
		t.Fatal(err)
	}
	if res.Job == nil || res.Job.ID != res.RunID || res.Job.Asset != "sum" || res.Job.Partition != part || res.Job.Priority != 2 {
		t.Fatalf("async result = %+v job %+v", res, res.Job)
	}
	if _, err := res.Bytes(ctx); !errors.Is(err, flowstone.ErrNotFound) {
		t.Errorf("reading an async result: err = %v, want not_found", err)
	}
	if got := decodeInt(t, awaitResult(t, c, "keyed", "sum", part)); got != 30 {
		t.Errorf("async sum = %d", got)
	}

	// The client as the AsyncRunner of an embedded engine.
	engine, err := flowstone.NewEngine(flowstone.EngineConfig{Async: c})
	if err != nil {
		t.Fatal(err)
	}
	part = uniq(t, "enqueue")
	at := time.Now().Add(300 * time.Millisecond)
	res, err = engine.Run(ctx, pipelines.KeyedExample(), "doubled", flowstone.Partition(part), flowstone.Async(), flowstone.ScheduledAt(at))
	if err != nil {
		t.Fatal(err)
	}
	if res.Job == nil || res.Job.Pipeline != "keyed" || res.Job.State != "scheduled" || !res.Job.ScheduledAt.Equal(at) {
		t.Fatalf("enqueued job = %+v", res.Job)
	}
	awaitResult(t, c, "keyed", "doubled", part)
	if time.Now().Before(at) {
		t.Error("a scheduled run finished before its time")
	}
}

// awaitResult polls until the partition is materialized.
func awaitResult(t *testing.T, c *client.Client, pipeline, asset, part string) *flowstone.Result {
	t.Helper()
	ctx := testCtx(t)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := c.Get(ctx, pipeline, asset, flowstone.Partition(part))
		if err == nil {
			return res
		}
		if !errors.Is(err, flowstone.ErrNotFound) {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s/%s [%s] never materialized", pipeline, asset, part)
		case <-tick.C:
		}
	}
}

func TestWatchReceivesRunEvents(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	part := uniq(t, "watch")
	wctx, stop := context.WithCancel(ctx)
	events := make(chan protocol.Event, 1024)
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(wctx, "keyed", func(e protocol.Event) {
			select {
			case events <- e:
			default:
			}
		})
	}()
	// The subscription may not be in place for the first run: force runs
	// until one's events arrive.
	want := map[protocol.EventKind]bool{protocol.EventRunStart: false, protocol.EventRunStop: false}
	for !want[protocol.EventRunStart] || !want[protocol.EventRunStop] {
		if _, err := c.Run(ctx, "keyed", "sum", flowstone.Partition(part), flowstone.Force()); err != nil {
			t.Fatal(err)
		}
	drain:
		for {
			select {
			case e := <-events:
				if e.Pipeline != "keyed" {
					t.Errorf("event of pipeline %q", e.Pipeline)
				}
				if e.Asset == "sum" && e.Partition == part {
					if _, ok := want[e.Kind]; ok {
						want[e.Kind] = true
					}
				}
			case <-time.After(200 * time.Millisecond):
				break drain
			case <-ctx.Done():
				t.Fatal("no run events")
			}
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Watch returned %v after its context ended", err)
	}
}

func TestCancelAndTimeouts(t *testing.T) {
	f := slowFleet(t, 3*time.Second)
	c, ctx := connect(t, f), testCtx(t)

	// A sync run cancelled from another client call.
	errc := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, "daily_sales", "revenue", flowstone.Partition("2025-02-01"))
		errc <- err
	}()
	awaitState(t, c, "daily_sales", "orders", "2025-02-01", flowstone.StateRunning)
	if err := c.Cancel(ctx, "daily_sales", "revenue", flowstone.Partition("2025-02-01")); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, flowstone.ErrCancelled) {
		t.Errorf("cancelled run: err = %v, want cancelled", err)
	}

	// The run's own timeout, enforced by the fleet.
	// (On revenue, the timeout would strike in orders and fail revenue
	// with dependency_failed.)
	_, err := c.Run(ctx, "daily_sales", "orders", flowstone.Partition("2025-02-02"), flowstone.Timeout(100*time.Millisecond))
	if !errors.Is(err, flowstone.ErrTimeout) {
		t.Errorf("run past its timeout: err = %v, want timeout", err)
	}

	// The caller's deadline: the wait ends, the run goes on.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = c.Run(short, "daily_sales", "revenue", flowstone.Partition("2025-02-03"))
	if !errors.Is(err, flowstone.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "fsctl status") {
		t.Errorf("caller's deadline: err = %v", err)
	}
	awaitResult(t, c, "daily_sales", "revenue", "2025-02-03")
}

func awaitState(t *testing.T, c *client.Client, pipeline, asset, part string, want flowstone.State) {
	t.Helper()
	ctx := testCtx(t)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := c.Status(ctx, pipeline, asset, flowstone.Partition(part))
		if err != nil {
			t.Fatal(err)
		}
		if st.State == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s/%s [%s] never reached %s (last %s)", pipeline, asset, part, want, st.State)
		case <-tick.C:
		}
	}
}

func TestLargeResults(t *testing.T) {
	f := fleet(t)
	c, ctx := connect(t, f), testCtx(t)
	res, err := c.Run(ctx, "clienttest", "big")
	if err != nil {
		t.Fatal(err)
	}
	if res.Record.Value.Size != bigSize || res.Record.Value.Encoding != flowstone.EncodingRaw {
		t.Fatalf("record = %+v", res.Record)
	}
	// In the fleet's file store, which the client cannot reach: the fleet
	// stages a copy for it.
	want := bytes.Repeat([]byte("0123456789abcdef"), bigSize/16)
	if b, err := res.Bytes(ctx); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("large result in the file store, without a store: %d bytes (equal %v), %v", len(b), bytes.Equal(b, want), err)
	}
	staged := stagedCopies(t, c, res.Record.Value.SHA256)
	got, err := c.Get(ctx, "clienttest", "big")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := got.Bytes(ctx); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("large result read again: %d bytes, %v", len(b), err)
	}
	if again := stagedCopies(t, c, res.Record.Value.SHA256); again != staged {
		t.Errorf("reading the result again made another copy: the staging bucket's stream went from %d to %d messages", staged, again)
	}

	// In the fleet's JetStream object store, the client finds it itself.
	res, err = c.Run(ctx, "clienttest", "big", flowstone.Partition(uniq(t, "js")), flowstone.Storage(devfleet.JetStreamStorageName))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := res.Bytes(ctx); err != nil || len(b) != bigSize || res.Record.Value.Storage != devfleet.JetStreamStorageName {
		t.Fatalf("large result in JetStream: %d bytes, %v (record %+v)", len(b), err, res.Record)
	}

	store, err := filestore.New(f.ObjectsDir())
	if err != nil {
		t.Fatal(err)
	}
	withStore := connect(t, f, client.WithStore(devfleet.StorageName, store))
	res, err = withStore.Get(ctx, "clienttest", "big")
	if err != nil {
		t.Fatal(err)
	}
	b, err := res.Bytes(ctx)
	if err != nil || len(b) != bigSize || !bytes.HasPrefix(b, []byte("0123456789abcdef0123")) {
		t.Fatalf("large result: %d bytes, %v", len(b), err)
	}
}

// stagedCopies checks that the staging bucket holds one object for the
// bytes whose SHA-256 is sha, and returns how many messages its stream has
// ever stored: staging a copy adds its chunks and its metadata, handing
// out one already there adds none.
func stagedCopies(t *testing.T, c *client.Client, sha string) uint64 {
	t.Helper()
	ctx := testCtx(t)
	js, err := jetstream.New(c.Conn())
	if err != nil {
		t.Fatal(err)
	}
	obs, err := js.ObjectStore(ctx, protocol.StagingBucket)
	if err != nil {
		t.Fatalf("the staging bucket: %v", err)
	}
	list, err := obs.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, oi := range list {
		if oi.Name == protocol.StagedName(sha) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the staging bucket holds %d objects named for SHA-256 %s, want 1 (of %d objects)", n, sha, len(list))
	}
	info, err := js.Stream(ctx, "OBJ_"+protocol.StagingBucket)
	if err != nil {
		t.Fatal(err)
	}
	return info.CachedInfo().State.LastSeq
}

func TestStagedReadOfAChangedResultFails(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	part := flowstone.Partition(uniq(t, "changing"))
	res, err := c.Run(ctx, "clienttest", "changing", part)
	if err != nil {
		t.Fatal(err)
	}
	first := res.Record
	if first.Value.Storage != devfleet.StorageName || first.Value.Size <= protocol.InlineValueLimit {
		t.Fatalf("record = %+v, want a large result in the file store", first)
	}
	again, err := c.Run(ctx, "clienttest", "changing", part, flowstone.Force())
	if err != nil {
		t.Fatal(err)
	}
	if again.Record.Value.SHA256 == first.Value.SHA256 {
		t.Fatalf("a forced run stored the same bytes (%s)", first.Value.SHA256)
	}
	// res describes the first run's bytes; the fleet now has the second's.
	b, err := res.Bytes(ctx)
	var fe *flowstone.Error
	if !errors.As(err, &fe) || fe.Type != flowstone.TypeStorageError || !strings.Contains(fe.Message, "changed after Get") ||
		fe.Details["sha256"] != first.Value.SHA256 || fe.Details["current_sha256"] != again.Record.Value.SHA256 || fe.Details["current_run_id"] != again.RunID {
		t.Fatalf("reading a result re-materialized since: %d bytes, err = %v (details %v)", len(b), err, fe)
	}
	if b, err := again.Bytes(ctx); err != nil || int64(len(b)) != again.Record.Value.Size {
		t.Fatalf("the new result: %d bytes, %v", len(b), err)
	}
}

// TestFailedRerunKeepsTheValueOnTheFleet: a forced re-run that fails on a
// worker leaves the value readable (get, exists, dependents), and status
// tells of both the failed attempt and the value.
func TestFailedRerunKeepsTheValueOnTheFleet(t *testing.T) {
	ctx := testCtx(t)
	c := connect(t, fleet(t))
	part := uniq(t, "p")
	first, err := c.Run(ctx, "clienttest", "flaky", flowstone.Partition(part))
	if err != nil {
		t.Fatal(err)
	}
	want := decodeInt(t, first)
	failing.Store(part, true)
	defer failing.Delete(part)
	_, err = c.Run(ctx, "clienttest", "flaky", flowstone.Partition(part), flowstone.Force())
	if !errors.Is(err, flowstone.ErrExecutionFailed) {
		t.Fatalf("forced re-run: %v; want execution_failed", err)
	}
	got, err := c.Get(ctx, "clienttest", "flaky", flowstone.Partition(part))
	if err != nil {
		t.Fatalf("get after the failed re-run: %v; want the first value", err)
	}
	if v := decodeInt(t, got); v != want || got.RunID != first.RunID {
		t.Fatalf("get = %d of run %s; want %d of run %s", v, got.RunID, want, first.RunID)
	}
	if ok, err := c.Exists(ctx, "clienttest", "flaky", flowstone.Partition(part)); !ok || err != nil {
		t.Fatalf("exists = %v, %v", ok, err)
	}
	st, err := c.Status(ctx, "clienttest", "flaky", flowstone.Partition(part))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != flowstone.StateFailed || st.Error == nil || st.Value == nil || st.Value.RunID != first.RunID || st.Value.CompletedAt.IsZero() {
		t.Fatalf("status = %+v (value %+v); want failed, with the first run's value", st, st.Value)
	}
	// A dependent uses the kept value; flaky does not run again.
	runs := flakyRuns.Load()
	after, err := c.Run(ctx, "clienttest", "after_flaky", flowstone.Partition(part))
	if err != nil || decodeInt(t, after) != want*10 || flakyRuns.Load() != runs {
		t.Fatalf("after_flaky = %v, %v (%d new flaky runs); want %d from the kept value", after, err, flakyRuns.Load()-runs, want*10)
	}
}

// An unpartitioned asset refuses a partition on every verb of the client,
// and a daily asset a key that is no date, as embedded: bad_request, and
// nothing runs.
func TestPartitionsAreCheckedOnEveryVerb(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	for _, target := range [][3]string{{"example", "sum", "../../etc/passwd"}, {"daily_sales", "revenue", "eu"}} {
		pipeline, asset, part := target[0], target[1], flowstone.Partition(target[2])
		errs := map[string]error{}
		_, errs["run"] = c.Run(ctx, pipeline, asset, part)
		_, errs["async run"] = c.Run(ctx, pipeline, asset, part, flowstone.Async())
		_, errs["get"] = c.Get(ctx, pipeline, asset, part)
		_, errs["exists"] = c.Exists(ctx, pipeline, asset, part)
		_, errs["status"] = c.Status(ctx, pipeline, asset, part)
		errs["cancel"] = c.Cancel(ctx, pipeline, asset, part)
		_, errs["invalidate"] = c.Invalidate(ctx, pipeline, asset, part)
		_, errs["backfill"] = c.Backfill(ctx, pipeline, asset, flowstone.Partitions(target[2]))
		for verb, err := range errs {
			var fe *flowstone.Error
			if !errors.As(err, &fe) || fe.Type != flowstone.TypeBadRequest || fe.Details["asset"] != asset && fe.Details["partitioned_by"] == nil {
				t.Errorf("%s of %s/%s partition %q: %v, want bad_request", verb, pipeline, asset, target[2], err)
			}
		}
	}
	if st, err := c.Status(ctx, "example", "sum", flowstone.Partition("../../etc/passwd")); err == nil || st.State != "" {
		t.Errorf("status = %+v, %v", st, err)
	}
	if _, err := c.Status(ctx, "example", "sum"); err != nil {
		t.Errorf("status without a partition: %v", err)
	}
}

// WithRunID names the run on the fleet as embedded: the reply, the records
// and the job carry it, and an id another run has is refused.
func TestRunHonoursWithRunID(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	id := "mine-" + nuid.Next()
	part := flowstone.Partition(uniq(t, "runid"))
	res, err := c.Run(ctx, "keyed", "sum", part, flowstone.WithRunID(id))
	if err != nil {
		t.Fatal(err)
	}
	if res.RunID != id || res.Record.RunID != id {
		t.Fatalf("run with WithRunID(%q) = run %s (record %s)", id, res.RunID, res.Record.RunID)
	}
	if st, err := c.Status(ctx, "keyed", "numbers", part); err != nil || st.RunID != id {
		t.Fatalf("status of a dependency = %+v, %v; want run %s", st, err, id)
	}
	_, err = c.Run(ctx, "keyed", "sum", flowstone.Partition(uniq(t, "runid again")), flowstone.WithRunID(id))
	var fe *flowstone.Error
	if !errors.As(err, &fe) || fe.Type != flowstone.TypeBadRequest || fe.Details["run_id"] != id {
		t.Fatalf("a second run with the same id: %v, want bad_request", err)
	}
	for _, bad := range []string{"has space", strings.Repeat("x", protocol.MaxIDBytes+1), "bf-0123456789abcdef0123456789abcdef"} {
		if _, err := c.Run(ctx, "keyed", "sum", part, flowstone.WithRunID(bad), flowstone.Force()); !errors.Is(err, flowstone.ErrBadRequest) {
			t.Errorf("run id %q: %v, want bad_request", bad, err)
		}
	}
	async := "mine-async-" + nuid.Next()
	res, err = c.Run(ctx, "keyed", "sum", flowstone.Partition(uniq(t, "runid async")), flowstone.WithRunID(async), flowstone.Async())
	if err != nil || res.Job == nil || res.Job.ID != async {
		t.Fatalf("async run with WithRunID = %+v, %v", res, err)
	}
}

// A result read through the client names the dependency values it was
// computed from, with the runs that computed them, as its record does.
func TestResultsCarryTheirLineage(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	key := uniq(t, "lineage")
	part := flowstone.Partition(key)
	first, err := c.Run(ctx, "keyed", "doubled", part)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Run(ctx, "keyed", "sum", part)
	if err != nil {
		t.Fatal(err)
	}
	if second.RunID == first.RunID {
		t.Fatalf("the second run has the first one's id %s", first.RunID)
	}
	want := []flowstone.Lineage{{Asset: "doubled", Partition: key, RunID: first.RunID}}
	got, err := c.Get(ctx, "keyed", "sum", part)
	if err != nil {
		t.Fatal(err)
	}
	for name, res := range map[string]*flowstone.Result{"run": second, "get": got} {
		if fmt.Sprint(res.Record.Value.Upstream) != fmt.Sprint(want) {
			t.Errorf("%s: upstream %+v, want %+v", name, res.Record.Value.Upstream, want)
		}
	}
	doubled, err := c.Get(ctx, "keyed", "doubled", part)
	if err != nil {
		t.Fatal(err)
	}
	if up := doubled.Record.Value.Upstream; len(up) != 1 || up[0].Asset != "numbers" || up[0].RunID != first.RunID {
		t.Errorf("doubled's upstream = %+v", up)
	}
}

// Watch delivers the events of one worker in the order they happened,
// though the worker publishes them in batches of one kind: a run that
// retries shows start, exception, start, exception, start, stop.
func TestWatchKeepsEachRunsEventsInOrder(t *testing.T) {
	c, ctx := connect(t, fleet(t)), testCtx(t)
	var (
		mu  sync.Mutex
		got = map[string][]string{} // partition -> kinds of run events, as delivered
	)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(wctx, "clienttest", func(e protocol.Event) {
			if e.Asset == "retried" && strings.HasPrefix(string(e.Kind), "run.") {
				mu.Lock()
				got[e.Partition] = append(got[e.Partition], string(e.Kind))
				mu.Unlock()
			}
		})
	}()
	// The subscription may not be in place for the first run: run a
	// partition of its own until its events arrive.
	warm := uniq(t, "warm up")
	for seen := false; !seen; {
		if _, err := c.Run(ctx, "clienttest", "retried", flowstone.Partition(warm), flowstone.Force()); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the watch saw no event")
		case <-time.After(20 * time.Millisecond):
		}
		mu.Lock()
		seen = len(got[warm]) > 0
		mu.Unlock()
	}
	parts := make([]string, 12)
	for i := range parts {
		parts[i] = uniq(t, "ordered "+strconv.Itoa(i))
	}
	if _, err := c.Backfill(ctx, "clienttest", "retried", flowstone.Partitions(parts...), flowstone.Parallel(len(parts))); err != nil {
		t.Fatal(err)
	}
	want := "run.start run.exception run.start run.exception run.start run.stop"
	for {
		mu.Lock()
		complete := 0
		for _, p := range parts {
			if kinds := got[p]; len(kinds) > 0 && kinds[len(kinds)-1] == "run.stop" || len(kinds) >= 6 {
				complete++
			}
		}
		mu.Unlock()
		if complete == len(parts) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the watch did not see every run end: %v", got)
		case <-time.After(10 * time.Millisecond):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range parts {
		if kinds := strings.Join(got[p], " "); kinds != want {
			t.Errorf("events of %q: %s, want %s", p, kinds, want)
		}
	}
}
