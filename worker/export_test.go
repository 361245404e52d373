package worker

// StopBegun is closed when Stop begins, for tests that act during a drain.
func StopBegun(w *Worker) <-chan struct{} { return w.stopBegun }
