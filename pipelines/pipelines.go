// Package pipelines holds the realistic pipelines FlowStone ships: the ones
// `fsctl demo` and `fsctl dev` run, that cmd/worker hosts, and that the fleet
// tests and benchmarks use.
//
//   - example: numbers → doubled → sum (= 30), the API proposal's example.
//   - daily_sales: orders → cleaned → revenue, partitioned by day, over
//     deterministic generated orders, with optional simulated source latency.
//   - dynamic: catalog → prices → report, prices a scatter over the
//     catalog's products.
//   - bench: noop, a single no-op asset for throughput measurements, that
//     takes any partition key, and fan, a scatter of no-op items whose
//     partition key is their count.
//   - release: build → publish (an approval gate) → announce, and build →
//     smoke (a signal gate), by version.
package pipelines

import (
	"fmt"
	"strconv"
	"time"

	"github.com/flowstone-go/flowstone"
)

// Options tune the bundled pipelines.
type Options struct {
	// SourceLatency is added to every execution of daily_sales.orders and
	// of each item of dynamic.prices, to simulate a slow source for load
	// and fault tests. Defaults to 0.
	SourceLatency time.Duration
}

// All returns every bundled pipeline.
func All(o Options) []*flowstone.Pipeline {
	return []*flowstone.Pipeline{Example(), DailySales(o), Dynamic(o), Bench(), Release()}
}

// Example is the proposal's example: numbers → doubled → sum, sum = 30.
func Example() *flowstone.Pipeline { return example("example") }

// KeyedExample is Example named "keyed", with numbers partitioned by
// flowstone.AnyKey so that all three assets take any partition key: runs
// that share a fleet keep apart by partition with it (Example is
// unpartitioned: its one partition is "default"). It is not in All.
func KeyedExample() *flowstone.Pipeline {
	return example("keyed", flowstone.PartitionedBy(flowstone.AnyKey))
}

// example builds the example pipeline named name, with numbers' options
// added.
func example(name string, numbers ...flowstone.AssetOption) *flowstone.Pipeline {
	return flowstone.MustPipeline(name,
		flowstone.Asset("numbers", func(*flowstone.Context) (any, error) {
			return []int{1, 2, 3, 4, 5}, nil
		}, append([]flowstone.AssetOption{flowstone.Description("The numbers 1 to 5")}, numbers...)...),
		flowstone.Asset("doubled", func(c *flowstone.Context) (any, error) {
			nums, err := flowstone.Dep[[]int](c, "numbers")
			if err != nil {
				return nil, err
			}
			out := make([]int, len(nums))
			for i, n := range nums {
				out[i] = 2 * n
			}
			return out, nil
		}, flowstone.DependsOn("numbers"), flowstone.Description("Doubles each number")),
		flowstone.Asset("sum", func(c *flowstone.Context) (any, error) {
			nums, err := flowstone.Dep[[]int](c, "doubled")
			if err != nil {
				return nil, err
			}
			s := 0
			for _, n := range nums {
				s += n
			}
			return s, nil
		}, flowstone.DependsOn("doubled"), flowstone.Description("Adds the doubled numbers")),
	)
}

// Bench is for measuring the engine's and the fleet's own overhead: noop,
// one no-op asset, and fan, a scatter of no-op items. Both take any
// partition key (flowstone.AnyKey), so that a benchmark can run them as
// often as it likes; fan's key is its item count, 1 to
// flowstone.MaxScatterItems ("100000": items "0" to "99999"), going out
// in batches of 256 with up to 4,096 items out at once.
func Bench() *flowstone.Pipeline {
	return flowstone.MustPipeline("bench",
		flowstone.Asset("noop", func(*flowstone.Context) (any, error) { return nil, nil },
			flowstone.PartitionedBy(flowstone.AnyKey), flowstone.Description("Does nothing: measures overhead")),
		flowstone.Asset("fan", func(*flowstone.Context) (any, error) { return nil, nil },
			flowstone.PartitionedBy(flowstone.AnyKey), flowstone.Description("A scatter of no-op items, as many as the partition key says"),
			flowstone.Scatter(func(c *flowstone.Context) ([]string, error) {
				n, err := strconv.Atoi(c.Partition())
				if err != nil || n < 1 || n > flowstone.MaxScatterItems {
					return nil, fmt.Errorf("bench.fan's partition key is its item count, 1 to %d; got %q", flowstone.MaxScatterItems, c.Partition())
				}
				items := make([]string, n)
				for i := range items {
					items[i] = strconv.Itoa(i)
				}
				return items, nil
			}, flowstone.ScatterConfig{Parallel: 4096, BatchSize: 256})),
	)
}
