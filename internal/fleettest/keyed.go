package fleettest

import "github.com/flowstone-go/flowstone"

// Keyed is the bundled example pipeline (numbers → doubled → sum = 30)
// named "keyed", with numbers partitioned by flowstone.AnyKey so that all
// three take any partition key: tests that share a fleet keep apart by
// partition with it (the bundled example is unpartitioned, so it has the
// one partition "default").
func Keyed() *flowstone.Pipeline {
	return flowstone.MustPipeline("keyed",
		flowstone.Asset("numbers", func(*flowstone.Context) (any, error) {
			return []int{1, 2, 3, 4, 5}, nil
		}, flowstone.PartitionedBy(flowstone.AnyKey), flowstone.Description("The numbers 1 to 5")),
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
