package shop_test

import (
	"errors"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/examples/ownpipeline/shop"
	"github.com/flowstone-go/flowstone/flowstonetest"
)

// daily_report alone, on orders the test makes up: orders itself never runs.
func TestDailyReport(t *testing.T) {
	t.Parallel()
	orders := []shop.Order{
		{ID: "a", Product: "tea", Cents: 250},
		{ID: "b", Product: "coffee", Cents: 300},
		{ID: "c", Product: "tea", Cents: 250},
		{ID: "d", Product: "coffee", Cents: 300, Refunded: true},
	}
	res, err := flowstonetest.RunAsset(t, shop.Pipeline(), "daily_report", map[string]any{"orders": orders},
		flowstonetest.Partition("2025-03-01"))
	if err != nil {
		t.Fatal(err)
	}
	var got shop.Report
	if err := res.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := shop.Report{Day: "2025-03-01", Orders: 4, Refunds: 1, RevenueCents: 800, TopProduct: "tea"}
	if got != want {
		t.Fatalf("daily_report = %+v, want %+v", got, want)
	}
}

// A day with no orders has an empty report, not an error.
func TestDailyReportOfNoOrders(t *testing.T) {
	t.Parallel()
	res, err := flowstonetest.RunAsset(t, shop.Pipeline(), "daily_report", map[string]any{"orders": []shop.Order{}},
		flowstonetest.Partition("2025-03-02"))
	if err != nil {
		t.Fatal(err)
	}
	var got shop.Report
	if err := res.Decode(&got); err != nil || got != (shop.Report{Day: "2025-03-02"}) {
		t.Fatalf("daily_report = %+v, %v; want an empty report of 2025-03-02", got, err)
	}
}

// The whole pipeline on an engine of the test's own: orders, then
// daily_report, for a day whose made-up orders are known (7 orders, the
// fourth refunded, two of each product left).
func TestPipeline(t *testing.T) {
	t.Parallel()
	e := flowstonetest.NewEngine(t)
	defer e.Close()
	res, err := e.Run(t.Context(), shop.Pipeline(), "daily_report", flowstone.Partition("2025-01-04"))
	if err != nil {
		t.Fatal(err)
	}
	var got shop.Report
	if err := res.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if want := report20250104; got != want {
		t.Fatalf("daily_report of 2025-01-04 = %+v, want %+v", got, want)
	}
}

// report20250104 is the report of 2025-01-04: orders of 104, 204, 304, 404
// (refunded), 504, 604 and 704 cents, of coffee, cocoa, tea, coffee, cocoa,
// tea and coffee.
var report20250104 = shop.Report{Day: "2025-01-04", Orders: 7, Refunds: 1, RevenueCents: 2424, TopProduct: "cocoa"}

// A partition that is not a day is refused before anything runs.
func TestPartitionMustBeADay(t *testing.T) {
	t.Parallel()
	_, err := flowstonetest.RunAsset(t, shop.Pipeline(), "orders", nil, flowstonetest.Partition("yesterday"))
	if !errors.Is(err, flowstone.ErrBadRequest) {
		t.Fatalf("orders of partition \"yesterday\": %v, want a bad_request error", err)
	}
}
