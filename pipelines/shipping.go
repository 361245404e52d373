package pipelines

import (
	"context"
	"errors"
	"hash/fnv"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
)

// Parcel is the shipping pipeline's order: its partition key is the
// order id.
type Parcel struct {
	ID       string `json:"id"`
	Quantity int    `json:"quantity"`
	Rush     bool   `json:"rush"`
}

// ParcelOf is the order of an id: an id starting "big" is a bulk order of
// 500 units, one starting "rush" a rush order of 2 units, any other a
// regular order of 3 units.
func ParcelOf(id string) Parcel {
	switch {
	case strings.HasPrefix(id, "big"):
		return Parcel{ID: id, Quantity: 500}
	case strings.HasPrefix(id, "rush"):
		return Parcel{ID: id, Quantity: 2, Rush: true}
	}
	return Parcel{ID: id, Quantity: 3}
}

// Rate is a shipping method's price for an order.
type Rate struct {
	Method string  `json:"method"`
	Cost   float64 `json:"cost"`
}

// Shipment is how an order ships: the method the router chose, and the
// cheapest carrier that answered.
type Shipment struct {
	Order   string  `json:"order"`
	Method  string  `json:"method"`
	Cost    float64 `json:"cost"`
	Carrier string  `json:"carrier"`
}

// Shipping is the pipeline of conditional routing and parallel branches.
// Every asset takes any partition key, an order id (see ParcelOf):
//
//   - order reads the order;
//   - route, a router, sends it to bulk (500 units or more), express (a
//     rush order) or standard, each a Rate; the two branches it does not
//     choose are skipped;
//   - dhl and ups quote their rates concurrently, and carrier joins them
//     (partially: ups may fail, and both must answer within 10 seconds),
//     keeping the cheaper;
//   - shipment reads whichever of bulk, express and standard ran (its
//     optional dependencies) and the carrier.
//
// o.SourceLatency is added to each of bulk, express and standard, to make
// a route that fault tests can interrupt.
func Shipping(o Options) *flowstone.Pipeline {
	anyKey := flowstone.PartitionedBy(flowstone.AnyKey)
	method := func(name string, perUnit, base float64) flowstone.AssetDef {
		return flowstone.Asset(name, func(c *flowstone.Context) (any, error) {
			if err := sleep(c.Context(), o.SourceLatency); err != nil {
				return nil, err
			}
			ord, err := flowstone.Dep[Parcel](c, "order")
			if err != nil {
				return nil, err
			}
			return Rate{Method: name, Cost: base + perUnit*float64(ord.Quantity)}, nil
		}, flowstone.DependsOn("route", "order"), anyKey, flowstone.Description("The "+name+" shipping quote"))
	}
	rate := func(carrier string) flowstone.AssetDef {
		return flowstone.Asset(carrier, func(c *flowstone.Context) (any, error) {
			h := fnv.New32a()
			h.Write([]byte(carrier + c.Partition()))
			return 4 + float64(h.Sum32()%500)/100, nil
		}, anyKey, flowstone.Description("The "+strings.ToUpper(carrier)+" rate for the order"))
	}
	return flowstone.MustPipeline("shipping",
		flowstone.Asset("order", func(c *flowstone.Context) (any, error) {
			return ParcelOf(c.Partition()), nil
		}, anyKey, flowstone.Description("The order; its partition key is its id")),
		flowstone.Asset("route", nil, flowstone.DependsOn("order"), anyKey, flowstone.Description("How the order ships"),
			flowstone.Route(
				flowstone.When("bulk", func(c *flowstone.Context) (bool, error) {
					ord, err := flowstone.Dep[Parcel](c, "order")
					return ord.Quantity >= 500, err
				}),
				flowstone.When("express", func(c *flowstone.Context) (bool, error) {
					ord, err := flowstone.Dep[Parcel](c, "order")
					return ord.Rush, err
				}),
				flowstone.Otherwise("standard"),
			)),
		method("bulk", 0.2, 40), method("express", 3, 15), method("standard", 1, 5),
		rate("dhl"), rate("ups"),
		flowstone.Asset("carrier", func(c *flowstone.Context) (any, error) {
			best, cost := "", 0.0
			for name, b := range c.Branches() {
				var r float64
				if !b.OK() || b.Decode(&r) != nil {
					continue
				}
				if best == "" || r < cost || r == cost && name < best {
					best, cost = name, r
				}
			}
			if best == "" {
				return nil, errors.New("no carrier quoted")
			}
			return best, nil
		}, anyKey, flowstone.Description("The cheaper carrier that answered"),
			flowstone.Join(flowstone.Branches{"dhl": "dhl", "ups": "ups"},
				flowstone.JoinConfig{Mode: flowstone.Partial, Optional: []string{"ups"}, Timeout: 10 * time.Second})),
		flowstone.Asset("shipment", func(c *flowstone.Context) (any, error) {
			ord, err := flowstone.Dep[Parcel](c, "order")
			if err != nil {
				return nil, err
			}
			carrier, err := flowstone.Dep[string](c, "carrier")
			if err != nil {
				return nil, err
			}
			for _, m := range []string{"bulk", "express", "standard"} {
				if c.HasDep(m) {
					q, err := flowstone.Dep[Rate](c, m)
					if err != nil {
						return nil, err
					}
					return Shipment{Order: ord.ID, Method: q.Method, Cost: q.Cost, Carrier: carrier}, nil
				}
			}
			return nil, errors.New("no shipping method ran")
		}, flowstone.DependsOn("order", "carrier"), flowstone.OptionalDeps("bulk", "express", "standard"), anyKey,
			flowstone.Description("How the order ships, and for how much")),
	)
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
