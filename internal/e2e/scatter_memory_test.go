package e2e

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

var scatterMemory = flag.Bool("scatter-memory", false, "measure the peak memory of a coordinator and two workers (real processes) running 10,000- and 100,000-item scatters (BENCHMARKS.md)")

// TestScatterPeakMemory measures, with real processes, the peak resident
// memory (VmHWM) of a coordinator and two workers that ran one scatter of
// bench.fan, for 10,000 and 100,000 items: the figures BENCHMARKS.md
// records. Run it with -scatter-memory; Linux only (/proc).
//
//	go test ./internal/e2e -run TestScatterPeakMemory -scatter-memory -v
func TestScatterPeakMemory(t *testing.T) {
	if !*scatterMemory {
		t.Skip("a measurement: run with -scatter-memory")
	}
	for _, n := range []int{10_000, 100_000} {
		t.Run(fmt.Sprintf("items=%d", n), func(t *testing.T) {
			f := newFleet(t)
			c := f.coordinator("c1")
			w1 := f.worker("w1")
			w2 := f.worker("w2")
			f.waitReady(2)
			part := strconv.Itoa(n)
			var run runOut
			f.ok(&run, "run", "bench", "fan", "--partition", part, "--async")
			st := f.waitStatus("bench", "fan", part, "completed", stateIs("completed", "failed", "cancelled"))
			if st.State != "completed" || st.Scatter == nil || st.Scatter.Completed != n {
				t.Fatalf("fan = %+v", st)
			}
			t.Logf("items=%d peak RSS: coordinator %.1f MiB, workers %.1f and %.1f MiB",
				n, peakMiB(t, c), peakMiB(t, w1), peakMiB(t, w2))
		})
	}
}

// peakMiB is the process's peak resident set (VmHWM), in MiB.
func peakMiB(t *testing.T, p *proc) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	return 0
}
