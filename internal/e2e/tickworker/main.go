// Command tickworker is the e2e tests' worker for schedules and sensors:
// it hosts pipeline ticker, whose daily asset a schedule runs every
// second (for the day before the tick) and whose sensor is evaluated
// every second, so that the tests see many ticks and intervals with real
// coordinator processes, and SIGKILL one between them.
package main

import (
	"os"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/worker/workercmd"
)

func main() {
	os.Exit(workercmd.Main(os.Args[1:], os.Stderr, Ticker()))
}

// Ticker is the pipeline: daily, by day, run by schedule every_second,
// and sensor counter, which asks for nothing and counts its evaluations
// in its cursor.
func Ticker() *flowstone.Pipeline {
	return flowstone.MustPipeline("ticker",
		flowstone.Asset("daily", func(c *flowstone.Context) (any, error) { return c.Partition(), nil }, flowstone.PartitionedBy(flowstone.Daily)),
	).MustAutomate(
		flowstone.Schedule("every_second", "* * * * * *", flowstone.Select("daily"), flowstone.InTimeZone("Europe/Paris")),
		flowstone.Sensor("counter", time.Second, func(c *flowstone.SensorContext, cursor string) (flowstone.SensorResult, error) {
			return flowstone.SensorResult{Cursor: cursor + "."}, nil
		}),
	)
}
