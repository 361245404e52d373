package flowstone_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/kv"
)

func TestGetExistsStatus(t *testing.T) {
	e := newEngine(t)
	p := examplePipeline(t, nil)
	ctx := ctxT(t)

	_, err := e.Get(ctx, p, "sum")
	fe := wantType(t, err, flowstone.TypeNotFound)
	if !strings.Contains(fe.Message, "Run") {
		t.Fatalf("not-found message %q does not say what to do", fe.Message)
	}
	if ok, err := e.Exists(ctx, p, "sum"); ok || err != nil {
		t.Fatalf("Exists before run = %v, %v", ok, err)
	}
	st, err := e.Status(ctx, p, "sum")
	if err != nil || st.State != flowstone.StateNotFound || st.Partition != "default" {
		t.Fatalf("status before run = %+v, %v", st, err)
	}
	before := time.Now()
	if _, err := e.Run(ctx, p, "sum"); err != nil {
		t.Fatal(err)
	}
	res, err := e.Get(ctx, p, "sum")
	if err != nil {
		t.Fatal(err)
	}
	if decodeInt(t, res) != 30 || !res.Cached {
		t.Fatalf("get = %+v", res)
	}
	if ok, _ := e.Exists(ctx, p, "sum"); !ok {
		t.Fatal("Exists after run = false")
	}
	st, _ = e.Status(ctx, p, "sum")
	if st.State != flowstone.StateCompleted || st.CompletedAt == nil || st.CompletedAt.Before(before) || st.Storage != flowstone.InlineStorage || st.RunID == "" {
		t.Fatalf("status after run = %+v", st)
	}
	if fmt := st.State.String(); fmt != "completed" {
		t.Fatalf("state prints as %q", fmt)
	}
	// Unknown asset on every verb.
	_, err = e.Get(ctx, p, "ghost")
	wantType(t, err, flowstone.TypeAssetNotFound)
	_, err = e.Exists(ctx, p, "ghost")
	wantType(t, err, flowstone.TypeAssetNotFound)
	_, err = e.Status(ctx, p, "ghost")
	wantType(t, err, flowstone.TypeAssetNotFound)
	wantType(t, e.Cancel(ctx, p, "ghost"), flowstone.TypeAssetNotFound)
	_, err = e.Invalidate(ctx, p, "ghost")
	wantType(t, err, flowstone.TypeAssetNotFound)
	// Get from a store that is not configured.
	_, err = e.Get(ctx, p, "sum", flowstone.Storage("s3"))
	wantType(t, err, flowstone.TypeConfigError)
}

func TestStatusJSONKeysAreTheProposals(t *testing.T) {
	e := newEngine(t)
	p := examplePipeline(t, nil)
	ctx := ctxT(t)
	e.Run(ctx, p, "sum")
	st, _ := e.Status(ctx, p, "sum")
	b, err := jsonMarshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"state":"completed"`, `"partition":"default"`, `"completed_at":`, `"duration_ms":`, `"storage":"inline"`, `"scatter":null`} {
		if !strings.Contains(b, k) {
			t.Fatalf("status JSON %s lacks %s", b, k)
		}
	}
}

func TestInvalidate(t *testing.T) {
	e := newEngine(t)
	var n, d, s int
	p := keyedPipeline(t, map[string]*int{"numbers": &n, "doubled": &d, "sum": &s})
	ctx := ctxT(t)
	if _, err := e.Run(ctx, p, "sum"); err != nil {
		t.Fatal(err)
	}
	if c, err := e.Invalidate(ctx, p, "sum"); c != 1 || err != nil {
		t.Fatalf("invalidate sum = %d, %v", c, err)
	}
	if ok, _ := e.Exists(ctx, p, "sum"); ok {
		t.Fatal("sum exists after invalidate")
	}
	if c, _ := e.Invalidate(ctx, p, "sum"); c != 0 {
		t.Fatalf("second invalidate = %d, want 0", c)
	}
	e.Run(ctx, p, "sum")
	if n != 1 || d != 1 || s != 2 {
		t.Fatalf("after invalidating sum: %d %d %d", n, d, s)
	}
	// Cascade from the root deletes all three; other partitions stay.
	e.Run(ctx, p, "sum", flowstone.Partition("other"))
	c, err := e.Invalidate(ctx, p, "numbers", flowstone.Cascade())
	if c != 3 || err != nil {
		t.Fatalf("cascade = %d, %v", c, err)
	}
	if ok, _ := e.Exists(ctx, p, "sum", flowstone.Partition("other")); !ok {
		t.Fatal("cascade reached another partition")
	}
	e.Run(ctx, p, "sum")
	if n != 3 || d != 3 || s != 4 {
		t.Fatalf("after cascade: %d %d %d, want 3 3 4", n, d, s)
	}
	// Invalidate of a partition only.
	if c, _ := e.Invalidate(ctx, p, "sum", flowstone.Partition("other")); c != 1 {
		t.Fatalf("partition invalidate = %d", c)
	}
	if ok, _ := e.Exists(ctx, p, "sum"); !ok {
		t.Fatal("partition invalidate touched the default partition")
	}
}

func TestBackfill(t *testing.T) {
	e := newEngine(t)
	var execs atomic.Int32
	p := flowstone.MustPipeline("daily",
		flowstone.Asset("orders", func(c *flowstone.Context) (any, error) {
			execs.Add(1)
			return c.Partition(), nil
		}, flowstone.PartitionedBy(flowstone.Daily)),
	)
	ctx := ctxT(t)
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC)
	if _, err := e.Run(ctx, p, "orders", flowstone.Partition("2025-01-10")); err != nil {
		t.Fatal(err)
	}
	var progress []int
	stats, err := e.Backfill(ctx, p, "orders", flowstone.DateRange(from, to), flowstone.Parallel(4),
		flowstone.OnProgress(func(pr flowstone.BackfillProgress) { progress = append(progress, pr.Done) }))
	if err != nil {
		t.Fatal(err)
	}
	if stats.Succeeded != 30 || stats.Skipped != 1 || stats.Failed != 0 {
		t.Fatalf("stats = %+v", stats)
	}
	if execs.Load() != 31 || len(progress) != 31 || progress[30] != 31 {
		t.Fatalf("execs = %d, progress = %v", execs.Load(), progress)
	}
	for _, day := range []string{"2025-01-01", "2025-01-31"} {
		if ok, _ := e.Exists(ctx, p, "orders", flowstone.Partition(day)); !ok {
			t.Fatalf("%s not materialized", day)
		}
	}
	// Force re-runs them all.
	stats, _ = e.Backfill(ctx, p, "orders", flowstone.Partitions("2025-01-01", "2025-01-02"), flowstone.Force())
	if stats.Succeeded != 2 {
		t.Fatalf("forced stats = %+v", stats)
	}
	// Bad arguments are errors and run nothing.
	before := execs.Load()
	_, err = e.Backfill(ctx, p, "orders")
	wantType(t, err, flowstone.TypeBadRequest)
	_, err = e.Backfill(ctx, p, "orders", flowstone.Partitions("2025-01-01", "us"))
	wantType(t, err, flowstone.TypeBadRequest)
	_, err = e.Backfill(ctx, p, "orders", flowstone.DateRange(to, from))
	wantType(t, err, flowstone.TypeBadRequest)
	_, err = e.Backfill(ctx, p, "orders", flowstone.Partitions("2025-02-01"), flowstone.Parallel(0))
	wantType(t, err, flowstone.TypeBadRequest)
	_, err = e.Backfill(ctx, p, "orders", flowstone.Partitions("2025-02-01"), flowstone.Parallel(flowstone.MaxParallel+1))
	wantType(t, err, flowstone.TypeBadRequest)
	// Ten thousand years: refused from the range's ends, never expanded.
	_, err = e.Backfill(ctx, p, "orders", flowstone.DateRange(from, from.AddDate(10000, 0, 0)))
	if fe := wantType(t, err, flowstone.TypeBadRequest); fe.Details["days"] != int64(3652426) {
		t.Fatalf("details of a range of ten thousand years: %v", fe.Details)
	}
	if execs.Load() != before {
		t.Fatal("a rejected backfill executed something")
	}
}

func TestBackfillBoundsParallelism(t *testing.T) {
	e := newEngine(t)
	var cur, peak atomic.Int32
	p := flowstone.MustPipeline("p", flowstone.Asset("a", func(c *flowstone.Context) (any, error) {
		n := cur.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		cur.Add(-1)
		return nil, nil
	}, flowstone.PartitionedBy(flowstone.AnyKey)))
	keys := make([]string, 24)
	for i := range keys {
		keys[i] = string(rune('a' + i))
	}
	stats, err := e.Backfill(ctxT(t), p, "a", flowstone.Partitions(keys...), flowstone.Parallel(3))
	if err != nil || stats.Succeeded != 24 {
		t.Fatalf("%+v %v", stats, err)
	}
	if peak.Load() > 3 || peak.Load() < 2 {
		t.Fatalf("peak concurrency = %d, want 2..3", peak.Load())
	}
}

func TestBackfillOnError(t *testing.T) {
	e := newEngine(t)
	p := flowstone.MustPipeline("p", flowstone.Asset("a", func(c *flowstone.Context) (any, error) {
		if c.Partition() == "bad" {
			return nil, errors.New("bad partition data")
		}
		return 1, nil
	}, flowstone.PartitionedBy(flowstone.AnyKey)))
	ctx := ctxT(t)
	stats, err := e.Backfill(ctx, p, "a", flowstone.Partitions("x1", "bad", "x2", "x3"))
	if err != nil || stats.Succeeded != 3 || stats.Failed != 1 || stats.Errors["bad"] == nil {
		t.Fatalf("continue: %+v %v", stats, err)
	}
	stats, err = e.Backfill(ctx, p, "a", flowstone.Partitions("bad", "y1", "y2", "y3"), flowstone.OnError(flowstone.Halt), flowstone.Force())
	if err != nil || stats.Failed != 1 || stats.NotStarted != 3 || stats.Succeeded != 0 {
		t.Fatalf("halt: %+v %v", stats, err)
	}
	if ok, _ := e.Exists(ctx, p, "a", flowstone.Partition("y1")); ok {
		t.Fatal("halt still ran a later partition")
	}
	if got := strings.Join(stats.NotStartedPartitions, ","); got != "y1,y2,y3" {
		t.Fatalf("halt: not started partitions %q, want y1,y2,y3", got)
	}
	// The list is bounded; the count is not.
	many := make([]string, flowstone.MaxListedNotStarted+50)
	for i := range many {
		many[i] = fmt.Sprintf("z%03d", i)
	}
	many[0] = "bad"
	stats, err = e.Backfill(ctx, p, "a", flowstone.Partitions(many...), flowstone.OnError(flowstone.Halt), flowstone.Force())
	if err != nil || stats.NotStarted != len(many)-1 || len(stats.NotStartedPartitions) != flowstone.MaxListedNotStarted || stats.NotStartedPartitions[0] != "z001" {
		t.Fatalf("halt of many: not started %d, listed %d (first %v), %v", stats.NotStarted, len(stats.NotStartedPartitions), stats.NotStartedPartitions[:1], err)
	}
}

func TestConcurrentVerbsAreSafe(t *testing.T) {
	e := newEngine(t)
	p := keyedPipeline(t, nil)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				part := flowstone.Partition(string(rune('a' + j%4)))
				e.Run(ctx, p, "sum", part)
				e.Status(ctx, p, "doubled", part)
				e.Invalidate(ctx, p, "doubled", part, flowstone.Cascade())
				e.Get(ctx, p, "sum", part)
			}
		}()
	}
	wg.Wait()
	res, err := e.Run(ctx, p, "sum", flowstone.Partition("a"))
	if err != nil || decodeInt(t, res) != 30 {
		t.Fatalf("after the storm: %v", err)
	}
}

// A large backfill plans from one listing of the asset's records: the
// partitions materialized before it are skipped, not run again, and the
// others run once each, also when another run materializes some of them
// while the backfill is under way.
func TestLargeBackfillSkipsWhatIsMaterialized(t *testing.T) {
	e := newEngine(t)
	var mu sync.Mutex
	runs := map[string]int{}
	p := flowstone.MustPipeline("p", flowstone.Asset("a", func(c *flowstone.Context) (any, error) {
		mu.Lock()
		runs[c.Partition()]++
		mu.Unlock()
		return c.Partition(), nil
	}, flowstone.PartitionedBy(flowstone.AnyKey)))
	ctx := ctxT(t)
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%03d", i)
	}
	for _, k := range keys[:100] {
		if _, err := e.Run(ctx, p, "a", flowstone.Partition(k)); err != nil {
			t.Fatal(err)
		}
	}
	// Runs racing the backfill over the last 100 partitions.
	var wg sync.WaitGroup
	for _, k := range keys[200:] {
		wg.Go(func() {
			if _, err := e.Run(ctx, p, "a", flowstone.Partition(k)); err != nil {
				t.Error(err)
			}
		})
	}
	stats, err := e.Backfill(ctx, p, "a", flowstone.Partitions(keys...), flowstone.Parallel(16))
	wg.Wait()
	if err != nil || stats.Failed != 0 || stats.Skipped < 100 || stats.Succeeded+stats.Skipped != 300 {
		t.Fatalf("stats = %+v, %v; want 300 partitions, at least the 100 materialized before skipped", stats, err)
	}
	for _, k := range keys {
		if runs[k] != 1 {
			t.Errorf("partition %s executed %d times, want once", k, runs[k])
		}
	}
	res, err := e.Get(ctx, p, "a", flowstone.Partition("k250"))
	var got string
	if err == nil {
		err = res.Decode(&got)
	}
	if err != nil || got != "k250" {
		t.Fatalf("Get k250 = %q, %v", got, err)
	}
}

// countingKV is the memory kv counting the Gets of keys under a prefix.
type countingKV struct {
	kv.Store
	prefix string
	gets   atomic.Int64
}

func (c *countingKV) Get(ctx context.Context, key string) (kv.Entry, error) {
	if strings.HasPrefix(key, c.prefix) {
		c.gets.Add(1)
	}
	return c.Store.Get(ctx, key)
}

// A large backfill of partitions never materialized does not read their
// records one by one while planning (one listing tells they are absent).
func TestLargeBackfillPlansFromOneListing(t *testing.T) {
	store := &countingKV{Store: kv.NewMemory(), prefix: "mat.p.a."}
	e, err := flowstone.NewEngine(flowstone.EngineConfig{KV: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	p := flowstone.MustPipeline("p", flowstone.Asset("a", func(c *flowstone.Context) (any, error) { return 1, nil }, flowstone.PartitionedBy(flowstone.AnyKey)))
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%03d", i)
	}
	stats, err := e.Backfill(ctxT(t), p, "a", flowstone.Partitions(keys...), flowstone.Parallel(8))
	if err != nil || stats.Succeeded != 200 {
		t.Fatalf("stats = %+v, %v", stats, err)
	}
	if n := store.gets.Load(); n >= 200 {
		t.Fatalf("%d record reads for 200 partitions never materialized: planning read each", n)
	}
}

// presentKV is countingKV that can check many keys at once, counting its
// checks and listings.
type presentKV struct {
	*countingKV
	mem              *kv.Memory
	presents, listed atomic.Int64
}

func (s *presentKV) Present(ctx context.Context, keys []string) (map[string]bool, error) {
	s.presents.Add(1)
	return s.mem.Present(ctx, keys)
}

func (s *presentKV) Keys(ctx context.Context, prefix string) ([]string, error) {
	s.listed.Add(1)
	return s.countingKV.Keys(ctx, prefix)
}

// With a store that checks many keys at once, a large backfill asks about
// the partitions it names rather than listing every record of the asset,
// and still reads none of the never-materialized ones on its own.
func TestLargeBackfillChecksTheNamedPartitions(t *testing.T) {
	mem := kv.NewMemory()
	store := &presentKV{countingKV: &countingKV{Store: mem, prefix: "mat.p.a."}, mem: mem}
	e, err := flowstone.NewEngine(flowstone.EngineConfig{KV: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	p := flowstone.MustPipeline("p", flowstone.Asset("a", func(c *flowstone.Context) (any, error) { return 1, nil }, flowstone.PartitionedBy(flowstone.AnyKey)))
	ctx := ctxT(t)
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%03d", i)
	}
	for _, k := range keys[:50] {
		if _, err := e.Run(ctx, p, "a", flowstone.Partition(k)); err != nil {
			t.Fatal(err)
		}
	}
	store.gets.Store(0)
	stats, err := e.Backfill(ctx, p, "a", flowstone.Partitions(keys...), flowstone.Parallel(8))
	if err != nil || stats.Succeeded != 150 || stats.Skipped != 50 {
		t.Fatalf("stats = %+v, %v; want 150 run, 50 skipped", stats, err)
	}
	if store.presents.Load() == 0 || store.listed.Load() != 0 {
		t.Fatalf("%d presence checks, %d listings: want the named partitions checked, no listing", store.presents.Load(), store.listed.Load())
	}
	if n := store.gets.Load(); n >= 150 {
		t.Fatalf("%d record reads: planning read the never-materialized partitions one by one", n)
	}
}
