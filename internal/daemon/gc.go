package daemon

import (
	"os"
	"runtime/debug"
)

// GCPercentDefault is the garbage collector's target (GOGC) the fleet's
// processes run with when the environment does not set GOGC. A busy
// coordinator or worker allocates a little per task against a small live
// heap, so with Go's default of 100 it collects very often: 200 took about
// 10 % off the CPU per materialization in the fleet benchmark (see
// BENCHMARKS.md), for a heap that may grow to three times the live data
// instead of twice. GOGC (and GOMEMLIMIT) in the environment win.
const GCPercentDefault = 200

// TuneGC sets the collector's target to GCPercentDefault unless GOGC is set
// in the environment. It returns the target in effect and whether it came
// from the environment, for the start-up log.
func TuneGC() (percent int, fromEnv bool) {
	if _, ok := os.LookupEnv("GOGC"); ok {
		percent = debug.SetGCPercent(-1)
		debug.SetGCPercent(percent)
		return percent, true
	}
	debug.SetGCPercent(GCPercentDefault)
	return GCPercentDefault, false
}
