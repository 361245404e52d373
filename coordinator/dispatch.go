package coordinator

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/kv"
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

// CheckStorage implements flowstone.StorageChecker from the stores the
// pipeline's workers tell in their manifests.
func (d *dispatcher) CheckStorage(p *flowstone.Pipeline, name string) error {
	return d.c.reg.checkStorage(p.Name(), name)
}

// Dispatch implements flowstone.Dispatcher.
func (d *dispatcher) Dispatch(ctx context.Context, p *flowstone.Pipeline, t flowstone.Task) (*flowstone.Materialization, error) {
	id := protocol.TaskID(t.RunID, t.Asset, t.Partition, 1)
	task := protocol.Task{V: protocol.Version, ID: id, RunID: t.RunID, Pipeline: p.Name(), Asset: t.Asset, Partition: t.Partition,
		Priority: t.Priority, Force: t.Force, Storage: t.Storage, Attempt: 1, EnqueuedAt: time.Now().UTC()}
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
			Inline: dep.Inline}})
	}
	// Claim the asset/partition across coordinators: if another run is
	// materializing it right now, share that execution instead.
	rec, rev, err := d.claim(ctx, p, t)
	if rec != nil || err != nil {
		return rec, err
	}
	task.RecordRev = rev
	body, perr := protocol.EncodeTask(task)
	if perr != nil {
		return nil, flowstone.FromWire(perr)
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

	if err := d.publish(ctx, protocol.TaskSubject(p.Name(), t.Priority), id, body, rev == 0); err != nil {
		if ctx.Err() != nil {
			return nil, d.abandon(ctx, t)
		}
		return nil, unreachable(err, "publish task")
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
func (d *dispatcher) settle(ctx context.Context, p *flowstone.Pipeline, t flowstone.Task, comp *protocol.Completion) (*flowstone.Materialization, error) {
	start, end := comp.StartedAt, comp.FinishedAt
	rec := &flowstone.Materialization{Pipeline: p.Name(), Asset: t.Asset, Partition: t.Partition, RunID: t.RunID,
		Storage: comp.Storage, ObjectKey: comp.ObjectKey, Encoding: string(comp.Encoding), Size: comp.Size, SHA256: comp.SHA256,
		Inline: comp.Inline, Worker: comp.Worker, Attempt: comp.Attempt, StartedAt: &start, CompletedAt: &end, DurationMS: comp.DurationMS}
	if comp.OK {
		rec.State = flowstone.StateCompleted
		if comp.ObjectKey == "" && len(comp.Inline) == 0 {
			// Completed by an earlier run (the task found it materialized):
			// take the record as it is.
			if r := d.recordIfDone(ctx, p, t); r != nil {
				return r, recordError(r)
			}
		}
		return rec, nil
	}
	fe := flowstone.FromWire(comp.Error)
	rec.State, rec.Error = flowstone.StateFailed, fe
	if fe.Type == flowstone.TypeCancelled {
		rec.State = flowstone.StateCancelled
	}
	return rec, fe
}

// recordIfDone reads the task's record: it returns it if it is terminal for
// this run (or completed by any run), else nil.
func (d *dispatcher) recordIfDone(ctx context.Context, p *flowstone.Pipeline, t flowstone.Task) *flowstone.Materialization {
	e, err := d.c.mats.Get(ctx, flowstone.MaterializationKey(p.Name(), t.Asset, t.Partition))
	if err != nil {
		return nil
	}
	rec, err := flowstone.UnmarshalRecord(e.Value)
	if err != nil {
		return nil
	}
	if rec.State == flowstone.StateCompleted && (!t.Force || rec.RunID == t.RunID) {
		return rec
	}
	if rec.RunID == t.RunID && rec.State.Terminal() {
		return rec
	}
	return nil
}

func recordError(rec *flowstone.Materialization) error {
	if rec.State == flowstone.StateCompleted {
		return nil
	}
	if rec.Error != nil {
		return rec.Error
	}
	return &flowstone.Error{Type: flowstone.TypeExecutionFailed, Message: "asset " + rec.Asset + " ended " + rec.State.String()}
}

// abandon tells the workers to stop the run's tasks and explains why the
// dispatch ended.
func (d *dispatcher) abandon(ctx context.Context, t flowstone.Task) error {
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

// unreachable wraps a NATS failure as the library's Unavailable error.
func unreachable(err error, what string) error {
	return &flowstone.Error{Type: flowstone.TypeUnavailable, Message: what + ": " + err.Error() + "; is NATS with JetStream reachable?",
		Details: map[string]any{"error": err.Error()}}
}

// queuedBy starts the Worker of a record whose task a coordinator queued
// and no worker has taken yet.
const queuedBy = "queued-by-"

// claimWait is how often a dispatch sharing another run's execution looks
// at the record.
const claimWait = 100 * time.Millisecond

// claim writes the task's record as pending for this run (compare-and-set),
// so that a concurrent run on another coordinator sees it. When another
// live run already holds the record pending or running, claim waits for
// that execution to end and returns its record (or error) instead: the
// engine's single-flight, across processes.
func (d *dispatcher) claim(ctx context.Context, p *flowstone.Pipeline, t flowstone.Task) (*flowstone.Materialization, uint64, error) {
	key := flowstone.MaterializationKey(p.Name(), t.Asset, t.Partition)
	// The engine read the record moments ago while planning: start from
	// that, and read it again only when the compare-and-set says it moved.
	cur, rev, fresh := t.Planned()
	for {
		if !fresh {
			e, err := d.c.mats.Get(ctx, key)
			cur, rev = nil, 0
			switch {
			case errors.Is(err, kv.ErrNotFound):
			case err != nil:
				return nil, 0, unreachable(err, "read record")
			default:
				if cur, err = flowstone.UnmarshalRecord(e.Value); err != nil {
					return nil, 0, err
				}
				rev = e.Revision
			}
		}
		fresh = false
		// Another run holds it if a worker runs it, or a coordinator queued
		// it (a plain pending record only says a run waits for its deps).
		held := cur != nil && cur.RunID != t.RunID &&
			(cur.State == flowstone.StateRunning || cur.State == flowstone.StatePending && strings.HasPrefix(cur.Worker, queuedBy))
		if held && d.c.runAlive(ctx, cur.RunID) {
			rec, err := d.share(ctx, key, t, cur.RunID)
			return rec, 0, err
		}
		if cur != nil && cur.State == flowstone.StateCompleted && (!t.Force || cur.RunID == t.RunID) {
			return cur, 0, nil // materialized meanwhile (by another run): use it
		}
		if cur != nil && cur.RunID == t.RunID &&
			(cur.State == flowstone.StateRunning || cur.State == flowstone.StatePending && strings.HasPrefix(cur.Worker, queuedBy)) {
			return nil, 0, nil // queued or running for this run already (a resumed run)
		}
		rec := &flowstone.Materialization{Pipeline: p.Name(), Asset: t.Asset, Partition: t.Partition, State: flowstone.StatePending,
			RunID: t.RunID, Worker: queuedBy + d.c.cfg.ID}
		if cur != nil && cur.State == flowstone.StateCompleted {
			// Keep pointing at the current result while it is recomputed.
			rec.Storage, rec.ObjectKey, rec.Encoding, rec.Size, rec.SHA256, rec.Inline = cur.Storage, cur.ObjectKey, cur.Encoding, cur.Size, cur.SHA256, cur.Inline
		}
		b, err := flowstone.MarshalRecord(rec)
		if err != nil {
			return nil, 0, err
		}
		var nrev uint64
		if rev == 0 {
			nrev, err = d.c.mats.Create(ctx, key, b)
		} else {
			nrev, err = d.c.mats.Update(ctx, key, b, rev)
		}
		if errors.Is(err, kv.ErrConflict) {
			continue // someone wrote meanwhile: look again
		}
		if err != nil {
			return nil, 0, unreachable(err, "claim record")
		}
		return nil, nrev, nil
	}
}

// share waits for another run's execution of the record to end.
func (d *dispatcher) share(ctx context.Context, key string, t flowstone.Task, owner string) (*flowstone.Materialization, error) {
	tick := time.NewTicker(claimWait)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, d.abandon(ctx, t)
		case <-tick.C:
		}
		e, err := d.c.mats.Get(ctx, key)
		if err != nil {
			continue
		}
		rec, err := flowstone.UnmarshalRecord(e.Value)
		if err != nil {
			continue
		}
		if rec.RunID != owner || rec.State.Terminal() {
			if rec.State == flowstone.StateCompleted {
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
