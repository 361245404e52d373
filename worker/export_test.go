package worker

import "time"

// StopBegun is closed when Stop begins, for tests that act during a drain.
func StopBegun(w *Worker) <-chan struct{} { return w.stopBegun }

// SetEventBatchDelay sets how long workers started from now on hold an
// event before publishing its batch, and returns a function that restores
// the default.
func SetEventBatchDelay(d time.Duration) (restore func()) {
	old := eventBatchDelay
	eventBatchDelay = d
	return func() { eventBatchDelay = old }
}
