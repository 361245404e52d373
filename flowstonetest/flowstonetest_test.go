package flowstonetest_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/flowstonetest"
)

// salesPipeline is numbers -> doubled -> sum, plus an optional bonus for
// sum; calls counts executions per asset.
func salesPipeline(calls map[string]*atomic.Int32) *flowstone.Pipeline {
	count := func(name string) {
		if c := calls[name]; c != nil {
			c.Add(1)
		}
	}
	return flowstone.MustPipeline("sales",
		flowstone.Asset("numbers", func(*flowstone.Context) (any, error) {
			count("numbers")
			return []int{1, 2, 3, 4, 5}, nil
		}),
		flowstone.Asset("bonus", func(*flowstone.Context) (any, error) {
			count("bonus")
			return 1000, nil
		}),
		flowstone.Asset("doubled", func(c *flowstone.Context) (any, error) {
			count("doubled")
			nums, err := flowstone.Dep[[]int](c, "numbers")
			if err != nil {
				return nil, err
			}
			out := make([]int, len(nums))
			for i, n := range nums {
				out[i] = 2 * n
			}
			return out, nil
		}, flowstone.DependsOn("numbers")),
		flowstone.Asset("sum", func(c *flowstone.Context) (any, error) {
			count("sum")
			nums, err := flowstone.Dep[[]int](c, "doubled")
			if err != nil {
				return nil, err
			}
			s := 0
			for _, n := range nums {
				s += n
			}
			if c.HasDep("bonus") {
				b, err := flowstone.Dep[int](c, "bonus")
				if err != nil {
					return nil, err
				}
				s += b
			}
			return s, nil
		}, flowstone.DependsOn("doubled"), flowstone.OptionalDeps("bonus")),
	)
}

func newCalls() map[string]*atomic.Int32 {
	return map[string]*atomic.Int32{"numbers": {}, "bonus": {}, "doubled": {}, "sum": {}}
}

func decode[T any](t *testing.T, res *flowstone.Result) T {
	t.Helper()
	var v T
	if err := res.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRunAssetUsesSuppliedDepsAndNeverRunsUpstream(t *testing.T) {
	calls := newCalls()
	p := salesPipeline(calls)
	res, err := flowstonetest.RunAsset(t, p, "sum", map[string]any{"doubled": []int{10, 20, 30}})
	if err != nil {
		t.Fatal(err)
	}
	if got := decode[int](t, res); got != 60 {
		t.Fatalf("sum = %d, want 60 (from the supplied doubled)", got)
	}
	if res.Cached || res.Asset != "sum" {
		t.Fatalf("result = %+v, want a fresh execution of sum", res)
	}
	for _, upstream := range []string{"numbers", "doubled", "bonus"} {
		if n := calls[upstream].Load(); n != 0 {
			t.Fatalf("upstream %s executed %d times", upstream, n)
		}
	}
	if calls["sum"].Load() != 1 {
		t.Fatalf("sum executed %d times, want 1", calls["sum"].Load())
	}

	// An optional dependency is used when supplied.
	res, err = flowstonetest.RunAsset(t, p, "sum", map[string]any{"doubled": []int{1}, "bonus": 5})
	if err != nil {
		t.Fatal(err)
	}
	if got := decode[int](t, res); got != 6 {
		t.Fatalf("sum with bonus = %d, want 6", got)
	}
	if calls["bonus"].Load() != 0 {
		t.Fatal("the optional dependency executed")
	}
}

func TestRunAssetMissingRequiredDep(t *testing.T) {
	calls := newCalls()
	p := salesPipeline(calls)
	_, err := flowstonetest.RunAsset(t, p, "doubled", nil)
	var fe *flowstone.Error
	if !errors.Is(err, flowstone.ErrDependencyFailed) || !errors.As(err, &fe) {
		t.Fatalf("err = %v, want dependency_failed", err)
	}
	if fe.Details["missing"] != "numbers" || !strings.Contains(fe.Message, `"numbers"`) {
		t.Fatalf("error %q / %v does not name the missing dependency", fe.Message, fe.Details)
	}
	if calls["numbers"].Load() != 0 || calls["doubled"].Load() != 0 {
		t.Fatal("something executed although a required dependency was missing")
	}
}

func TestRunAssetReturnsTheAssetsError(t *testing.T) {
	p := flowstone.MustPipeline("p",
		flowstone.Asset("input", func(*flowstone.Context) (any, error) { return "", nil }),
		flowstone.Asset("parse", func(c *flowstone.Context) (any, error) {
			s, err := flowstone.Dep[string](c, "input")
			if err != nil {
				return nil, err
			}
			if s == "" {
				return nil, errors.New("empty input")
			}
			return len(s), nil
		}, flowstone.DependsOn("input")),
	)
	_, err := flowstonetest.RunAsset(t, p, "parse", map[string]any{"input": ""})
	if !errors.Is(err, flowstone.ErrExecutionFailed) || !strings.Contains(err.Error(), "empty input") {
		t.Fatalf("err = %v, want the asset's execution_failed error", err)
	}
	res, err := flowstonetest.RunAsset(t, p, "parse", map[string]any{"input": "four"})
	if err != nil || decode[int](t, res) != 4 {
		t.Fatalf("parse(four) = %v", err)
	}
	_, err = flowstonetest.RunAsset(t, p, "ghost", nil)
	if !errors.Is(err, flowstone.ErrAssetNotFound) {
		t.Fatalf("unknown asset: err = %v", err)
	}
}

func TestRunAssetPartition(t *testing.T) {
	p := flowstone.MustPipeline("daily",
		flowstone.Asset("orders", func(*flowstone.Context) (any, error) { return nil, errors.New("not in tests") }, flowstone.PartitionedBy(flowstone.Daily)),
		flowstone.Asset("report", func(c *flowstone.Context) (any, error) {
			n, err := flowstone.Dep[int](c, "orders")
			if err != nil {
				return nil, err
			}
			return fmt.Sprintf("%s: %d orders", c.Partition(), n), nil
		}, flowstone.DependsOn("orders"), flowstone.PartitionedBy(flowstone.Daily)),
	)
	e := flowstonetest.NewEngine(t)
	res, err := flowstonetest.RunAsset(t, p, "report", map[string]any{"orders": 42},
		flowstonetest.Partition("2025-01-15"), flowstonetest.Engine(e))
	if err != nil {
		t.Fatal(err)
	}
	if got := decode[string](t, res); got != "2025-01-15: 42 orders" {
		t.Fatalf("report = %q", got)
	}
	// The supplied value and the result live in that partition only.
	ctx := t.Context()
	for _, asset := range []string{"orders", "report"} {
		if ok, _ := e.Exists(ctx, p, asset, flowstone.Partition("2025-01-15")); !ok {
			t.Fatalf("%s is not materialized for 2025-01-15", asset)
		}
		if ok, _ := e.Exists(ctx, p, asset, flowstone.Partition("2025-01-16")); ok {
			t.Fatalf("%s leaked into 2025-01-16", asset)
		}
	}
	// A key the asset's scheme rejects is an error, as with Run.
	_, err = flowstonetest.RunAsset(t, p, "report", nil, flowstonetest.Partition("us"))
	if !errors.Is(err, flowstone.ErrBadRequest) {
		t.Fatalf("bad partition: err = %v", err)
	}
}

func TestRunAssetOnASharedEngineRunsAgain(t *testing.T) {
	calls := newCalls()
	p := salesPipeline(calls)
	e := flowstonetest.NewEngine(t)
	for i, doubled := range [][]int{{1, 2}, {3, 4}} {
		res, err := flowstonetest.RunAsset(t, p, "sum", map[string]any{"doubled": doubled}, flowstonetest.Engine(e))
		if err != nil {
			t.Fatal(err)
		}
		want := doubled[0] + doubled[1]
		if got := decode[int](t, res); got != want {
			t.Fatalf("call %d: sum = %d, want %d", i, got, want)
		}
	}
	if calls["sum"].Load() != 2 {
		t.Fatalf("sum executed %d times on a shared engine, want 2", calls["sum"].Load())
	}
	// The engine holds the latest result, for assertions with Get.
	res, err := e.Get(t.Context(), p, "sum")
	if err != nil || decode[int](t, res) != 7 {
		t.Fatalf("Get after RunAsset: %v", err)
	}
}

func TestParallelTestsDoNotInterfere(t *testing.T) {
	p := salesPipeline(nil)
	for i := range 16 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			e := flowstonetest.NewEngine(t)
			want := 0
			doubled := make([]int, i+1)
			for j := range doubled {
				doubled[j] = i * 100
				want += i * 100
			}
			res, err := flowstonetest.RunAsset(t, p, "sum", map[string]any{"doubled": doubled}, flowstonetest.Engine(e))
			if err != nil {
				t.Fatal(err)
			}
			if got := decode[int](t, res); got != want {
				t.Fatalf("sum = %d, want %d: another test's values leaked in", got, want)
			}
			// Nothing else in this engine: the other tests' engines are theirs.
			for _, asset := range []string{"numbers", "bonus"} {
				if ok, _ := e.Exists(t.Context(), p, asset); ok {
					t.Fatalf("%s exists in an isolated engine", asset)
				}
			}
		})
	}
}

// fatalRecorder stands in for a testing.TB to observe RunAsset failing the
// test; Fatalf ends the goroutine as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestRunAssetRejectsValuesForNonDependencies(t *testing.T) {
	p := salesPipeline(nil)
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		flowstonetest.RunAsset(rec, p, "sum", map[string]any{"doubled": []int{1}, "numbers": []int{2}})
	}()
	<-done
	if !strings.Contains(rec.msg, `"numbers" is not a dependency of "sum"`) || !strings.Contains(rec.msg, "[doubled bonus]") {
		t.Fatalf("RunAsset failed the test with %q, want it to name the stray value and list the dependencies", rec.msg)
	}

	// A value the codec cannot store fails the test too.
	rec = &fatalRecorder{TB: t}
	done = make(chan struct{})
	go func() {
		defer close(done)
		flowstonetest.RunAsset(rec, p, "sum", map[string]any{"doubled": make(chan int)})
	}()
	<-done
	if !strings.Contains(rec.msg, `supply the value of "doubled"`) || !strings.Contains(rec.msg, "cannot be encoded") {
		t.Fatalf("RunAsset failed the test with %q", rec.msg)
	}
}

func TestRunAssetPassesAnApprovalGate(t *testing.T) {
	p := flowstone.MustPipeline("gated",
		flowstone.Asset("in", func(*flowstone.Context) (any, error) { panic("not run in tests") }),
		flowstone.Asset("out", func(c *flowstone.Context) (any, error) {
			n, err := flowstone.Dep[int](c, "in")
			return n * 3, err
		}, flowstone.DependsOn("in"), flowstone.Approval(flowstone.ApprovalConfig{Message: "ok?"})),
	)
	res, err := flowstonetest.RunAsset(t, p, "out", map[string]any{"in": 14})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := res.Decode(&n); err != nil || n != 42 {
		t.Fatalf("out = %d, %v", n, err)
	}
}
