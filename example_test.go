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

// A join reads its branches' outcomes: in Partial mode an optional
// branch that failed is an error, not the join's failure.
func ExampleJoin() {
	ctx := context.Background()
	e := flowstone.MustEngine(flowstone.EngineConfig{})
	defer e.Close()
	p := flowstone.MustPipeline("example_join",
		flowstone.Asset("eu_sales", func(*flowstone.Context) (any, error) { return 42, nil }),
		flowstone.Asset("us_sales", func(*flowstone.Context) (any, error) { return nil, errors.New("the US feed is down") }),
		flowstone.Asset("total", func(c *flowstone.Context) (any, error) {
			total := 0
			for _, b := range []string{"eu", "us"} {
				r := c.Branches()[b]
				var n int
				if err := r.Decode(&n); err != nil {
					fmt.Printf("%s: %s\n", b, r.Err.Type)
					continue
				}
				total += n
			}
			return total, nil
		}, flowstone.Join(flowstone.Branches{"eu": "eu_sales", "us": "us_sales"},
			flowstone.JoinConfig{Mode: flowstone.Partial, Optional: []string{"us"}, Timeout: time.Minute})),
	)
	res, err := e.Run(ctx, p, "total")
	if err != nil {
		fmt.Println(err)
		return
	}
	var total int
	_ = res.Decode(&total)
	fmt.Println("total =", total)
	// Output:
	// us: execution_failed
	// total = 42
}

// A router picks one branch; the others are skipped, and a dependent
// that uses them optionally sees them absent.
func ExampleRoute() {
	ctx := context.Background()
	e := flowstone.MustEngine(flowstone.EngineConfig{})
	defer e.Close()
	quote := func(price int) flowstone.AssetFunc {
		return func(*flowstone.Context) (any, error) { return price, nil }
	}
	p := flowstone.MustPipeline("example_route",
		flowstone.Asset("quantity", func(*flowstone.Context) (any, error) { return 500, nil }),
		flowstone.Asset("route", nil, flowstone.DependsOn("quantity"), flowstone.Route(
			flowstone.When("bulk", func(c *flowstone.Context) (bool, error) {
				q, err := flowstone.Dep[int](c, "quantity")
				return q >= 100, err
			}),
			flowstone.Otherwise("parcel"),
		)),
		flowstone.Asset("bulk", quote(90), flowstone.DependsOn("route")),
		flowstone.Asset("parcel", quote(12), flowstone.DependsOn("route")),
		flowstone.Asset("shipping", func(c *flowstone.Context) (any, error) {
			for _, b := range []string{"bulk", "parcel"} {
				if c.HasDep(b) {
					return flowstone.Dep[int](c, b)
				}
			}
			return nil, errors.New("no branch ran")
		}, flowstone.OptionalDeps("bulk", "parcel")),
	)
	res, err := e.Run(ctx, p, "shipping")
	if err != nil {
		fmt.Println(err)
		return
	}
	var price int
	_ = res.Decode(&price)
	st, _ := e.Status(ctx, p, "parcel")
	fmt.Println("shipping =", price)
	fmt.Println("parcel:", st.State, "-", st.Skip)
	// Output:
	// shipping = 90
	// parcel: skipped - router "route" chose "bulk"
}
