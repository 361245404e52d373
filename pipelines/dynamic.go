package pipelines

import (
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/flowstone-go/flowstone"
)

// CatalogSize is how many products the dynamic pipeline's catalog lists.
const CatalogSize = 2000

// Quote is one product's price, a scatter item's value in the dynamic
// pipeline.
type Quote struct {
	SKU   string  `json:"sku"`
	Price float64 `json:"price"`
}

// PriceReport sums the dynamic pipeline's quotes.
type PriceReport struct {
	Products int     `json:"products"`
	Total    float64 `json:"total"`
}

// Dynamic is the pipeline of dynamic assets: catalog lists CatalogSize
// products (SKUs), prices fans out over them (a scatter: one item per
// product, 64 at once across the fleet, each retried twice, up to 1% may
// fail), and report sums the quotes. Every asset takes any partition key,
// so that runs keep apart by partition. o.SourceLatency is added to every
// quote, to make a scatter that fault tests can interrupt.
func Dynamic(o Options) *flowstone.Pipeline {
	return flowstone.MustPipeline("dynamic",
		flowstone.Asset("catalog", func(*flowstone.Context) (any, error) {
			skus := make([]string, CatalogSize)
			for i := range skus {
				skus[i] = fmt.Sprintf("sku-%05d", i)
			}
			return skus, nil
		}, flowstone.PartitionedBy(flowstone.AnyKey), flowstone.Description("The products on sale")),
		flowstone.Asset("prices", func(c *flowstone.Context) (any, error) {
			if o.SourceLatency > 0 {
				select {
				case <-time.After(o.SourceLatency):
				case <-c.Context().Done():
					return nil, c.Context().Err()
				}
			}
			return Quote{SKU: c.ScatterItem(), Price: PriceOf(c.ScatterItem())}, nil
		}, flowstone.DependsOn("catalog"), flowstone.PartitionedBy(flowstone.AnyKey),
			flowstone.Description("Each product's price, one scatter item per product"),
			flowstone.Scatter(func(c *flowstone.Context) ([]string, error) {
				return flowstone.Dep[[]string](c, "catalog")
			}, flowstone.ScatterConfig{Parallel: 64, ItemRetries: 2, MaxFailureRate: 0.01})),
		flowstone.Asset("report", func(c *flowstone.Context) (any, error) {
			quotes, err := flowstone.Dep[map[string]Quote](c, "prices")
			if err != nil {
				return nil, err
			}
			r := PriceReport{Products: len(quotes)}
			for _, q := range quotes {
				r.Total += q.Price
			}
			r.Total = math.Round(r.Total*100) / 100 // cents, without float noise
			return r, nil
		}, flowstone.DependsOn("prices"), flowstone.PartitionedBy(flowstone.AnyKey), flowstone.Description("The catalog's total price")),
	)
}

// PriceOf is the dynamic pipeline's price of a product: a deterministic
// 1.00 to 100.99.
func PriceOf(sku string) float64 {
	h := fnv.New32a()
	h.Write([]byte(sku))
	return 1 + float64(h.Sum32()%10000)/100
}
