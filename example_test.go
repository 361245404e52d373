package flowstone_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone"
)

// The quick start: define three assets and ask for the last one. Its
// dependencies are materialized first, in process, with no configuration.
func Example() {
	ctx := context.Background()
	p := flowstone.MustPipeline("quickstart",
		flowstone.Asset("numbers", func(c *flowstone.Context) (any, error) { return []int{1, 2, 3, 4, 5}, nil }),
		flowstone.Asset("doubled", func(c *flowstone.Context) (any, error) {
			nums, err := flowstone.Dep[[]int](c, "numbers")
			for i := range nums {
				nums[i] *= 2
			}
			return nums, err
		}, flowstone.DependsOn("numbers")),
		flowstone.Asset("sum", func(c *flowstone.Context) (any, error) {
			nums, err := flowstone.Dep[[]int](c, "doubled")
			sum := 0
			for _, n := range nums {
				sum += n
			}
			return sum, err
		}, flowstone.DependsOn("doubled")),
	)

	res, err := flowstone.Run(ctx, p, "sum")
	if err != nil {
		fmt.Println(err)
		return
	}
	var sum int
	if err := res.Decode(&sum); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("sum =", sum)
	// Output: sum = 30
}

// Get reads a materialized result and never runs anything: a partition
// that was not materialized is a NotFound error.
func ExampleGet() {
	ctx := context.Background()
	p := flowstone.MustPipeline("example_get",
		flowstone.Asset("greeting", func(c *flowstone.Context) (any, error) {
			return "hello from " + c.Partition(), nil
		}, flowstone.PartitionedBy(flowstone.Static("eu", "us"))),
	)
	if _, err := flowstone.Run(ctx, p, "greeting", flowstone.Partition("eu")); err != nil {
		fmt.Println(err)
		return
	}

	res, err := flowstone.Get(ctx, p, "greeting", flowstone.Partition("eu"))
	if err != nil {
		fmt.Println(err)
		return
	}
	var s string
	if err := res.Decode(&s); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s)

	_, err = flowstone.Get(ctx, p, "greeting", flowstone.Partition("us"))
	fmt.Println("us:", errors.Is(err, flowstone.ErrNotFound))
	// Output:
	// hello from eu
	// us: true
}

// Backfill materializes an asset over many partitions, here three days.
func ExampleBackfill() {
	ctx := context.Background()
	p := flowstone.MustPipeline("example_backfill",
		flowstone.Asset("daily_orders", func(c *flowstone.Context) (any, error) {
			return "orders of " + c.Partition(), nil
		}, flowstone.PartitionedBy(flowstone.Daily)),
	)
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2025, 1, 3, 0, 0, 0, 0, time.UTC)

	stats, err := flowstone.Backfill(ctx, p, "daily_orders", flowstone.DateRange(from, to), flowstone.Parallel(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("succeeded=%d failed=%d skipped=%d\n", stats.Succeeded, stats.Failed, stats.Skipped)

	// Materialized partitions are skipped the second time.
	stats, _ = flowstone.Backfill(ctx, p, "daily_orders", flowstone.DateRange(from, to))
	fmt.Printf("succeeded=%d failed=%d skipped=%d\n", stats.Succeeded, stats.Failed, stats.Skipped)

	// Invalidate deletes them again, one partition at a time.
	deleted := 0
	for _, day := range flowstone.Dates(from, to) {
		n, _ := flowstone.Invalidate(ctx, p, "daily_orders", flowstone.Partition(day))
		deleted += n
	}
	fmt.Println("invalidated:", deleted)
	// Output:
	// succeeded=3 failed=0 skipped=0
	// succeeded=0 failed=0 skipped=3
	// invalidated: 3
}

// Graph draws the DAG; Format(Mermaid) and Format(DOT) give the other
// formats.
func ExampleGraph() {
	none := func(*flowstone.Context) (any, error) { return nil, nil }
	p := flowstone.MustPipeline("example_graph",
		flowstone.Asset("numbers", none),
		flowstone.Asset("doubled", none, flowstone.DependsOn("numbers")),
		flowstone.Asset("sum", none, flowstone.DependsOn("doubled")),
	)
	ascii, _ := flowstone.Graph(p)
	fmt.Print(ascii)
	mermaid, _ := flowstone.Graph(p, flowstone.Format(flowstone.Mermaid))
	fmt.Print(mermaid)
	// Output:
	// numbers
	// └── doubled
	//     └── sum
	// graph TD
	//   numbers --> doubled
	//   doubled --> sum
}

// The verbs are also methods of the pipeline. A second run finds the result
// materialized and executes nothing.
func ExamplePipeline_Run() {
	ctx := context.Background()
	executions := 0
	p := flowstone.MustPipeline("example_pipeline_run",
		flowstone.Asset("answer", func(*flowstone.Context) (any, error) {
			executions++
			return 42, nil
		}),
	)
	for range 2 {
		res, err := p.Run(ctx, "answer")
		if err != nil {
			fmt.Println(err)
			return
		}
		var v int
		if err := res.Decode(&v); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("answer=%d cached=%v\n", v, res.Cached)
	}
	fmt.Println("executions:", executions)

	// After Invalidate the next run computes it again.
	n, _ := p.Invalidate(ctx, "answer")
	fmt.Println("invalidated:", n)
	// Output:
	// answer=42 cached=false
	// answer=42 cached=true
	// executions: 1
	// invalidated: 1
}
