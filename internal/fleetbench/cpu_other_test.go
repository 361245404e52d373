//go:build !unix

package fleetbench

import "time"

// processCPU is not measured here: the cpu-µs metrics are left out.
func processCPU() time.Duration { return 0 }
