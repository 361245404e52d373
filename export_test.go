package flowstone

import "time"

// DateRangeDays exposes dateRangeDays to the tests.
var DateRangeDays = dateRangeDays

// SetClock gives the engine's scheduler (StartAutomation) a clock, before
// StartAutomation: tests move a fake one instead of sleeping.
func SetClock(e *Engine, c interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}) {
	e.mu.Lock()
	e.clock = c
	e.mu.Unlock()
}
