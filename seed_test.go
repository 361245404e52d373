package flowstone_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/objectstore"
)

func TestSeedActsAsAMaterializedResult(t *testing.T) {
	e := newEngine(t)
	var n, d, s int
	p := keyedPipeline(t, map[string]*int{"numbers": &n, "doubled": &d, "sum": &s})
	ctx := ctxT(t)
	if err := e.Seed(ctx, p, "doubled", []int{100, 200}, flowstone.Partition("seeded")); err != nil {
		t.Fatal(err)
	}
	got, err := e.Get(ctx, p, "doubled", flowstone.Partition("seeded"))
	if err != nil {
		t.Fatal(err)
	}
	var vals []int
	if err := got.Decode(&vals); err != nil || len(vals) != 2 || vals[1] != 200 {
		t.Fatalf("seeded value = %v, %v", vals, err)
	}
	st, _ := e.Status(ctx, p, "doubled", flowstone.Partition("seeded"))
	if st.State != flowstone.StateCompleted || st.RunID != flowstone.SeedRunID || st.Storage != flowstone.InlineStorage {
		t.Fatalf("status of a seeded asset = %+v", st)
	}

	// An ordinary run reuses it: nothing upstream of sum executes.
	res, err := e.Run(ctx, p, "sum", flowstone.Partition("seeded"))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeInt(t, res); got != 300 {
		t.Fatalf("sum over the seeded value = %d, want 300", got)
	}
	if n != 0 || d != 0 || s != 1 {
		t.Fatalf("executions numbers=%d doubled=%d sum=%d, want 0 0 1", n, d, s)
	}
	if up := res.Record.Value.Upstream; len(up) != 1 || up[0].Asset != "doubled" || up[0].RunID != flowstone.SeedRunID {
		t.Fatalf("lineage of sum = %+v, want the seeded doubled", up)
	}
	// Other partitions are untouched.
	if ok, _ := e.Exists(ctx, p, "doubled"); ok {
		t.Fatal("seeding one partition materialized the default one")
	}

	// Seeding again replaces the value; Invalidate removes it like any result.
	if err := e.Seed(ctx, p, "doubled", []int{1}, flowstone.Partition("seeded")); err != nil {
		t.Fatal(err)
	}
	res, _ = e.Run(ctx, p, "sum", flowstone.Partition("seeded"), flowstone.Force())
	if got := decodeInt(t, res); got != 1 {
		t.Fatalf("sum after re-seeding = %d, want 1", got)
	}
	if c, err := e.Invalidate(ctx, p, "doubled", flowstone.Partition("seeded")); c != 1 || err != nil {
		t.Fatalf("invalidate seeded = %d, %v", c, err)
	}
}

func TestSeedRawBytesAndStorage(t *testing.T) {
	disk := objectstore.NewMemory()
	e, err := flowstone.NewEngine(flowstone.EngineConfig{Stores: map[string]objectstore.Store{"memory": objectstore.NewMemory(), "disk": disk}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	p := flowstone.MustPipeline("p",
		flowstone.Asset("blob", noop),
		flowstone.Asset("size", func(c *flowstone.Context) (any, error) {
			b, err := flowstone.Dep[[]byte](c, "blob")
			return len(b), err
		}, flowstone.DependsOn("blob")),
	)
	ctx := ctxT(t)
	raw := bytes.Repeat([]byte{0xff, 0x00}, 1000)
	if err := e.Seed(ctx, p, "blob", raw, flowstone.Storage("disk")); err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(ctx, p, "size", flowstone.WithDeps(false))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeInt(t, res); got != len(raw) {
		t.Fatalf("size = %d, want %d: raw bytes were not stored as is", got, len(raw))
	}
	got, _ := e.Get(ctx, p, "blob")
	if got.Record.Value.Storage != "disk" || got.Record.Value.Encoding != flowstone.EncodingRaw {
		t.Fatalf("seeded record = %+v", got.Record)
	}
	if _, err := disk.Stat(ctx, got.Record.Value.ObjectKey); err != nil {
		t.Fatalf("seeded bytes are not in the named store: %v", err)
	}
}

func TestSeedRejectsBadInput(t *testing.T) {
	e := newEngine(t)
	ctx := ctxT(t)
	p := flowstone.MustPipeline("p",
		flowstone.Asset("daily", noop, flowstone.PartitionedBy(flowstone.Daily)),
	)
	err := e.Seed(ctx, p, "ghost", 1)
	wantType(t, err, flowstone.TypeAssetNotFound)
	err = e.Seed(ctx, p, "daily", 1, flowstone.Partition("us"))
	wantType(t, err, flowstone.TypeBadRequest)
	err = e.Seed(ctx, p, "daily", 1, flowstone.Partition(""))
	wantType(t, err, flowstone.TypeBadRequest)
	err = e.Seed(ctx, p, "daily", 1, flowstone.Partition("2025-01-15"), flowstone.Storage("s3"))
	wantType(t, err, flowstone.TypeConfigError)
	err = e.Seed(ctx, p, "daily", func() {}, flowstone.Partition("2025-01-15"))
	fe := wantType(t, err, flowstone.TypeExecutionFailed)
	if !strings.Contains(fe.Message, "cannot be encoded") {
		t.Fatalf("message %q", fe.Message)
	}
	if ok, _ := e.Exists(ctx, p, "daily", flowstone.Partition("2025-01-15")); ok {
		t.Fatal("a rejected seed materialized the asset")
	}
}
