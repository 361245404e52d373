package fleetbench

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// Backfill shape of the throughput benchmark.
const (
	// backfillParallel is how many partitions the coordinator runs at once.
	backfillParallel = 512
	// backfillChunk is the most partitions sent in one backfill request,
	// well within protocol.MaxBackfillPartitions and MaxRequestBytes.
	backfillChunk = 50_000
)

// BenchmarkFleetThroughput materializes b.N no-op assets on a coordinator
// and two workers: bench/noop over b.N distinct partitions, asked for with
// client Backfill (Parallel 512), the path `fsctl backfill` takes. Every
// partition is a run of its own in the coordinator's engine, dispatched to
// a worker as a task on JetStream; the worker executes it (materialization
// record in JetStream KV, result in the object store) and publishes its
// completion. The clock runs from the request to the reply.
//
// Sub-benchmarks: store=file (the file object store, fsync per object:
// `fsctl dev`), store=file,progress (with an OnProgress callback, as
// `fsctl backfill` on a terminal: the client watches the records) and store=jetstream (the JetStream object store: cmd/worker's
// default), with the workers' defaults. Then diagnostics, to show where
// the time goes: diag=memory keeps results in an in-process memory store
// (no durable result store; only an in-process fleet can share one), and
// each further case adds one change: concurrency 256 per worker, only the
// bench pipeline hosted, telemetry events off.
func BenchmarkFleetThroughput(b *testing.B) {
	cases := []struct {
		name string
		cfg  fleetConfig
	}{
		{"store=file", fleetConfig{store: storeFile}},
		{"store=file,progress", fleetConfig{store: storeFile, progress: true}},
		{"store=jetstream", fleetConfig{store: storeJetStream}},
		{"diag=memory", fleetConfig{store: storeMemory}},
		{"diag=memory,conc=256", fleetConfig{store: storeMemory, concurrency: 256}},
		{"diag=memory,conc=256,bench-only", fleetConfig{store: storeMemory, concurrency: 256, benchOnly: true}},
		{"diag=memory,conc=256,bench-only,no-events", fleetConfig{store: storeMemory, concurrency: 256, benchOnly: true, noEvents: true}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			c.cfg.workers = 2
			benchThroughput(b, c.cfg)
		})
	}
}

func benchThroughput(b *testing.B, cfg fleetConfig) {
	f := startFleet(b, cfg)
	parts := make([]string, b.N)
	for i := range parts {
		parts[i] = fmt.Sprintf("p%08d", i)
	}
	ctx := context.Background()
	var stats flowstone.BackfillStats
	b.ResetTimer()
	msgs := startMsgs(b, f.srv)
	taskMsgs0, tasks0 := f.taskMessages(b)
	cpu := startCPU()
	start := time.Now()
	as("client", func() {
		for chunk := range slices.Chunk(parts, backfillChunk) {
			opts := []flowstone.BackfillOption{flowstone.Partitions(chunk...), flowstone.Parallel(backfillParallel)}
			if cfg.progress {
				opts = append(opts, flowstone.OnProgress(func(flowstone.BackfillProgress) {}))
			}
			s, err := f.client.Backfill(ctx, "bench", "noop", opts...)
			if err != nil {
				b.Fatal(err)
			}
			stats.Succeeded += s.Succeeded
			stats.Failed += s.Failed
			stats.Skipped += s.Skipped
			stats.NotStarted += s.NotStarted
			for p, e := range s.Errors {
				b.Errorf("partition %s: %v", p, e)
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	cpu.report(b, b.N, "cpu-µs/mat")
	msgs.report(b, b.N, "mat")
	if taskMsgs, tasks := f.taskMessages(b); taskMsgs > taskMsgs0 {
		b.ReportMetric((tasks-tasks0)/(taskMsgs-taskMsgs0), "tasks/msg")
	}

	if stats.Succeeded != b.N || stats.Failed+stats.Skipped+stats.NotStarted != 0 {
		b.Fatalf("backfill of %d partitions: %+v", b.N, stats)
	}
	f.awaitSucceeded(b, b.N)
	if got := f.completedRecords(b, "bench", "noop"); got != b.N {
		b.Fatalf("%d completed records of bench/noop, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "mats/s")
}
