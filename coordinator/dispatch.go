package coordinator

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/retry"
	"github.com/flowstone-go/flowstone/internal/tracing"
	"github.com/flowstone-go/flowstone/internal/transient/natserr"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// dispatcher is the engine's Dispatcher on the fleet: it publishes a task
// on JetStream and waits for the worker's completion (or, should that
// message be missed, for the record in KV).
type dispatcher struct {
	c *Coordinator

	mu      sync.Mutex
	waiters map[string]chan protocol.Completion // by task id

	// poll is closed, and replaced, every PollInterval (see pollTicks):
	// every waiting Dispatch then re-reads its record, in case its
	// completion was lost. One clock for all of them, not a ticker each.
	pollMu sync.Mutex
	poll   chan struct{}
}

// pollChan returns the channel the next poll tick closes.
func (d *dispatcher) pollChan() <-chan struct{} {
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	return d.poll
}

// pollTicks closes the poll channel every PollInterval until ctx ends.
func (d *dispatcher) pollTicks(ctx context.Context) {
	t := time.NewTicker(d.c.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.pollMu.Lock()
		close(d.poll)
		d.poll = make(chan struct{})
		d.pollMu.Unlock()
	}
}

// CheckStorage tells the engine whether the pipeline's workers have a
// store of that name (see bridge.Dispatcher), from the stores they tell in
// their manifests.
func (d *dispatcher) CheckStorage(p *flowstone.Pipeline, name string) error {
	return d.c.reg.checkStorage(p.Name(), name)
}

// Dispatch implements bridge.Dispatcher.
func (d *dispatcher) Dispatch(ctx context.Context, p *flowstone.Pipeline, t bridge.Task) (*flowstone.Materialization, error) {
	id := protocol.TaskID(t.RunID, t.Asset, t.Partition, 1)
	task := protocol.Task{V: protocol.Version, ID: id, RunID: t.RunID, Pipeline: p.Name(), Asset: t.Asset, Partition: t.Partition,
		Priority: t.Priority, Force: t.Force, Storage: t.Storage, Attempt: 1, EnqueuedAt: time.Now().UTC(),
		TraceParent: tracing.TraceParent(ctx)}
	// The run's deadline comes with t: ctx is the flight's, which outlives
	// any one run waiting on it and carries no deadline.
	dl, ok := ctx.Deadline()
	if !t.Deadline.IsZero() && (!ok || t.Deadline.Before(dl)) {
		dl, ok = t.Deadline, true
	}
	if ok {
		dl = dl.UTC()
		task.Deadline = &dl
	}
	for _, dep := range t.Deps {
		if dep.Missing {
			continue
		}
		task.Deps = append(task.Deps, protocol.DepRef{Asset: dep.Asset, Partition: dep.Partition, ResultRef: protocol.ResultRef{
			ObjectKey: dep.ObjectKey, Storage: dep.Storage, Size: dep.Size, SHA256: dep.SHA256, Encoding: protocol.Encoding(dep.Encoding),
			Inline: dep.Inline, ValueRunID: dep.RunID}})
	}
	// Mark the asset/partition queued by this run, across coordinators: if
	// another run is materializing it right now, share that execution
	// instead.
	key := bridge.MaterializationKey(p.Name(), t.Asset, t.Partition)
	outcome, cur, rev, err := d.queue(ctx, key, p, t)
	if err != nil {
		return nil, err
	}
	switch outcome {
	case bridge.Materialized:
		return cur, nil
	case bridge.HeldBy:
		return d.share(ctx, key, t, cur.RunID)
	case bridge.Queued:
		if cur.Value == nil && cur.Gate == nil {
			// The worker may claim the record at this revision without
			// reading it: it knows what it holds. (A gate's record it
			// reads: a signal's payload is in it.)
			task.RecordRev = rev
		}
	case bridge.Requeued:
		// Published before (a resumed run): it goes alone, with its dedupe
		// id.
	}
	body, perr := protocol.EncodeTask(task)
	if perr != nil {
		return nil, bridge.FromWire(perr)
	}
	ch := make(chan protocol.Completion, 1)
	d.mu.Lock()
	d.waiters[id] = ch
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.waiters, id)
		d.mu.Unlock()
	}()

	// A publish that fails on a NATS fault (a restart, an election) is made
	// again until the run's time is up: the task carries its dedupe id.
	err = natsRetry.Do(ctx, func(ctx context.Context) error {
		return d.publish(ctx, protocol.TaskSubject(p.Name(), t.Priority), id, body, outcome == bridge.Requeued)
	})
	if err != nil {
		var fe *flowstone.Error
		if ctx.Err() != nil {
			err = d.abandon(ctx, t)
		} else {
			err = unreachable(err, "publish task")
		}
		if errors.As(err, &fe) && d.c.ctx.Err() == nil {
			// The task never reached the queue, so no worker will settle
			// the record this run queued: say here why it did not run. (A
			// coordinator that is stopping leaves it queued: the next one
			// resumes the run.)
			d.refuse(p, t, fe)
		}
		return nil, err
	}

	for {
		select {
		case comp := <-ch:
			return d.settle(ctx, p, t, &comp)
		case <-d.pollChan():
			if rec := d.recordIfDone(ctx, p, t); rec != nil {
				return rec, recordError(rec)
			}
		case <-ctx.Done():
			return nil, d.abandon(ctx, t)
		}
	}
}

// publish stores a task on its subject. A task claimed now joins the
// subject's next batch (see internal/batcher); one queued before (a resumed
// run republishing it) goes alone, with its ID as the dedupe id, so a copy
// still in the queue is not delivered twice.
func (d *dispatcher) publish(ctx context.Context, subject, id string, body []byte, resumed bool) error {
	if !resumed {
		return d.c.tasks.Publish(ctx, subject, id, body)
	}
	ack, err := d.c.js.PublishAsync(subject, body, jetstream.WithMsgID(id))
	if err != nil {
		return err
	}
	select {
	case <-ack.Ok():
		d.c.ring(subject)
		return nil
	case err := <-ack.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settle turns a completion into the record the engine continues with.
func (d *dispatcher) settle(ctx context.Context, p *flowstone.Pipeline, t bridge.Task, comp *protocol.Completion) (*flowstone.Materialization, error) {
	start, end := comp.StartedAt, comp.FinishedAt
	rec := &flowstone.Materialization{Pipeline: p.Name(), Asset: t.Asset, Partition: t.Partition, RunID: t.RunID,
		Worker: comp.Worker, Attempt: comp.Attempt, StartedAt: &start, CompletedAt: &end, DurationMS: comp.DurationMS}
	if comp.OK {
		rec.State = flowstone.StateCompleted
		if comp.ObjectKey == "" && len(comp.Inline) == 0 {
			// No location given: take the record as it is.
			if r := d.recordIfDone(ctx, p, t); r != nil {
				return r, recordError(r)
			}
		}
		rec.Value = &flowstone.Value{RunID: cmp.Or(comp.ValueRunID, t.RunID), Storage: comp.Storage, ObjectKey: comp.ObjectKey,
			Encoding: string(comp.Encoding), Size: comp.Size, SHA256: comp.SHA256, Inline: comp.Inline, CompletedAt: end, DurationMS: comp.DurationMS}
		if comp.ValueRunID == "" {
			// Computed by this task, from the dependencies it was sent:
			// the lineage the worker wrote in the record.
			for _, d := range t.Deps {
				if !d.Missing {
					rec.Value.Upstream = append(rec.Value.Upstream, flowstone.Lineage{Asset: d.Asset, Partition: d.Partition, RunID: d.RunID})
				}
			}
		}
		return rec, nil
	}
	fe := bridge.FromWire(comp.Error)
	if holder, ok := fe.Details[bridge.StaleHolderDetail].(string); ok && holder != t.RunID {
		// Another run took the record after this task was queued (this
		// run looked dead to it): wait for that run's execution instead.
		return d.share(ctx, bridge.MaterializationKey(p.Name(), t.Asset, t.Partition), t, holder)
	}
	rec.State, rec.Error = flowstone.StateFailed, fe
	if fe.Type == flowstone.TypeCancelled {
		rec.State = flowstone.StateCancelled
	}
	return rec, fe
}

// recordIfDone reads the task's record: it returns it if it holds a value
// the task can use, or its run's end; else nil.
func (d *dispatcher) recordIfDone(ctx context.Context, p *flowstone.Pipeline, t bridge.Task) *flowstone.Materialization {
	rec, _, err := d.c.records.Read(ctx, bridge.MaterializationKey(p.Name(), t.Asset, t.Partition))
	if err != nil || rec == nil {
		return nil
	}
	if rec.Materialized() && (!t.Force || rec.Value.RunID == t.RunID) {
		return rec
	}
	if rec.RunID == t.RunID && rec.State.Terminal() {
		return rec
	}
	return nil
}

func recordError(rec *flowstone.Materialization) error {
	if rec.Materialized() && rec.State == flowstone.StateCompleted {
		return nil
	}
	if rec.Error != nil {
		return rec.Error
	}
	return &flowstone.Error{Type: flowstone.TypeExecutionFailed, Message: "asset " + rec.Asset + " ended " + rec.State.String()}
}

// refuse records that t did not run because of fe, if its record is
// still queued by t's run (see bridge.Executor.Refuse).
func (d *dispatcher) refuse(p *flowstone.Pipeline, t bridge.Task, fe *flowstone.Error) {
	ctx, cancel := context.WithTimeout(context.Background(), refuseTimeout)
	defer cancel()
	if err := bridge.EngineExecutor(d.c.engine).Refuse(ctx, p, t, fe); err != nil {
		d.c.log.Warn().Err(err).Str("run_id", t.RunID).Str("asset", t.Asset).Str("partition", t.Partition).Msg("record_refuse_failed")
	}
}

// refuseTimeout bounds the write of a task's record that was never
// published; past it the record is left queued (pending).
const refuseTimeout = 30 * time.Second

// abandon tells the workers to stop the run's tasks and explains why the
// dispatch ended.
func (d *dispatcher) abandon(ctx context.Context, t bridge.Task) error {
	// A coordinator that is stopping leaves the task running: the run is
	// resumed from its record by the next coordinator.
	if d.c.ctx.Err() == nil {
		if err := d.c.nc.Publish(protocol.CancelSubject(t.RunID), nil); err != nil {
			d.c.log.Warn().Err(err).Str("run_id", t.RunID).Msg("cancel_publish_failed")
		}
	}
	var fe *flowstone.Error
	if errors.As(context.Cause(ctx), &fe) {
		return fe
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &flowstone.Error{Type: flowstone.TypeTimeout, Message: "asset \"" + t.Asset + "\" timed out on the fleet",
			Details: map[string]any{"asset": t.Asset, "run_id": t.RunID}}
	}
	return &flowstone.Error{Type: flowstone.TypeCancelled, Message: "asset \"" + t.Asset + "\" was cancelled",
		Details: map[string]any{"asset": t.Asset, "run_id": t.RunID}}
}

// onCompletion routes a worker's completion to the dispatch waiting for it.
// Completions of other coordinators' tasks are ignored here, so each is
// handled once.
func (d *dispatcher) onCompletion(m *nats.Msg) {
	comps, perr := protocol.DecodeCompletions(m.Data, m.Header.Get(protocol.BatchHeader) != "")
	if perr != nil {
		d.c.log.Warn().Str("subject", m.Subject).Str("error", perr.Message).Msg("completion_rejected")
		return
	}
	for i := range comps {
		d.route(&comps[i])
	}
}

// route hands a completion to the dispatch waiting for it, if any here.
func (d *dispatcher) route(comp *protocol.Completion) {
	d.mu.Lock()
	ch := d.waiters[comp.TaskID]
	d.mu.Unlock()
	if ch != nil {
		select {
		case ch <- *comp:
		default: // a duplicate (redelivered task): the first one won
		}
	}
}

// natsRetry retries the NATS faults of a server restart or a cluster
// election with backoff.
var natsRetry = retry.Policy{Retryable: natserr.Transient}

// unreachable wraps a NATS failure as the library's Unavailable error.
func unreachable(err error, what string) error {
	return &flowstone.Error{Type: flowstone.TypeUnavailable, Message: what + ": " + err.Error() + "; is NATS with JetStream reachable?",
		Details: map[string]any{"error": err.Error()}}
}

// queue marks the task's record queued by its run (see
// bridge.Records.Queue), starting from the record the engine read while
// planning.
func (d *dispatcher) queue(ctx context.Context, key string, p *flowstone.Pipeline, t bridge.Task) (bridge.QueueOutcome, *flowstone.Materialization, uint64, error) {
	rec, rev, planned := t.Planned()
	if !planned {
		var err error
		if rec, rev, err = d.c.records.Read(ctx, key); err != nil {
			return 0, nil, 0, unreachable(err, "read record")
		}
	}
	outcome, cur, nrev, err := d.c.records.Queue(ctx, key, rec, rev, bridge.QueueRequest{
		Pipeline: p.Name(), Asset: t.Asset, Partition: t.Partition, RunID: t.RunID, Force: t.Force, By: d.c.cfg.ID,
		Alive: func(runID string) bool { return d.c.runAlive(ctx, runID) }})
	if err != nil {
		return 0, nil, 0, unreachable(err, "queue record")
	}
	return outcome, cur, nrev, nil
}

// claimWait is how often a dispatch sharing another run's execution looks
// at the record.
const claimWait = 100 * time.Millisecond

// share waits for another run's execution of the record to end.
func (d *dispatcher) share(ctx context.Context, key string, t bridge.Task, owner string) (*flowstone.Materialization, error) {
	tick := time.NewTicker(claimWait)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, d.abandon(ctx, t)
		case <-tick.C:
		}
		rec, _, err := d.c.records.Read(ctx, key)
		if err != nil || rec == nil {
			continue
		}
		if rec.RunID != owner || rec.State.Terminal() {
			if rec.Materialized() && (!t.Force || rec.Value.RunID == owner) {
				return rec, nil
			}
			if rec.RunID == owner {
				return rec, recordError(rec)
			}
			return nil, &flowstone.Error{Type: flowstone.TypeExecutionFailed, Message: "asset \"" + t.Asset + "\" was taken over by another run while this one waited for it; run again",
				Details: map[string]any{"asset": t.Asset, "partition": t.Partition}}
		}
	}
}
