package worker

import (
	"fmt"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
)

// CancelMemory is how long a worker remembers a cancelled run: tasks of that
// run delivered meanwhile (published before the cancel, or redelivered) are
// completed as cancelled without executing.
const CancelMemory = 10 * time.Minute

// register adds tk to the running tasks, unless its run is cancelled: then
// it reports false. One lock covers both, so a cancel arriving at any
// moment either finds the task running or is found by it.
func (w *Worker) register(tk *task) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if until, ok := w.cancelled[tk.t.RunID]; ok && time.Now().Before(until) {
		return false
	}
	w.running[tk] = struct{}{}
	return true
}

func (w *Worker) unregister(tk *task) {
	w.mu.Lock()
	delete(w.running, tk)
	w.mu.Unlock()
}

// onCancel handles a message on protocol.CancelSubjects: it cancels the
// contexts of the run's running tasks and remembers the run for
// CancelMemory.
func (w *Worker) onCancel(m *nats.Msg) {
	runID := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	if protocol.ValidID(runID) != nil {
		return
	}
	cause := cancelledRun(runID)
	now := time.Now()
	n := 0
	w.mu.Lock()
	for id, until := range w.cancelled {
		if now.After(until) {
			delete(w.cancelled, id)
		}
	}
	w.cancelled[runID] = now.Add(CancelMemory)
	for tk := range w.running {
		if tk.t.RunID == runID {
			if dl := tk.t.Deadline; dl != nil && !now.Before(*dl) {
				// The coordinator cancels the tasks of a run that timed
				// out, racing the task's own deadline: say it timed out.
				tk.cancel(deadlineError(&tk.t))
			} else {
				tk.cancel(cause)
			}
			n++
		}
	}
	w.mu.Unlock()
	w.log.Info().Str("run_id", runID).Int("tasks", n).Msg("run_cancelled")
}

// cancelledRun is the error of a task of a cancelled run: the context's
// cause, so the executor records it as it is.
func cancelledRun(runID string) *flowstone.Error {
	return &flowstone.Error{Type: flowstone.TypeCancelled, Message: fmt.Sprintf("run %s was cancelled", runID),
		Details: map[string]any{"run_id": runID}}
}

// cancelRunning cancels the context of every running task with cause and
// returns how many there were.
func (w *Worker) cancelRunning(cause error) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	for tk := range w.running {
		tk.cancel(cause)
	}
	return len(w.running)
}

// abandonRunning hands back to the queue the tasks still executing: their
// assets ignored the cancelled context. Their goroutines finish in the
// background and leave the messages alone. It returns how many.
func (w *Worker) abandonRunning() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for tk := range w.running {
		if tk.state.CompareAndSwap(taskRunning, taskHandedBack) {
			tk.d.abandon()
			w.log.Warn().Str("task_id", tk.t.ID).Str("asset", tk.t.Asset).Msg("task_abandoned")
			n++
		}
	}
	return n
}

// pipelineOfRun names the pipeline of a running task of runID, or "".
func (w *Worker) pipelineOfRun(runID string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for tk := range w.running {
		if tk.t.RunID == runID {
			return tk.t.Pipeline
		}
	}
	return ""
}
