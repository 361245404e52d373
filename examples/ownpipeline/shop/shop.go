// Package shop is an example of your own pipeline, written as a project in
// a module of its own would write it: it imports only FlowStone's public
// packages. Its worker is ../cmd/shop-worker; its tests use flowstonetest.
//
// The pipeline "shop" has two assets, both partitioned by day:
//
//   - orders: the day's orders. A real project would read them from its
//     database or an API; here they are made up from the date, the same
//     every time.
//   - daily_report: the day's report (orders, refunds, revenue in cents,
//     best-selling product), from orders.
package shop

import (
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone"
)

// Name is the pipeline's name on the fleet: fsctl run shop daily_report.
const Name = "shop"

// Order is one sale.
type Order struct {
	ID       string `json:"id"`
	Product  string `json:"product"`
	Cents    int64  `json:"cents"`
	Refunded bool   `json:"refunded"`
}

// Report is a day's summary of its orders.
type Report struct {
	Day          string `json:"day"`
	Orders       int    `json:"orders"`
	Refunds      int    `json:"refunds"`
	RevenueCents int64  `json:"revenue_cents"` // of the orders not refunded
	TopProduct   string `json:"top_product"`   // most orders not refunded; of a tie, the first by name
}

// Pipeline returns the shop pipeline. Give every worker hosting it the same
// build: its tasks go to any of them.
func Pipeline() *flowstone.Pipeline {
	return flowstone.MustPipeline(Name,
		flowstone.Asset("orders", func(c *flowstone.Context) (any, error) {
			return OrdersOn(c.Partition())
		}, flowstone.PartitionedBy(flowstone.Daily), flowstone.Retry(3, time.Second),
			flowstone.Description("The day's orders")),
		flowstone.Asset("daily_report", func(c *flowstone.Context) (any, error) {
			orders, err := flowstone.Dep[[]Order](c, "orders")
			if err != nil {
				return nil, err
			}
			c.Logger().Info().Int("orders", len(orders)).Msg("summarizing")
			return Summarize(c.Partition(), orders), nil
		}, flowstone.DependsOn("orders"), flowstone.PartitionedBy(flowstone.Daily),
			flowstone.Description("The day's orders, refunds, revenue and best seller")),
	)
}

var products = []string{"tea", "coffee", "cocoa"}

// OrdersOn returns the orders of day ("2025-01-15"): 3 to 7 of them, every
// fourth refunded, made up from the date so that a day always has the same
// orders.
func OrdersOn(day string) ([]Order, error) {
	d, err := time.Parse(flowstone.DateLayout, day)
	if err != nil {
		return nil, fmt.Errorf("orders: partition %q is not a day: %w", day, err)
	}
	n := 3 + d.Day()%5
	orders := make([]Order, n)
	for i := range orders {
		orders[i] = Order{
			ID:       fmt.Sprintf("%s-%d", day, i+1),
			Product:  products[(d.Day()+i)%len(products)],
			Cents:    int64(100*(i+1) + d.Day()),
			Refunded: i%4 == 3,
		}
	}
	return orders, nil
}

// Summarize reports on the orders of day.
func Summarize(day string, orders []Order) Report {
	r := Report{Day: day, Orders: len(orders)}
	sold := map[string]int{}
	for _, o := range orders {
		if o.Refunded {
			r.Refunds++
			continue
		}
		r.RevenueCents += o.Cents
		sold[o.Product]++
	}
	for p, n := range sold {
		if n > sold[r.TopProduct] || n == sold[r.TopProduct] && p < r.TopProduct {
			r.TopProduct = p
		}
	}
	return r
}
