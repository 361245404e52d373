package flowstone_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// newEngine returns an isolated embedded engine, stopped when the test
// ends.
func newEngine(t testing.TB) *flowstone.Engine {
	t.Helper()
	e, err := flowstone.NewEngine(flowstone.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// examplePipeline is the proposal's example: numbers -> doubled -> sum = 30,
// unpartitioned.
func examplePipeline(t testing.TB, counts map[string]*int) *flowstone.Pipeline {
	t.Helper()
	return exampleOf(counts)
}

// keyedPipeline is examplePipeline with numbers partitioned by AnyKey, so
// all three take any partition key.
func keyedPipeline(t testing.TB, counts map[string]*int) *flowstone.Pipeline {
	t.Helper()
	return exampleOf(counts, flowstone.PartitionedBy(flowstone.AnyKey))
}

func exampleOf(counts map[string]*int, numbersOpts ...flowstone.AssetOption) *flowstone.Pipeline {
	inc := func(name string) {
		if counts != nil && counts[name] != nil {
			*counts[name]++
		}
	}
	return flowstone.MustPipeline("example",
		flowstone.Asset("numbers", func(c *flowstone.Context) (any, error) {
			inc("numbers")
			return []int{1, 2, 3, 4, 5}, nil
		}, numbersOpts...),
		flowstone.Asset("doubled", func(c *flowstone.Context) (any, error) {
			inc("doubled")
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
			inc("sum")
			nums, err := flowstone.Dep[[]int](c, "doubled")
			if err != nil {
				return nil, err
			}
			s := 0
			for _, n := range nums {
				s += n
			}
			return s, nil
		}, flowstone.DependsOn("doubled")),
	)
}

// ctxT returns a context that ends with the test (or after a minute).
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// wantType fails unless err is a *flowstone.Error of type want.
func wantType(t testing.TB, err error, want flowstone.ErrorType) *flowstone.Error {
	t.Helper()
	var fe *flowstone.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v (%T), want a *flowstone.Error of type %s", err, err, want)
	}
	if fe.Type != want {
		t.Fatalf("error type = %s (%v), want %s", fe.Type, fe, want)
	}
	if !errors.Is(err, &flowstone.Error{Type: want}) {
		t.Fatalf("errors.Is(err, sentinel %s) = false", want)
	}
	return fe
}

func decodeInt(t testing.TB, r *flowstone.Result) int {
	t.Helper()
	var v int
	if err := r.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// waitFor waits on ch or fails the test after a deadline.
func waitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func jsonMarshal(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
