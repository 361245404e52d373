package flowstone

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
	"github.com/flowstone-go/flowstone/internal/retry"
	"github.com/flowstone-go/flowstone/kv"
)

// Lease timing of running records (see Materialization.LeaseUntil).
const (
	// leaseDefault is how long a running attempt's claim lasts without a
	// renewal: the fleet's workers use their AckWait, so that a record's
	// lease and its task's redelivery lapse together.
	leaseDefault = 30 * time.Second
	// leaseSkew is how far past a lease's end another process waits before
	// it takes the record over: the lease was written with the holder's
	// clock, and the two clocks may disagree by this much.
	leaseSkew = 2 * time.Second
)

// records is the one writer of materialization records. Every change of a
// record is one of its transitions (see the package documentation,
// "Records"), made by compare-and-set on the revision the writer last saw;
// on a conflict the record is read again and the transition decided again
// from what it holds now, so that a stale attempt never replaces a newer
// outcome, and a failure never replaces a value.
//
// records is safe for concurrent use.
type records struct {
	kv    kv.Store
	cache recordCache
	now   func() time.Time
}

// newRecords returns the record writer over store.
func newRecords(store kv.Store) *records {
	return &records{kv: store, now: time.Now}
}

// ident is the identity part of a record: what every transition writes
// whatever else changes.
type ident struct{ pipeline, asset, partition string }

func (id ident) record(state State, runID string) *Materialization {
	return &Materialization{Pipeline: id.pipeline, Asset: id.asset, Partition: id.partition, State: state, RunID: runID}
}

// view is a caller's knowledge of a record: the record (nil: none) at a
// revision (0: none), when known is true.
type view struct {
	rec   *Materialization
	rev   uint64
	known bool
}

// Read returns the record under key and its revision; nil if there is
// none. The record is the caller's to change.
//
// Transient store errors (a NATS restart, a timeout) are retried with
// backoff until ctx ends, here and in every transition: faults are waited
// out, not turned into failures.
func (r *records) Read(ctx context.Context, key string) (*Materialization, uint64, error) {
	var e kv.Entry
	err := retry.Do(ctx, func(ctx context.Context) error {
		var err error
		e, err = r.kv.Get(ctx, key)
		return err
	})
	if errors.Is(err, kv.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, wrapError(TypeStorageError, err, map[string]any{"key": key}, "read record %s: %v", key, err)
	}
	if v, ok := r.cache.m.Load(key); ok {
		if c := v.(*cachedRecord); c.rev == e.Revision {
			rec := c.rec
			return &rec, e.Revision, nil
		}
	}
	rec, err := unmarshalRecord(e.Value)
	if err != nil {
		return nil, 0, err
	}
	r.cache.put(key, e.Revision, rec)
	return rec, e.Revision, nil
}

// change applies one transition to key. decide sees the current record
// (nil: none) and its revision, and returns the record to write, or nil
// to leave the record as it is. The write is a compare-and-set on that
// revision (a create when there is none); on a conflict the record is read
// again and decided again: nothing is ever written blindly. It returns the
// record as it stands after the transition, its revision, and whether this
// call wrote it.
func (r *records) change(ctx context.Context, key string, v view, decide func(cur *Materialization, rev uint64) *Materialization) (*Materialization, uint64, bool, error) {
	cur, rev := v.rec, v.rev
	if !v.known {
		var err error
		if cur, rev, err = r.Read(ctx, key); err != nil {
			return nil, 0, false, err
		}
	}
	for {
		next := decide(cur, rev)
		if next == nil {
			return cur, rev, false, nil
		}
		nrev, err := r.put(ctx, key, next, rev)
		if err == nil {
			return next, nrev, true, nil
		}
		if !errors.Is(err, kv.ErrConflict) {
			return nil, 0, false, err
		}
		if cur, rev, err = r.Read(ctx, key); err != nil {
			return nil, 0, false, err
		}
	}
}

// put writes rec over revision rev of key (0: only if key has no record).
func (r *records) put(ctx context.Context, key string, rec *Materialization, rev uint64) (uint64, error) {
	b, err := marshalRecord(rec)
	if err != nil {
		return 0, wrapError(TypeStorageError, err, map[string]any{"key": key}, "encode record %s: %v", key, err)
	}
	// A write retried after a lost reply may find its own first attempt
	// there: a conflict, which change resolves by reading and deciding.
	var nrev uint64
	err = retry.Do(ctx, func(ctx context.Context) error {
		var err error
		if rev == 0 {
			nrev, err = r.kv.Create(ctx, key, b)
		} else {
			nrev, err = r.kv.Update(ctx, key, b, rev)
		}
		return err
	})
	if errors.Is(err, kv.ErrConflict) {
		return 0, err
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, wrapError(TypeStorageError, context.Cause(ctx), map[string]any{"key": key}, "write record %s: %v", key, context.Cause(ctx))
		}
		return 0, wrapError(TypeStorageError, err, map[string]any{"key": key}, "write record %s: %v", key, err)
	}
	if rec.State.Terminal() {
		// Finished records are read back most (every cache hit of a run):
		// keep a key already cached fresh. Keys read before are the ones
		// read again; caching every key written would fill the cache with
		// records nobody here reads (a fleet worker's, a backfill's).
		r.cache.refresh(key, nrev, rec)
	}
	return nrev, nil
}

// held reports whether a run holds the record: its task is queued on the
// fleet or executing.
func held(m *Materialization) bool {
	return m.State == StateRunning || m.State == StatePending && m.QueuedBy != ""
}

// holds reports whether a run other than the record's must keep off it:
// a run holds it (held), or it is a gate that waits, or that let its run
// through and the run has not queued or claimed the asset yet.
func holds(m *Materialization) bool { return held(m) || gating(m) }

// gating reports whether m is a gate that waits, or that let its run
// through (approved, signalled, or expired into OnTimeout) and the run has
// not queued or claimed the asset yet.
func gating(m *Materialization) bool {
	return m.Gate != nil && (m.State.Waiting() || m.State == StatePending)
}

// gateOf is the gate a record of runID keeps from cur, the record it
// replaces: the same run's (a claim, a queue, a hand-back carry a signal's
// payload on to the execution), nil otherwise.
func gateOf(cur *Materialization, runID string) *Gate {
	if cur == nil || cur.RunID != runID {
		return nil
	}
	return cur.Gate
}

// leaseLive reports whether a running record's claim still holds at now.
func leaseLive(m *Materialization, now time.Time) bool {
	return m.State == StateRunning && m.LeaseUntil != nil && now.Before(m.LeaseUntil.Add(leaseSkew))
}

// valueOf is the value a record keeps (nil when there is no record).
func valueOf(m *Materialization) *Value {
	if m == nil {
		return nil
	}
	return m.Value
}

// Pend records that runID waits for the asset's dependencies before it
// runs the asset: pending, with the last good value kept. A record held by
// a run (queued or running) says more and is left alone, as is one this
// run already ended.
func (r *records) Pend(ctx context.Context, key string, id ident, runID string) error {
	_, _, _, err := r.change(ctx, key, view{}, func(cur *Materialization, _ uint64) *Materialization {
		if cur != nil && (holds(cur) || cur.RunID == runID) {
			return nil
		}
		next := id.record(StatePending, runID)
		next.Value = valueOf(cur)
		return next
	})
	return err
}

// Queue marks the asset/partition queued by req's run before its task is
// published. It starts from the record and revision read while planning
// (rec nil and rev 0: there was none) and reads again only on a conflict.
// It returns the outcome, the record as it stands, and its revision.
func (r *records) Queue(ctx context.Context, key string, rec *Materialization, rev uint64, req hook.QueueRequest) (hook.QueueOutcome, *Materialization, uint64, error) {
	id := ident{req.Pipeline, req.Asset, req.Partition}
	outcome := hook.Queued
	cur, nrev, _, err := r.change(ctx, key, view{rec, rev, true}, func(cur *Materialization, _ uint64) *Materialization {
		switch {
		case cur != nil && cur.RunID != req.RunID && holds(cur) && req.Alive(cur.RunID):
			outcome = hook.HeldBy
			return nil
		case cur.Materialized() && (!req.Force || cur.Value.RunID == req.RunID):
			outcome = hook.Materialized
			return nil
		case cur != nil && cur.RunID == req.RunID && held(cur):
			outcome = hook.Requeued
			return nil
		}
		outcome = hook.Queued
		next := id.record(StatePending, req.RunID)
		next.QueuedBy = req.By
		next.Value = valueOf(cur)
		next.Gate = gateOf(cur, req.RunID)
		return next
	})
	return outcome, cur, nrev, err
}

// GiveUp fails runID's task of the asset/partition for good (its
// deliveries are exhausted) unless the run's outcome is recorded already or
// another run has moved the record on. The last good value is kept.
// attempts is how many deliveries the task had. It returns the record as
// it stands and whether GiveUp wrote it.
func (r *records) GiveUp(ctx context.Context, pipeline, asset, partition, runID string, attempts int, fe *Error) (*Materialization, bool, error) {
	id := ident{pipeline, asset, partition}
	cur, _, wrote, err := r.change(ctx, materializationKey(pipeline, asset, partition), view{}, func(cur *Materialization, _ uint64) *Materialization {
		if cur != nil && (cur.RunID != runID || cur.State.Terminal()) {
			return nil
		}
		now := r.now()
		next := id.record(StateFailed, runID)
		next.CompletedAt, next.Error, next.Value = &now, fe, valueOf(cur)
		next.Attempt = attempts
		if cur != nil {
			next.Attempt = max(attempts, cur.Attempt)
			next.Worker, next.StartedAt = cur.Worker, cur.StartedAt
		}
		return next
	})
	return cur, wrote, err
}

// fail records that runID's step of the asset ended without executing:
// its dependency failed, or the run was cancelled or timed out first. A
// record that another run holds or completed is left alone, as is one this
// run already ended.
func (r *records) fail(ctx context.Context, key string, id ident, runID string, fe *Error) error {
	_, _, _, err := r.change(ctx, key, view{}, func(cur *Materialization, _ uint64) *Materialization {
		if cur != nil {
			switch {
			case cur.RunID == runID && cur.State.Terminal(),
				cur.State == StateRunning,
				cur.State == StateCompleted,
				cur.RunID != runID && holds(cur):
				return nil
			}
		}
		now := r.now()
		next := id.record(stateOf(fe), runID)
		next.CompletedAt, next.Error, next.Value = &now, fe, valueOf(cur)
		return next
	})
	return err
}

// seed records v as the completed value of the asset/partition, whatever
// the record held, and returns the value it replaced (nil if none). tried
// reports whether a write was attempted: after an error, one may have
// landed unseen (its reply lost), so the record may point to v.
func (r *records) seed(ctx context.Context, key string, id ident, v *Value) (old *Value, tried bool, err error) {
	_, _, _, err = r.change(ctx, key, view{}, func(cur *Materialization, _ uint64) *Materialization {
		old, tried = valueOf(cur), true
		next := id.record(StateCompleted, v.RunID)
		next.Worker, next.Attempt = SeedRunID, 1
		next.StartedAt, next.CompletedAt = &v.CompletedAt, &v.CompletedAt
		next.Value = v
		return next
	})
	return old, tried, err
}

// invalidate deletes the record under key, whatever it holds, and returns
// what it deleted (nil: there was no record).
func (r *records) invalidate(ctx context.Context, key string) (*Materialization, error) {
	for {
		cur, rev, err := r.Read(ctx, key)
		if err != nil || cur == nil {
			return nil, err
		}
		r.cache.drop(key)
		err = retry.Do(ctx, func(ctx context.Context) error { return r.kv.Delete(ctx, key, rev) })
		if err == nil {
			return cur, nil
		}
		if !errors.Is(err, kv.ErrConflict) {
			return nil, wrapError(TypeStorageError, err, map[string]any{"key": key}, "delete record %s: %v", key, err)
		}
	}
}

// gateOutcome says what openGate found.
type gateOutcome int

const (
	// gateWaits: the record is this run's gate, waiting.
	gateWaits gateOutcome = iota
	// gatePassed: this run may execute the asset (its gate was approved,
	// signalled or expired into OnTimeout, or the run had passed it
	// already: a run resumed after its coordinator stopped).
	gatePassed
	// gateEnded: this run's step ended at its gate (rejected, expired,
	// or the run ended it); the record's Error says why.
	gateEnded
	// gateValue: the record has a value the run may use: no gate, no
	// execution.
	gateValue
	// gateOther: another live run's gate or execution holds the record:
	// the run waits for it.
	gateOther
	// gateFollowed: the gate of the other run this run waited for was
	// rejected or expired: the run's step ends with that decision.
	gateFollowed
)

// gateRequest is a run's step at its asset's gate.
type gateRequest struct {
	id    ident
	runID string
	force bool
	spec  *gateSpec
	// follow names the run whose gate this run waits for (gateOther),
	// whose rejection or expiry ends this run's step too.
	follow string
	// alive reports whether another run is still going.
	alive func(runID string) bool
}

// openGate decides, from the record, where runID's step stands at its
// asset's gate, and opens the gate (the record waits, for this run, with
// the last good value kept) when nothing else holds the record. It
// returns the outcome, the record as it stands, its revision, and whether
// this call opened the gate.
func (r *records) openGate(ctx context.Context, key string, v view, req gateRequest) (gateOutcome, *Materialization, uint64, bool, error) {
	out := gateWaits
	cur, rev, wrote, err := r.change(ctx, key, v, func(cur *Materialization, _ uint64) *Materialization {
		now := r.now()
		switch {
		case cur.Materialized() && (!req.force || cur.Value.RunID == req.runID):
			out = gateValue
			return nil
		case cur != nil && cur.RunID == req.runID:
			switch {
			case cur.State.Waiting():
				out = gateWaits
				return nil
			case cur.State == StateRunning, cur.State == StatePending && (cur.Gate != nil || cur.QueuedBy != ""):
				out = gatePassed
				return nil
			case cur.State.Terminal():
				out = gateEnded
				return nil
			}
			// Pending while its dependencies ran (Pend): open the gate.
		case cur != nil && req.follow != "" && cur.RunID == req.follow && cur.State == StateFailed && cur.Gate != nil &&
			(cur.Gate.Decision == GateRejected || cur.Gate.Decision == GateExpired):
			out = gateFollowed
			return nil
		case cur != nil && holds(cur) && req.alive(cur.RunID) && !(gating(cur) && cur.QueuedBy == "" && gateLapsed(cur.Gate, now)):
			out = gateOther
			return nil
		}
		out = gateWaits
		state := StateWaitingApproval
		if req.spec.kind == GateSignal {
			state = StateWaitingSignal
		}
		next := req.id.record(state, req.runID)
		next.Value = valueOf(cur)
		next.StartedAt = &now
		next.Gate = &Gate{Kind: req.spec.kind, Message: req.spec.message, Context: req.spec.context, OpenedAt: now, Deadline: now.Add(req.spec.wait())}
		return next
	})
	return out, cur, rev, wrote, err
}

// gateLapsed reports whether a gate is past its deadline by more than the
// clock skew allowed: the engine of a run that still waits there, or that
// has not dispatched the asset it let through, should have ended it or
// dispatched it, and is taken to be gone.
func gateLapsed(g *Gate, now time.Time) bool {
	return g != nil && now.After(g.Deadline.Add(leaseSkew))
}

// decideGate approves (GateApproved) or rejects (GateRejected, with the
// error failed makes) the gate that the record waits at, for whichever
// run waits there, keeping the last good value. An approval lets only an
// approval gate pass; a rejection ends either kind. A gate past its
// deadline is not decided: it has expired. It returns the record as it
// stands and whether it decided.
func (r *records) decideGate(ctx context.Context, key string, d GateDecision, reason string, failed func(cur *Materialization) *Error) (*Materialization, bool, error) {
	decided := false
	cur, _, _, err := r.change(ctx, key, view{}, func(cur *Materialization, _ uint64) *Materialization {
		decided = false
		now := r.now()
		if cur == nil || !cur.State.Waiting() || cur.Gate == nil || !now.Before(cur.Gate.Deadline) ||
			d == GateApproved && cur.State != StateWaitingApproval {
			return nil
		}
		decided = true
		next := *cur
		next.Gate = cur.Gate.clone()
		next.Gate.Decision, next.Gate.DecidedAt, next.Gate.Reason = d, &now, reason
		if d == GateApproved {
			next.State = StatePending
			return &next
		}
		next.State, next.Error, next.CompletedAt = StateFailed, failed(cur), &now
		if next.StartedAt != nil {
			next.DurationMS = now.Sub(*next.StartedAt).Milliseconds()
		}
		return &next
	})
	return cur, decided, err
}

// signalGate delivers a signal to the gate c names: if the record still
// waits there for c's run, at the gate opened when c says, before its
// deadline, it becomes pending with the payload for the execution. It
// returns the record as it stands and whether it delivered.
func (r *records) signalGate(ctx context.Context, key string, c tokenClaim, payload []byte) (*Materialization, bool, error) {
	delivered := false
	cur, _, _, err := r.change(ctx, key, view{}, func(cur *Materialization, _ uint64) *Materialization {
		delivered = false
		now := r.now()
		if cur == nil || cur.State != StateWaitingSignal || cur.Gate == nil || cur.RunID != c.RunID ||
			cur.Gate.OpenedAt.UnixNano() != c.Opened || !now.Before(cur.Gate.Deadline) {
			return nil
		}
		delivered = true
		next := *cur
		next.State = StatePending
		next.Gate = cur.Gate.clone()
		next.Gate.Decision, next.Gate.DecidedAt = GateSignalled, &now
		next.Gate.Payload = append(json.RawMessage(nil), payload...)
		return &next
	})
	return cur, delivered, err
}

// expireGate ends runID's gate, opened at opened, once its deadline has
// passed: a signal gate whose asset has an OnTimeout becomes pending, for
// the execution to run it; any other fails with fe (a Timeout error),
// keeping the last good value. It reports whether it expired the gate.
func (r *records) expireGate(ctx context.Context, key, runID string, opened time.Time, onTimeout bool, fe *Error) (bool, error) {
	expired := false
	_, _, _, err := r.change(ctx, key, view{}, func(cur *Materialization, _ uint64) *Materialization {
		expired = false
		now := r.now()
		if cur == nil || !cur.State.Waiting() || cur.Gate == nil || cur.RunID != runID || !cur.Gate.OpenedAt.Equal(opened) ||
			now.Before(cur.Gate.Deadline) {
			return nil
		}
		expired = true
		next := *cur
		next.Gate = cur.Gate.clone()
		next.Gate.Decision, next.Gate.DecidedAt = GateExpired, &now
		if cur.State == StateWaitingSignal && onTimeout {
			next.State = StatePending
			return &next
		}
		next.State, next.Error, next.CompletedAt = StateFailed, fe, &now
		if next.StartedAt != nil {
			next.DurationMS = now.Sub(*next.StartedAt).Milliseconds()
		}
		return &next
	})
	return expired, err
}
