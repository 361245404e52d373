// Package pipelines holds the realistic pipelines FlowStone ships: the ones
// `fsctl demo` and `fsctl dev` run, that cmd/worker hosts, and that the fleet
// tests and benchmarks use.
//
//   - example: numbers → doubled → sum (= 30), the API proposal's example.
//   - daily_sales: orders → cleaned → revenue, partitioned by day, over
//     deterministic generated orders, with optional simulated source latency.
//   - bench: noop, a single no-op asset for throughput measurements, that
//     takes any partition key.
//   - release: build → publish (an approval gate) → announce, and build →
//     smoke (a signal gate), by version.
package pipelines

import (
	"time"

	"github.com/flowstone-go/flowstone"
)

// Options tune the bundled pipelines.
type Options struct {
	// SourceLatency is added to every execution of daily_sales.orders, to
	// simulate a slow source for load and fault tests. Defaults to 0.
	SourceLatency time.Duration
}

// All returns every bundled pipeline.
func All(o Options) []*flowstone.Pipeline {
	return []*flowstone.Pipeline{Example(), DailySales(o), Bench(), Release()}
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

// Bench is one no-op asset, "noop", for measuring the engine's and the
// fleet's own overhead. It takes any partition key (flowstone.AnyKey), so
// that a benchmark can run it as often as it likes.
func Bench() *flowstone.Pipeline {
	return flowstone.MustPipeline("bench",
		flowstone.Asset("noop", func(*flowstone.Context) (any, error) { return nil, nil },
			flowstone.PartitionedBy(flowstone.AnyKey), flowstone.Description("Does nothing: measures overhead")),
	)
}
