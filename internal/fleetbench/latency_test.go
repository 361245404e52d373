package fleetbench

import (
	"context"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// BenchmarkRunLatency measures client.Run, what `fsctl run` does once
// connected, against a coordinator and two workers (file object store),
// one call at a time; it reports the p50 and p99 of the b.N calls.
//
//   - cached: bench/noop already materialized. The coordinator answers
//     from the record, and the client reads the (inline) value with get.
//   - one-asset: bench/noop with Force(), so every call is a run on a
//     worker: the run is recorded, its task dispatched and executed, the
//     client watches the run record until it ends, then reads the value.
func BenchmarkRunLatency(b *testing.B) {
	b.Run("cached", func(b *testing.B) {
		f := startFleet(b, fleetConfig{store: storeFile, workers: 2})
		ctx := context.Background()
		first, err := f.client.Run(ctx, "bench", "noop")
		if err != nil {
			b.Fatal(err)
		}
		durs := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		msgs, cpu := startMsgs(b, f.srv), startCPU()
		for range b.N {
			start := time.Now()
			res, err := f.client.Run(ctx, "bench", "noop")
			durs = append(durs, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
			if !res.Cached || res.RunID != first.RunID {
				b.Fatalf("run %s (cached %v), want the cached result of run %s", res.RunID, res.Cached, first.RunID)
			}
		}
		b.StopTimer()
		cpu.report(b, b.N, "cpu-µs/run")
		msgs.report(b, b.N, "run")
		f.awaitSucceeded(b, 1)
		reportPercentiles(b, durs)
	})
	b.Run("one-asset", func(b *testing.B) {
		f := startFleet(b, fleetConfig{store: storeFile, workers: 2})
		ctx := context.Background()
		seen := make(map[string]bool, b.N)
		durs := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		msgs, cpu := startMsgs(b, f.srv), startCPU()
		for range b.N {
			start := time.Now()
			res, err := f.client.Run(ctx, "bench", "noop", flowstone.Force())
			durs = append(durs, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
			if res.Cached || seen[res.RunID] {
				b.Fatalf("run %s (cached %v): want a fresh run each call", res.RunID, res.Cached)
			}
			if res.Record == nil || res.Record.RunID != res.RunID || res.Record.State != flowstone.StateCompleted {
				b.Fatalf("run %s left record %+v", res.RunID, res.Record)
			}
			seen[res.RunID] = true
		}
		b.StopTimer()
		cpu.report(b, b.N, "cpu-µs/run")
		msgs.report(b, b.N, "run")
		f.awaitSucceeded(b, b.N)
		reportPercentiles(b, durs)
	})
}
