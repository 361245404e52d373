package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/tracing"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// task is one task of a delivered message being executed.
type task struct {
	d       *delivery
	h       *hosted
	t       protocol.Task
	attempt int
	cancel  context.CancelCauseFunc
	// state says who settles the task: the goroutine running it, or Stop
	// when it gives up waiting for an asset that ignores its context.
	state atomic.Int32
}

const (
	taskRunning    int32 = iota
	taskSettling         // the running goroutine completes and acks it
	taskHandedBack       // Stop nak'ed it
)

// errStopping is the cause of a task context cancelled because the worker
// is stopping: such a task is handed back to the queue, not completed, and
// the executor records it pending.
var errStopping = fmt.Errorf("worker: stopping: %w", bridge.ErrHandedBack)

// run executes the tasks of one delivered message (a task or a batch,
// holding k slots) and settles it: a Completion per task once the executor
// has recorded its outcome, then one ack; a Term for a malformed message; a
// Nak when the worker stops under it.
func (w *Worker) run(s *source, m jetstream.Msg, k int) {
	tasks, perr := protocol.DecodeTasks(m.Data(), m.Headers().Get(protocol.BatchHeader) != "")
	if perr == nil && tasks[0].Pipeline != s.h.name {
		perr = protocol.Errorf(protocol.CodeBadRequest, "task of pipeline %q arrived on the task subject of %q", tasks[0].Pipeline, s.h.name)
	}
	if perr != nil {
		w.slots.expect(-k)
		w.reject(s, m, perr)
		return
	}
	w.slots.expect(len(tasks) - k)
	d := &delivery{msg: m, log: &w.log, remaining: len(tasks), forget: w.forget}
	w.mu.Lock()
	w.messages[d] = struct{}{}
	w.mu.Unlock()
	attempt := 1
	if md, err := m.Metadata(); err == nil {
		attempt = max(int(md.NumDelivered), 1)
		w.metrics.queueDepth(s, md.NumPending)
	}
	// Every task takes its place for a slot now, in the message's order,
	// before any goroutine runs: the first task of a batch is the first to
	// start, whichever goroutine the scheduler runs first.
	tickets := make([]ticket, len(tasks))
	placed := make([]bool, len(tasks))
	for i := range tasks {
		tickets[i], placed[i] = w.slots.take(w.queue)
	}
	for i := 1; i < len(tasks); i++ {
		w.tasks.Add(1)
		w.pool.Go(func() {
			defer w.tasks.Done()
			w.execute(&task{d: d, h: s.h, t: tasks[i], attempt: attempt}, tickets[i], placed[i])
		})
	}
	w.execute(&task{d: d, h: s.h, t: tasks[0], attempt: attempt}, tickets[0], placed[0])
}

// forget drops a settled message from those the heartbeats keep alive.
func (w *Worker) forget(d *delivery) {
	w.mu.Lock()
	delete(w.messages, d)
	w.mu.Unlock()
}

// execute runs one task, once its ticket's slot is free, and reports it
// to its delivery. The slot bounds assets running at once: it is released
// when the executor is done (result and record stored), before the
// completion is published, so that a worker does not idle while
// completions wait for their batch to be stored. A task that took no
// place (placed false) or still waits for its slot when the worker begins
// to stop never starts: it is handed back.
func (w *Worker) execute(tk *task, t ticket, placed bool) {
	if !placed || !w.slots.wait(w.queue, t) {
		w.log.Info().Str("task_id", tk.t.ID).Str("run_id", tk.t.RunID).Msg("task_handed_back")
		tk.d.done(false, 0)
		return
	}
	start := time.Now()
	rec, settle, err := w.attempt(tk)
	w.slots.release()
	if settle {
		w.complete(tk, start, rec, err)
	}
}

// attempt executes a task that holds a slot and returns the executor's
// outcome; settle is false if the task was handed back (its delivery has
// been told already).
func (w *Worker) attempt(tk *task) (rec *flowstone.Materialization, settle bool, err error) {
	t := tk.t
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	tk.cancel = cancel
	w.stats.started.Add(1)
	w.metrics.started(tk.h.name, t.Asset, tk.attempt > 1)
	if !w.register(tk) {
		// Its run was cancelled: it never starts, and its record says so.
		return nil, true, w.refuse(tk, cancelledRun(t.RunID))
	}
	defer w.unregister(tk)
	ctx, stop := bound(ctx, &t)
	defer stop()
	// The execution is a span of its run's trace (Task.TraceParent).
	ctx, span := tracing.Tracer().Start(tracing.WithTraceParent(ctx, t.TraceParent), "flowstone.execute "+t.Asset,
		trace.WithAttributes(attribute.String("flowstone.run_id", t.RunID), attribute.String("flowstone.pipeline", t.Pipeline),
			attribute.String("flowstone.asset", t.Asset), attribute.String("flowstone.partition", t.Partition),
			attribute.String("flowstone.worker", w.cfg.ID), attribute.Int("flowstone.attempt", tk.attempt)))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	if ctx.Err() != nil {
		// Past the run's deadline: it never starts.
		return nil, true, w.refuse(tk, flowstone.AsError(context.Cause(ctx)))
	}
	rec, err = w.x.Execute(ctx, tk.h.p, w.flowTask(tk))
	if !tk.state.CompareAndSwap(taskRunning, taskSettling) {
		return nil, false, nil // Stop handed it back already
	}
	switch {
	case errors.Is(err, bridge.ErrSuperseded):
		w.log.Info().Str("task_id", t.ID).Str("run_id", t.RunID).Msg("task_superseded")
		tk.d.yield()
		return nil, false, nil
	case errors.Is(err, bridge.ErrHandedBack):
		// The worker is stopping, or could not keep the record's lease:
		// the task runs again on its next delivery.
		w.log.Info().Str("task_id", t.ID).Str("run_id", t.RunID).Err(err).Msg("task_handed_back")
		tk.d.done(false, 0)
		return nil, false, nil
	}
	if err != nil && ctx.Err() != nil {
		cause := context.Cause(ctx)
		var fe *flowstone.Error
		if errors.As(cause, &fe) && flowstone.AsError(err).Type == flowstone.TypeStorageError {
			// A store call gave up because the context ended: say why
			// it ended (timeout, cancel), not that the store failed.
			err = fe
		}
	}
	return rec, true, err
}

// refuse records that a task will not run because of fe, and returns fe
// for its completion. The record keeps what it says if it cannot be
// written: the run has ended either way.
func (w *Worker) refuse(tk *task, fe *flowstone.Error) error {
	ctx, cancel := context.WithTimeout(context.Background(), refuseTimeout)
	defer cancel()
	if err := w.x.Refuse(ctx, tk.h.p, w.flowTask(tk), fe); err != nil {
		w.log.Warn().Err(err).Str("task_id", tk.t.ID).Str("run_id", tk.t.RunID).Msg("record_write_failed")
	}
	return fe
}

// refuseTimeout bounds the record write of a task that does not run.
const refuseTimeout = 10 * time.Second

// reject terminates a message that is not a task this worker can read, so
// it is never delivered again.
func (w *Worker) reject(s *source, m jetstream.Msg, perr *protocol.Error) {
	w.log.Error().Str("subject", m.Subject()).Str("pipeline", s.h.name).Str("code", perr.Code).
		Str("error", perr.Message).Msg("task_malformed")
	if err := m.TermWithReason("malformed task: " + perr.Code); err != nil {
		w.log.Warn().Err(err).Str("subject", m.Subject()).Msg("task_term_failed")
	}
}

// bound applies the task's timeout and its run's deadline to ctx, with
// causes that say which ended it: one context for whichever comes first.
func bound(ctx context.Context, t *protocol.Task) (context.Context, context.CancelFunc) {
	if t.TimeoutMS > 0 {
		d := time.Duration(t.TimeoutMS) * time.Millisecond
		if t.Deadline == nil || time.Now().Add(d).Before(*t.Deadline) {
			return context.WithTimeoutCause(ctx, d, &flowstone.Error{Type: flowstone.TypeTimeout,
				Message: fmt.Sprintf("asset %q exceeded the task's timeout of %v", t.Asset, d),
				Details: map[string]any{"asset": t.Asset, "timeout_ms": t.TimeoutMS}})
		}
	}
	if t.Deadline != nil {
		return context.WithDeadlineCause(ctx, *t.Deadline, runDeadline{t})
	}
	return ctx, func() {}
}

// runDeadline is the cause of a task context that reached its run's
// deadline. The error itself (deadlineError) is built only if asked for,
// through errors.As: nearly every task ends before its run's deadline.
type runDeadline struct{ t *protocol.Task }

func (d runDeadline) Error() string { return deadlineError(d.t).Error() }

// As lets errors.As find the *flowstone.Error the cause stands for.
func (d runDeadline) As(target any) bool {
	if p, ok := target.(**flowstone.Error); ok {
		*p = deadlineError(d.t)
		return true
	}
	return false
}

// deadlineError is the error of a task whose run reached its deadline.
func deadlineError(t *protocol.Task) *flowstone.Error {
	return &flowstone.Error{Type: flowstone.TypeTimeout,
		Message: fmt.Sprintf("run %s reached its deadline (%s) before asset %q finished", t.RunID, t.Deadline.UTC().Format(time.RFC3339Nano), t.Asset),
		Details: map[string]any{"asset": t.Asset, "run_id": t.RunID}}
}

// flowTask is the executor's view of a task. Optional dependencies the
// coordinator left out (they have no value) are marked missing, so the
// asset sees them the way it would embedded.
func (w *Worker) flowTask(tk *task) bridge.Task {
	t := &tk.t
	ft := bridge.Task{RunID: t.RunID, Asset: t.Asset, Partition: t.Partition, Force: t.Force, Storage: t.Storage,
		Attempt: tk.attempt, Priority: t.Priority, Deps: make([]bridge.DepRef, 0, len(t.Deps))}
	if t.Deadline != nil {
		ft.Deadline = *t.Deadline
	}
	ft.ExpectedRevision = t.RecordRev
	if tk.h.scatters[t.Asset] {
		ft.Items = &fleetItems{w: w, t: *t}
	}
	for _, d := range t.Deps {
		ft.Deps = append(ft.Deps, bridge.DepRef{Asset: d.Asset, Partition: d.Partition, RunID: d.ValueRunID, Storage: d.Storage,
			ObjectKey: d.ObjectKey, Encoding: string(d.Encoding), SHA256: d.SHA256, Size: d.Size, Inline: d.Inline})
	}
outer:
	for _, name := range tk.h.optional[t.Asset] {
		for _, d := range t.Deps {
			if d.Asset == name {
				continue outer
			}
		}
		ft.Deps = append(ft.Deps, bridge.DepRef{Asset: name, Partition: t.Partition, Missing: true})
	}
	return ft
}

// complete publishes the task's Completion and, once JetStream has stored
// it, acks the task: a crash in between redelivers the task, whose
// execution the executor's record makes a no-op, and publishes the
// completion again. rec and err are Execute's results.
func (w *Worker) complete(tk *task, start time.Time, rec *flowstone.Materialization, err error) {
	t := &tk.t
	end := time.Now()
	c := protocol.Completion{V: protocol.Version, TaskID: t.ID, RunID: t.RunID, Pipeline: t.Pipeline, Asset: t.Asset,
		Partition: t.Partition, Worker: w.cfg.ID, Attempt: tk.attempt, StartedAt: start.UTC(), FinishedAt: end.UTC(),
		DurationMS: end.Sub(start).Milliseconds()}
	if err == nil && rec == nil {
		err = &flowstone.Error{Type: flowstone.TypeStorageError, Message: "the executor returned no record and no error"}
	}
	if err == nil {
		v := rec.Value
		c.OK = true
		c.ResultRef = protocol.ResultRef{ObjectKey: v.ObjectKey, Storage: v.Storage, Size: v.Size,
			SHA256: v.SHA256, Encoding: protocol.Encoding(v.Encoding), Inline: v.Inline}
		if v.RunID != t.RunID {
			c.ValueRunID = v.RunID // materialized by another run
		}
	} else {
		c.Error = bridge.WireError(flowstone.AsError(err))
	}
	body, perr := protocol.EncodeCompletion(c)
	if perr != nil {
		// The record is what it is; say so in a completion that encodes.
		c.OK, c.ResultRef = false, protocol.ResultRef{}
		c.Error = plainError(c.Error, perr)
		body, perr = protocol.EncodeCompletion(c)
	}
	if perr != nil {
		w.log.Error().Str("task_id", t.ID).Str("error", perr.Message).Msg("completion_unencodable")
		tk.d.done(true, 0) // nothing to report: a redelivery would fail the same way
		return
	}

	if err := w.done.Publish(context.Background(), protocol.DoneSubject(t.Pipeline), t.ID+"."+strconv.Itoa(tk.attempt), body); err != nil {
		w.log.Warn().Err(err).Str("task_id", t.ID).Msg("completion_publish_failed")
		tk.d.done(false, retryDelay)
		return
	}
	tk.d.done(true, 0)

	d := end.Sub(start)
	if c.OK {
		w.stats.succeeded.Add(1)
		w.metrics.succeeded(t.Pipeline, t.Asset, d)
		w.log.Debug().Str("task_id", t.ID).Str("run_id", t.RunID).Str("asset", t.Asset).Int("attempt", tk.attempt).
			Dur("duration", d).Msg("task_succeeded")
		return
	}
	w.stats.failed.Add(1)
	w.metrics.failed(t.Pipeline, t.Asset, c.Error.Code, d)
	w.log.Info().Str("task_id", t.ID).Str("run_id", t.RunID).Str("asset", t.Asset).Int("attempt", tk.attempt).
		Str("code", c.Error.Code).Str("error", c.Error.Message).Dur("duration", d).Msg("task_failed")
}

// plainError is e reduced to what always encodes: its code if valid, its
// message made valid UTF-8 and short, no details. why is the encoding
// problem, said in the message.
func plainError(e *protocol.Error, why *protocol.Error) *protocol.Error {
	out := &protocol.Error{Code: protocol.CodeInternal, Message: "the task's outcome could not be reported: " + why.Message}
	if e == nil {
		return out
	}
	msg := e.Message
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	cand := &protocol.Error{Code: e.Code, Message: msg + " (details dropped: " + why.Message + ")"}
	if cand.Validate() == nil {
		return cand
	}
	out.Message = cand.Message
	return out
}
