// Package flowstonetest helps test your own FlowStone pipelines: run one
// asset with the values of its dependencies supplied by the test, without
// running anything upstream, on an engine of its own so tests can run in
// parallel.
//
//	func TestSum(t *testing.T) {
//		t.Parallel()
//		res, err := flowstonetest.RunAsset(t, sales.Pipeline, "sum",
//			map[string]any{"doubled": []int{2, 4, 6}})
//		if err != nil {
//			t.Fatal(err)
//		}
//		var sum int
//		if err := res.Decode(&sum); err != nil || sum != 12 {
//			t.Fatalf("sum = %d, %v", sum, err)
//		}
//	}
//
// It is the Go counterpart of the Elixir FlowStone's run_asset with mocked
// dependencies.
package flowstonetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
)

// Option configures RunAsset.
type Option interface{ apply(*config) }

type config struct {
	partition string
	engine    *flowstone.Engine
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// Partition runs the asset (and supplies its dependencies' values) for the
// partition key. Defaults to flowstone.DefaultPartition.
func Partition(key string) Option {
	return optionFunc(func(c *config) { c.partition = key })
}

// Engine runs on e instead of a new isolated engine, for tests that run
// several assets on the same results or subscribe to its events.
func Engine(e *flowstone.Engine) Option {
	return optionFunc(func(c *config) { c.engine = e })
}

// NewEngine returns an isolated embedded engine (memory metadata and
// results) that nothing else shares: tests using their own engines never see
// each other's results and may run in parallel.
func NewEngine(t testing.TB) *flowstone.Engine {
	t.Helper()
	e, err := flowstone.NewEngine(flowstone.EngineConfig{})
	if err != nil {
		t.Fatalf("flowstonetest: %v", err)
	}
	return e
}

// RunAsset executes asset of p once, with the values in deps standing in
// for its dependencies, and returns what Run returns: the result (read it
// with Result.Decode) or the asset's error. Nothing upstream runs: each
// value is stored through the engine's codec as that dependency's result,
// exactly as Dep will read it, and the asset runs with
// flowstone.WithDeps(false), forced, so it executes even on a reused engine
// where it was materialized before.
//
// A required dependency missing from deps makes the run fail with a
// DependencyFailed error naming it; an optional one missing reads as
// absent (Context.HasDep is false). A key of deps that is not a dependency
// of asset fails the test, as does a value that cannot be stored.
//
// An asset behind an approval gate (flowstone.Approval) is approved as
// soon as its gate waits: RunAsset tests the asset's function, not the
// gate. One behind a signal gate runs only on an engine with a signal
// secret (the Engine option), and waits for its signal.
//
// Without the Engine option each call gets a new isolated engine.
func RunAsset(t testing.TB, p *flowstone.Pipeline, asset string, deps map[string]any, opts ...Option) (*flowstone.Result, error) {
	t.Helper()
	cfg := config{partition: flowstone.DefaultPartition}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.engine == nil {
		// Its own engine: closed here, as nothing else can. The result
		// reads from the engine's stores, which outlive it.
		cfg.engine = NewEngine(t)
		defer cfg.engine.Close()
	}
	info, err := flowstone.AssetInfo(p, asset)
	if err != nil {
		return nil, err
	}
	inputs := append(slices.Clone(info.DependsOn), info.OptionalDeps...)
	names := make([]string, 0, len(deps))
	for name := range deps {
		names = append(names, name)
	}
	slices.Sort(names) // seed in a stable order so failures repeat
	ctx := t.Context()
	for _, name := range names {
		if !slices.Contains(inputs, name) {
			t.Fatalf("flowstonetest: %q is not a dependency of %q in pipeline %s; its dependencies are [%s]",
				name, asset, p.Name(), strings.Join(inputs, " "))
		}
		if err := cfg.engine.Seed(ctx, p, name, deps[name], flowstone.Partition(cfg.partition)); err != nil {
			t.Fatalf("flowstonetest: supply the value of %q: %v", name, err)
		}
	}
	if info.HasApproval {
		// Approved from the gate's own goroutine, as it opens: the
		// step waits only once the approval is in.
		e := cfg.engine
		defer e.Subscribe(func(ev flowstone.Event) {
			if ev.Kind == flowstone.EventGateWait && ev.Pipeline == p.Name() && ev.Asset == asset && ev.Partition == cfg.partition {
				if err := e.Approve(ctx, p, asset, flowstone.Partition(cfg.partition), flowstone.Reason("flowstonetest.RunAsset")); err != nil {
					t.Errorf("flowstonetest: approve %q: %v", asset, err)
				}
			}
		})()
	}
	return cfg.engine.Run(ctx, p, asset, flowstone.WithDeps(false), flowstone.Force(), flowstone.Partition(cfg.partition))
}
