package fleetbench

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// BenchmarkScatter runs bench.fan, a scatter of no-op items, on a
// coordinator and two workers (file store): each iteration is one forced
// fsctl-style Run of a scatter of items=N, its items going out in batches
// of 256 to both workers, each batch's outcome recorded once, the values
// gathered into one object stored in the file store. Compare items/s with
// BenchmarkRawWorkQueue's msgs/s in the same run: a batch carries 256
// items in one message.
func BenchmarkScatter(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			f := startFleet(b, fleetConfig{store: storeFile, workers: 2, benchOnly: true})
			ctx := context.Background()
			part := flowstone.Partition(strconv.Itoa(n))
			b.ResetTimer()
			msgs := startMsgs(b, f.srv)
			cpu := startCPU()
			start := time.Now()
			as("client", func() {
				for range b.N {
					if _, err := f.client.Run(ctx, "bench", "fan", part, flowstone.Force()); err != nil {
						b.Fatal(err)
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			cpu.report(b, n*b.N, "cpu-µs/item")
			msgs.report(b, n*b.N, "item")
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "items/s")
			st, err := f.client.Status(ctx, "bench", "fan", part)
			if err != nil || st.Scatter == nil || st.Scatter.Completed != n {
				b.Fatalf("status after the scatter = %+v, %v", st, err)
			}
		})
	}
}
