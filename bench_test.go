package flowstone_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/flowstone-go/flowstone"
)

// BenchmarkEngineOverhead measures what the embedded engine costs per
// materialized asset when the asset itself costs nothing: no-op functions,
// memory kv and object store, so the figures are planning, single-flight,
// records, codec and store round trips. Every iteration really executes
// every asset (a counter checks it); the reset between iterations is not
// timed. See BENCHMARKS.md.
func BenchmarkEngineOverhead(b *testing.B) {
	b.Run("one-asset", func(b *testing.B) {
		var execs atomic.Int64
		p := flowstone.MustPipeline("bench_one", flowstone.Asset("only", counted(&execs)))
		e := newEngine(b)
		ctx := ctxT(b)
		benchAssets(b, 1, &execs, func() {
			if _, err := e.Run(ctx, p, "only", flowstone.Force()); err != nil {
				b.Fatal(err)
			}
		}, nil)
	})

	b.Run("chain-1000", func(b *testing.B) {
		const n = 1000
		var execs atomic.Int64
		defs := make([]flowstone.AssetDef, n)
		for i := range defs {
			var opts []flowstone.AssetOption
			if i > 0 {
				opts = append(opts, flowstone.DependsOn(assetName(i-1)))
			}
			defs[i] = flowstone.Asset(assetName(i), counted(&execs), opts...)
		}
		p := flowstone.MustPipeline("bench_chain", defs...)
		e := newEngine(b)
		ctx := ctxT(b)
		benchAssets(b, n, &execs, func() {
			if _, err := e.Run(ctx, p, assetName(n-1)); err != nil {
				b.Fatal(err)
			}
		}, func() {
			if c, err := e.Invalidate(ctx, p, assetName(0), flowstone.Cascade()); err != nil || c != n {
				b.Fatalf("invalidate: %d, %v", c, err)
			}
		})
	})

	b.Run("fan-in-1000", func(b *testing.B) {
		const n = 1000
		var execs atomic.Int64
		defs := make([]flowstone.AssetDef, 0, n+1)
		sources := make([]string, n)
		for i := range sources {
			sources[i] = assetName(i)
			defs = append(defs, flowstone.Asset(sources[i], counted(&execs)))
		}
		defs = append(defs, flowstone.Asset("sink", counted(&execs), flowstone.DependsOn(sources...)))
		p := flowstone.MustPipeline("bench_fan_in", defs...)
		e := newEngine(b)
		ctx := ctxT(b)
		benchAssets(b, n+1, &execs, func() {
			if _, err := e.Run(ctx, p, "sink"); err != nil {
				b.Fatal(err)
			}
		}, func() {
			deleted := 0
			for _, s := range sources {
				c, err := e.Invalidate(ctx, p, s, flowstone.Cascade())
				if err != nil {
					b.Fatal(err)
				}
				deleted += c
			}
			if deleted != n+1 {
				b.Fatalf("invalidated %d, want %d", deleted, n+1)
			}
		})
	})
}

func assetName(i int) string { return fmt.Sprintf("a%04d", i) }

// counted is a no-op asset that counts its executions.
func counted(execs *atomic.Int64) flowstone.AssetFunc {
	return func(*flowstone.Context) (any, error) {
		execs.Add(1)
		return nil, nil
	}
}

// benchAssets times run, which materializes assets assets, and reports
// ns/asset and allocs/asset. reset (untimed, allocations not counted) makes
// the next run execute everything again; nil when run forces execution
// itself.
func benchAssets(b *testing.B, assets int, execs *atomic.Int64, run, reset func()) {
	b.ReportAllocs()
	var ms runtime.MemStats
	var mallocs uint64
	runtime.ReadMemStats(&ms)
	before := ms.Mallocs
	iterations := 0
	for b.Loop() {
		if reset != nil && iterations > 0 {
			b.StopTimer()
			reset()
			runtime.ReadMemStats(&ms)
			before = ms.Mallocs
			b.StartTimer()
		}
		run()
		iterations++
		if reset != nil {
			b.StopTimer()
			runtime.ReadMemStats(&ms)
			mallocs += ms.Mallocs - before
			b.StartTimer()
		}
	}
	if reset == nil {
		runtime.ReadMemStats(&ms)
		mallocs = ms.Mallocs - before
	}
	total := int64(iterations) * int64(assets)
	if got := execs.Load(); got != total {
		b.Fatalf("%d executions in %d iterations, want %d: some assets were not executed", got, iterations, total)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/asset")
	b.ReportMetric(float64(mallocs)/float64(total), "allocs/asset")
}
