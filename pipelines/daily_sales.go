package pipelines

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/flowstone-go/flowstone"
)

// Order is one generated sale.
type Order struct {
	ID       string  `json:"id"`
	Region   string  `json:"region"`
	Product  string  `json:"product"`
	Quantity int     `json:"quantity"`
	Price    float64 `json:"price"`
	Status   string  `json:"status"` // "paid", "refunded" or "test"
}

// Revenue is a day's paid revenue, by region.
type Revenue struct {
	Day      string             `json:"day"`
	Orders   int                `json:"orders"`
	Total    float64            `json:"total"`
	ByRegion map[string]float64 `json:"by_region"`
}

var (
	regions  = []string{"us", "eu", "asia"}
	products = []string{"widget", "gadget", "gizmo", "doohickey"}
)

// GenerateOrders returns the orders of a day: the same day always gives
// the same orders (seeded by the date), 50 to 149 of them, with refunds
// and test orders for the cleaning step to drop.
func GenerateOrders(day string) []Order {
	h := fnv.New64a()
	h.Write([]byte(day))
	r := rand.New(rand.NewPCG(h.Sum64(), 0x5eed))
	n := 50 + r.IntN(100)
	out := make([]Order, n)
	for i := range out {
		status := "paid"
		switch x := r.IntN(20); {
		case x == 0:
			status = "refunded"
		case x == 1:
			status = "test"
		}
		out[i] = Order{
			ID:       fmt.Sprintf("%s-%04d", day, i),
			Region:   regions[r.IntN(len(regions))],
			Product:  products[r.IntN(len(products))],
			Quantity: 1 + r.IntN(5),
			Price:    float64(100+r.IntN(9900)) / 100,
			Status:   status,
		}
	}
	return out
}

// cents rounds money to the cent.
func cents(v float64) float64 { return math.Round(v*100) / 100 }

// DailySales is orders → cleaned → revenue, partitioned by day.
func DailySales(o Options) *flowstone.Pipeline {
	return flowstone.MustPipeline("daily_sales",
		flowstone.Asset("orders", func(c *flowstone.Context) (any, error) {
			if o.SourceLatency > 0 {
				t := time.NewTimer(o.SourceLatency)
				defer t.Stop()
				select {
				case <-t.C:
				case <-c.Context().Done():
					return nil, c.Context().Err()
				}
			}
			return GenerateOrders(c.Partition()), nil
		}, flowstone.PartitionedBy(flowstone.Daily), flowstone.Description("The day's raw orders from the shop")),
		flowstone.Asset("cleaned", func(c *flowstone.Context) (any, error) {
			orders, err := flowstone.Dep[[]Order](c, "orders")
			if err != nil {
				return nil, err
			}
			kept := orders[:0]
			for _, o := range orders {
				if o.Status == "paid" && o.Quantity > 0 {
					kept = append(kept, o)
				}
			}
			sort.Slice(kept, func(i, j int) bool { return kept[i].ID < kept[j].ID })
			return kept, nil
		}, flowstone.DependsOn("orders"), flowstone.PartitionedBy(flowstone.Daily), flowstone.Description("Paid orders only: refunds and test orders dropped")),
		flowstone.Asset("revenue", func(c *flowstone.Context) (any, error) {
			orders, err := flowstone.Dep[[]Order](c, "cleaned")
			if err != nil {
				return nil, err
			}
			if len(orders) == 0 {
				return nil, errors.New("no paid orders: refusing to report zero revenue")
			}
			rev := Revenue{Day: c.Partition(), Orders: len(orders), ByRegion: map[string]float64{}}
			for _, o := range orders {
				v := float64(o.Quantity) * o.Price
				rev.Total += v
				rev.ByRegion[o.Region] += v
			}
			rev.Total = cents(rev.Total)
			for r, v := range rev.ByRegion {
				rev.ByRegion[r] = cents(v)
			}
			return rev, nil
		}, flowstone.DependsOn("cleaned"), flowstone.PartitionedBy(flowstone.Daily), flowstone.Description("The day's paid revenue, by region")),
	)
}
