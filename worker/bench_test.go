package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkNoopTasks measures one worker's throughput: b.N no-op tasks
// (each a distinct partition, so each executes) published asynchronously to
// a file-store JetStream, counted as their completions arrive. Records go
// to JetStream KV, results to the memory object store; events are off
// except in the "events" case.
func BenchmarkNoopTasks(b *testing.B) {
	for _, bc := range []struct {
		concurrency int
		events      bool
	}{{16, false}, {64, false}, {256, false}, {256, true}} {
		name := "concurrency=" + itoa(bc.concurrency)
		if bc.events {
			name += "/events"
		}
		b.Run(name, func(b *testing.B) {
			e := newFleet(b)
			e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipelines.Bench()}, Concurrency: bc.concurrency, NoEvents: !bc.events})
			bodies := make([][]byte, b.N)
			ids := make([]string, b.N)
			for i := range b.N {
				tk := task("bench", "noop", "p"+itoa(i), 0)
				body, perr := protocol.EncodeTask(tk)
				if perr != nil {
					b.Fatal(perr)
				}
				bodies[i], ids[i] = body, tk.ID
			}
			subject := protocol.TaskSubject("bench", 0)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if _, err := e.js.PublishAsync(subject, bodies[i], jetstream.WithMsgID(ids[i])); err != nil {
					b.Fatal(err)
				}
			}
			for range b.N {
				if c := e.completion(); !c.OK {
					b.Fatalf("completion = %+v", c)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			select {
			case <-e.js.PublishAsyncComplete():
			case <-ctx.Done():
				b.Fatal("async publishes never completed")
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
		})
	}
}
