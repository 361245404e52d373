package flowstone_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// dailyPair is orders -> cleaned, both partitioned by day, counting the
// executions of cleaned.
func dailyPair(t testing.TB, name string, cleaned *int) *flowstone.Pipeline {
	t.Helper()
	return flowstone.MustPipeline(name,
		flowstone.Asset("orders", func(c *flowstone.Context) (any, error) {
			return c.Partition(), nil
		}, flowstone.PartitionedBy(flowstone.Daily)),
		flowstone.Asset("cleaned", func(c *flowstone.Context) (any, error) {
			if cleaned != nil {
				*cleaned++
			}
			return flowstone.Dep[string](c, "orders")
		}, flowstone.DependsOn("orders"), flowstone.PartitionedBy(flowstone.Daily)),
	)
}

// janKey is the key of January d, 2025.
func janKey(d int) string {
	return flowstone.DatePartition(time.Date(2025, 1, d, 0, 0, 0, 0, time.UTC))
}

// runDays materializes cleaned (and so orders) for January 1 to n.
func runDays(t *testing.T, ctx context.Context, e *flowstone.Engine, p *flowstone.Pipeline, n int) {
	t.Helper()
	for d := 1; d <= n; d++ {
		if _, err := e.Run(ctx, p, "cleaned", flowstone.Partition(janKey(d))); err != nil {
			t.Fatal(err)
		}
	}
}

// exist returns which of January 1 to n asset is materialized for, as
// "1 2 4".
func exist(t *testing.T, ctx context.Context, e *flowstone.Engine, p *flowstone.Pipeline, asset string, n int) string {
	t.Helper()
	var out []string
	for d := 1; d <= n; d++ {
		ok, err := e.Exists(ctx, p, asset, flowstone.Partition(janKey(d)))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			out = append(out, time.Date(2025, 1, d, 0, 0, 0, 0, time.UTC).Format("2"))
		}
	}
	return strings.Join(out, " ")
}

func TestInvalidateManyPartitions(t *testing.T) {
	e, ctx := newEngine(t), ctxT(t)
	p := dailyPair(t, "many", nil)
	runDays(t, ctx, e, p, 5)

	// Partitions: those named only, the downstream untouched.
	if n, err := e.Invalidate(ctx, p, "orders", flowstone.Partitions(janKey(1), janKey(2), janKey(1))); n != 2 || err != nil {
		t.Fatalf("invalidate orders of days 1, 2 (1 repeated) = %d, %v; want 2", n, err)
	}
	if got := exist(t, ctx, e, p, "orders", 5); got != "3 4 5" {
		t.Fatalf("orders after invalidating days 1 and 2: %q", got)
	}
	if got := exist(t, ctx, e, p, "cleaned", 5); got != "1 2 3 4 5" {
		t.Fatalf("cleaned after invalidating orders without cascade: %q", got)
	}
	// DateRange with Cascade: per partition, records that exist only.
	if n, err := e.Invalidate(ctx, p, "orders", flowstone.DateRange(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 3, 0, 0, 0, 0, time.UTC)), flowstone.Cascade()); n != 4 || err != nil {
		t.Fatalf("invalidate days 1-3 with cascade = %d, %v; want 4 (orders of day 3, cleaned of days 1-3)", n, err)
	}
	if got := exist(t, ctx, e, p, "cleaned", 5); got != "4 5" {
		t.Fatalf("cleaned after the cascade over days 1-3: %q", got)
	}
	// Partition and Partitions together name both.
	if n, err := e.Invalidate(ctx, p, "cleaned", flowstone.Partition(janKey(4)), flowstone.Partitions(janKey(5))); n != 2 || err != nil {
		t.Fatalf("invalidate cleaned of days 4 and 5 = %d, %v; want 2", n, err)
	}
	if got := exist(t, ctx, e, p, "orders", 5); got != "4 5" {
		t.Fatalf("orders after invalidating cleaned: %q", got)
	}
}

func TestInvalidateAllPartitions(t *testing.T) {
	e, ctx := newEngine(t), ctxT(t)
	var cleaned int
	p := dailyPair(t, "all", &cleaned)
	other := dailyPair(t, "all2", nil) // a pipeline whose name the first one's begins
	runDays(t, ctx, e, p, 4)
	runDays(t, ctx, e, other, 2)

	if n, err := e.Invalidate(ctx, p, "cleaned", flowstone.AllPartitions()); n != 4 || err != nil {
		t.Fatalf("invalidate every cleaned = %d, %v; want 4", n, err)
	}
	if got := exist(t, ctx, e, p, "orders", 4); got != "1 2 3 4" {
		t.Fatalf("orders after invalidating every cleaned: %q", got)
	}
	if got := exist(t, ctx, e, other, "cleaned", 2); got != "1 2" {
		t.Fatalf("another pipeline's records were touched: %q", got)
	}
	if n, err := e.Invalidate(ctx, p, "cleaned", flowstone.AllPartitions()); n != 0 || err != nil {
		t.Fatalf("invalidate every cleaned again = %d, %v; want 0", n, err)
	}
	// With Cascade, the partitions of the downstream count too: cleaned
	// of day 6 exists while orders of day 6 is gone.
	if _, err := e.Run(ctx, p, "cleaned", flowstone.Partition(janKey(6))); err != nil {
		t.Fatal(err)
	}
	if n, err := e.Invalidate(ctx, p, "orders", flowstone.Partition(janKey(6))); n != 1 || err != nil {
		t.Fatalf("invalidate orders of day 6 = %d, %v", n, err)
	}
	if n, err := e.Invalidate(ctx, p, "orders", flowstone.AllPartitions(), flowstone.Cascade()); n != 5 || err != nil {
		t.Fatalf("invalidate everything from orders = %d, %v; want 5 (orders of days 1-4, cleaned of day 6)", n, err)
	}
	if got := exist(t, ctx, e, p, "cleaned", 6) + "|" + exist(t, ctx, e, p, "orders", 6); got != "|" {
		t.Fatalf("left after invalidating everything: %q", got)
	}
	runDays(t, ctx, e, p, 1)
	if cleaned != 6 {
		t.Fatalf("cleaned ran %d times; want 6 (days 1-4, 6, then 1 again)", cleaned)
	}
}

// anyKey accepts every key: the long ones are kept under a hash.
type anyKey struct{}

func (anyKey) Kind() string          { return "any" }
func (anyKey) Validate(string) error { return nil }

func TestInvalidateAllPartitionsLongKeys(t *testing.T) {
	e, ctx := newEngine(t), ctxT(t)
	p := flowstone.MustPipeline("long",
		flowstone.Asset("a", func(c *flowstone.Context) (any, error) { return len(c.Partition()), nil }, flowstone.PartitionedBy(anyKey{})),
		flowstone.Asset("b", func(c *flowstone.Context) (any, error) { return flowstone.Dep[int](c, "a") }, flowstone.DependsOn("a")))
	keys := []string{"short", strings.Repeat("long key ", 40), "ü/../../etc"}
	for _, k := range keys {
		if _, err := e.Run(ctx, p, "b", flowstone.Partition(k)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := e.Invalidate(ctx, p, "a", flowstone.AllPartitions(), flowstone.Cascade()); n != 6 || err != nil {
		t.Fatalf("invalidate everything = %d, %v; want 6", n, err)
	}
	for _, k := range keys {
		if ok, _ := e.Exists(ctx, p, "b", flowstone.Partition(k)); ok {
			t.Errorf("b of %.20q survived", k)
		}
	}
}

func TestInvalidateRefusesAndDeletesNothing(t *testing.T) {
	e, ctx := newEngine(t), ctxT(t)
	p := dailyPair(t, "refuse", nil)
	runDays(t, ctx, e, p, 2)
	jan := func(d int) time.Time { return time.Date(2025, 1, d, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		name string
		opts []flowstone.InvalidateOption
		want string // in the message
	}{
		{"no partition of a partitioned asset", nil, "AllPartitions"},
		{"a bad key among good ones", []flowstone.InvalidateOption{flowstone.Partitions(janKey(1), "yesterday", janKey(2))}, "yesterday"},
		{"an empty key", []flowstone.InvalidateOption{flowstone.Partitions(janKey(1), "")}, "empty"},
		{"no keys", []flowstone.InvalidateOption{flowstone.Partitions()}, "no partition"},
		{"all and a partition", []flowstone.InvalidateOption{flowstone.AllPartitions(), flowstone.Partition(janKey(1))}, "AllPartitions"},
		{"all and a range", []flowstone.InvalidateOption{flowstone.DateRange(jan(1), jan(2)), flowstone.AllPartitions()}, "AllPartitions"},
		{"a range backwards", []flowstone.InvalidateOption{flowstone.DateRange(jan(2), jan(1))}, "before"},
		{"a range of ten thousand years", []flowstone.InvalidateOption{flowstone.DateRange(jan(1), jan(1).AddDate(10000, 0, 0))}, "limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := e.Invalidate(ctx, p, "orders", append(c.opts, flowstone.Cascade())...)
			fe := wantType(t, err, flowstone.TypeBadRequest)
			if n != 0 || !strings.Contains(fe.Message, c.want) {
				t.Errorf("count %d, message %q; want 0 and a message with %q", n, fe.Message, c.want)
			}
			if got := exist(t, ctx, e, p, "orders", 2) + "|" + exist(t, ctx, e, p, "cleaned", 2); got != "1 2|1 2" {
				t.Errorf("a refused invalidate deleted records: left %q", got)
			}
		})
	}
	_, err := e.Invalidate(ctx, p, "orders")
	if fe := wantType(t, err, flowstone.TypeBadRequest); fe.Details["missing"] != "partitions" || fe.Details["partitioned_by"] != "date" {
		t.Errorf("details of an unnamed partition = %v", fe.Details)
	}
}

func TestPipelineInvalidateMany(t *testing.T) {
	ctx := ctxT(t)
	p := dailyPair(t, "pipeline_invalidate_many", nil)
	for d := 1; d <= 3; d++ {
		if _, err := p.Run(ctx, "cleaned", flowstone.Partition(janKey(d))); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := p.Invalidate(ctx, "orders", flowstone.Partitions(janKey(1), janKey(2)), flowstone.Cascade()); n != 4 || err != nil {
		t.Fatalf("invalidate days 1 and 2 with cascade = %d, %v; want 4", n, err)
	}
	if n, err := p.Invalidate(ctx, "orders", flowstone.AllPartitions(), flowstone.Cascade()); n != 2 || err != nil {
		t.Fatalf("invalidate everything left = %d, %v; want 2", n, err)
	}
	if _, err := p.Invalidate(ctx, "orders"); err == nil {
		t.Fatal("invalidate of a partitioned asset without partitions succeeded")
	}
}
