package pipelines_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/pipelines"
)

func TestExampleSumIs30(t *testing.T) {
	e := flowstone.MustEngine(flowstone.EngineConfig{})
	res, err := e.Run(context.Background(), pipelines.Example(), "sum")
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := res.Decode(&v); err != nil || v != 30 {
		t.Fatalf("sum = %d, %v", v, err)
	}
}

func TestDailySalesIsDeterministicAndConsistent(t *testing.T) {
	e := flowstone.MustEngine(flowstone.EngineConfig{})
	p := pipelines.DailySales(pipelines.Options{})
	res, err := e.Run(context.Background(), p, "revenue", flowstone.Partition("2025-01-15"))
	if err != nil {
		t.Fatal(err)
	}
	var rev pipelines.Revenue
	if err := res.Decode(&rev); err != nil {
		t.Fatal(err)
	}
	// Recompute from the generator: the pipeline must agree with it.
	want, n := 0.0, 0
	for _, o := range pipelines.GenerateOrders("2025-01-15") {
		if o.Status == "paid" {
			want += float64(o.Quantity) * o.Price
			n++
		}
	}
	if rev.Orders != n || math.Abs(rev.Total-want) > 0.005 || rev.Day != "2025-01-15" {
		t.Fatalf("revenue = %+v, want %d orders totalling %.2f", rev, n, want)
	}
	sum := 0.0
	for _, v := range rev.ByRegion {
		sum += v
	}
	if math.Abs(sum-rev.Total) > 0.02 {
		t.Fatalf("regions sum to %.2f, total %.2f", sum, rev.Total)
	}
	if a, b := pipelines.GenerateOrders("2025-01-15"), pipelines.GenerateOrders("2025-01-15"); len(a) != len(b) || a[0] != b[0] {
		t.Fatal("generator is not deterministic")
	}
	if _, err := e.Run(context.Background(), p, "revenue", flowstone.Partition("us")); err == nil {
		t.Fatal("a non-date partition was accepted")
	}
}

func TestDynamicPricesEveryProduct(t *testing.T) {
	e := flowstone.MustEngine(flowstone.EngineConfig{})
	p := pipelines.Dynamic(pipelines.Options{})
	res, err := e.Run(context.Background(), p, "report", flowstone.Partition("today"))
	if err != nil {
		t.Fatal(err)
	}
	var r pipelines.PriceReport
	if err := res.Decode(&r); err != nil {
		t.Fatal(err)
	}
	want := 0.0
	for i := range pipelines.CatalogSize {
		want += pipelines.PriceOf(fmt.Sprintf("sku-%05d", i))
	}
	if r.Products != pipelines.CatalogSize || math.Abs(r.Total-want) > 0.01 {
		t.Fatalf("report = %+v, want %d products totalling %.2f", r, pipelines.CatalogSize, want)
	}
	st, err := e.Status(context.Background(), p, "prices", flowstone.Partition("today"))
	if err != nil || st.Scatter == nil || st.Scatter.Completed != pipelines.CatalogSize {
		t.Fatalf("prices status = %+v, %v", st, err)
	}
}

func TestBenchFanTakesItsItemCountFromThePartition(t *testing.T) {
	e := flowstone.MustEngine(flowstone.EngineConfig{})
	p := pipelines.Bench()
	if _, err := e.Run(context.Background(), p, "fan", flowstone.Partition("1000")); err != nil {
		t.Fatal(err)
	}
	st, err := e.Status(context.Background(), p, "fan", flowstone.Partition("1000"))
	if err != nil || st.Scatter == nil || st.Scatter.Completed != 1000 {
		t.Fatalf("fan status = %+v, %v", st, err)
	}
	if _, err := e.Run(context.Background(), p, "fan", flowstone.Partition("many")); err == nil {
		t.Fatal("a partition key that is not a count was accepted")
	}
}

func TestReleaseWaitsForItsApproval(t *testing.T) {
	ctx := context.Background()
	e := flowstone.MustEngine(flowstone.EngineConfig{})
	defer e.Close()
	p := pipelines.Release()
	waits := make(chan struct{}, 1)
	defer e.Subscribe(func(ev flowstone.Event) {
		if ev.Kind == flowstone.EventGateWait {
			waits <- struct{}{}
		}
	})()
	done := make(chan error, 1)
	var got string
	go func() {
		res, err := e.Run(ctx, p, "announce", flowstone.Partition("v1.2"))
		if err == nil {
			err = res.Decode(&got)
		}
		done <- err
	}()
	<-waits
	if err := e.Approve(ctx, p, "publish", flowstone.Partition("v1.2")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || got != "announced: published v1.2" {
		t.Fatalf("announce = %q, %v", got, err)
	}
	// smoke needs a signal secret.
	if _, err := e.Run(ctx, p, "smoke", flowstone.Partition("v1.2")); !errors.Is(err, flowstone.ErrConfig) {
		t.Fatalf("smoke without a secret = %v", err)
	}
}
