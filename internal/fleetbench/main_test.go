package fleetbench

import (
	"os"
	"testing"

	"github.com/flowstone-go/flowstone/internal/daemon"
)

// TestMain gives the benchmarks the garbage-collector target the fleet's
// processes run with (daemon.TuneGC: 200 unless GOGC is set), the raw
// baseline included. Set GOGC=100 to measure with Go's default.
func TestMain(m *testing.M) {
	daemon.TuneGC()
	os.Exit(m.Run())
}
