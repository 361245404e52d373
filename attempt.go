package flowstone

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
)

// startOutcome says what a claim found.
type startOutcome int

const (
	// claimed: the record is this execution's (running); execute.
	claimed startOutcome = iota
	// finished: the record holds the task's outcome already (a value the
	// task may use, or this run's end); nothing to execute.
	finished
	// busy: another execution's live claim holds the record; wait.
	busy
	// stale: the record has moved on to another run since the task was
	// queued; the task does not run.
	stale
)

// attempt is one execution's claim on its record: every write the
// execution makes (lease renewals, scatter progress, its outcome) goes
// through it, one at a time, by compare-and-set on the revision it wrote
// last. Should the record change under it to anything but its own claim,
// the attempt has been taken over: it stops writing and its execution is
// cancelled.
type attempt struct {
	r   *records
	key string
	// cancel ends the execution's context (with the cause hook.ErrSuperseded
	// when taken over, errLeaseLapsed when the lease could not be kept).
	cancel context.CancelCauseFunc
	lease  time.Duration
	// Of the claim, fixed: its attempt number, when it started, and the
	// value it carried over (the one a completed outcome replaces).
	number  int
	started time.Time
	prev    *Value

	mu      sync.Mutex
	rec     Materialization // as this attempt last wrote it
	rev     uint64
	over    bool      // finished or taken over: no more writes
	lapsed  bool      // the lease could not be kept: no more renewals
	renewAt time.Time // when the lease is renewed next
	// scatter is a scatter asset's final counts, for its outcome.
	scatter *ScatterStatus
	// afterOutcome, if set, runs once the outcome is written (a scatter
	// drops its batches' outcomes).
	afterOutcome func(ctx context.Context)
}

// errLeaseLapsed is the cause of an execution cancelled because its lease
// could not be renewed in time (the metadata store was unreachable): past
// its end another process may take the task over, so this one must stop.
// The task is handed back.
var errLeaseLapsed = errors.Join(errors.New("flowstone: the record's lease lapsed before it could be renewed"), hook.ErrHandedBack)

// claimRequest is what a claim needs to know of its execution.
type claimRequest struct {
	id     ident
	task   *task
	worker string
	lease  time.Duration
	// stall, when set, is the revision of a running record whose lease
	// has not moved for a whole lease by this process's clock: its holder
	// is taken to be gone, however its clock reads.
	stall uint64
}

// claim decides, from the record, whether the task runs here, and if so
// marks the record running with this execution's lease.
func (r *records) claim(ctx context.Context, key string, v view, req claimRequest) (startOutcome, *Materialization, uint64, error) {
	t := req.task
	out := claimed
	var tried *Materialization // the claim last written, maybe landed unseen
	cur, rev, _, err := r.change(ctx, key, v, func(cur *Materialization, rev uint64) *Materialization {
		now := r.now()
		if tried != nil && cur != nil && cur.State == StateRunning && cur.RunID == t.RunID && cur.Attempt == tried.Attempt &&
			cur.Worker == tried.Worker && cur.StartedAt != nil && cur.StartedAt.Equal(*tried.StartedAt) {
			// Our claim, written by an attempt whose reply was lost.
			out = claimed
			return nil
		}
		switch {
		case cur.Materialized() && (cur.Value.RunID == t.RunID || !t.Force):
			out = finished
			return nil
		case cur != nil && cur.RunID == t.RunID && cur.State.Terminal():
			out = finished
			return nil
		case cur != nil && leaseLive(cur, now) && rev != req.stall:
			out = busy
			return nil
		case cur != nil && cur.RunID != t.RunID && t.ExpectedRevision > 0:
			// Another run wrote the record after this task's run queued
			// it: that run's execution is the newer one.
			out = stale
			return nil
		}
		out = claimed
		next := req.id.record(StateRunning, t.RunID)
		next.Worker = req.worker
		next.Attempt = max(t.Attempt, 1)
		if cur != nil && cur.RunID == t.RunID {
			next.Attempt = max(next.Attempt, cur.Attempt+1)
		}
		until := now.Add(req.lease)
		next.LeaseUntil, next.StartedAt = &until, &now
		next.Value = valueOf(cur)
		next.Gate = gateOf(cur, t.RunID)
		tried = next
		return next
	})
	return out, cur, rev, err
}

// newAttempt holds the claim rec (at rev) for an execution.
func (r *records) newAttempt(key string, rec *Materialization, rev uint64, lease time.Duration, cancel context.CancelCauseFunc) *attempt {
	a := &attempt{r: r, key: key, cancel: cancel, lease: lease, rec: *rec, rev: rev,
		number: rec.Attempt, started: *rec.StartedAt, prev: rec.Value}
	a.renewAt = rec.StartedAt.Add(lease / 3)
	return a
}

// mine reports whether cur is this attempt's claim, whatever its revision
// (a write whose reply was lost leaves the record at a revision the
// attempt never saw).
func (a *attempt) mine(cur *Materialization) bool {
	return cur != nil && cur.State == StateRunning && cur.RunID == a.rec.RunID && cur.Attempt == a.rec.Attempt
}

// rewrite writes the claim again with change applied, if the record is
// still this attempt's; otherwise the attempt is over and its execution
// is cancelled with hook.ErrSuperseded. a.mu is held.
func (a *attempt) rewrite(ctx context.Context, change func(m *Materialization)) error {
	if a.over {
		return nil
	}
	next := a.rec
	change(&next)
	took := false
	_, rev, wrote, err := a.r.change(ctx, a.key, view{&a.rec, a.rev, true}, func(cur *Materialization, rev uint64) *Materialization {
		if rev == a.rev || a.mine(cur) {
			n := next
			return &n
		}
		took = true
		return nil
	})
	switch {
	case err != nil:
		return err
	case wrote:
		a.rec, a.rev = next, rev
	case took:
		a.over = true
		a.cancel(hook.ErrSuperseded)
		return hook.ErrSuperseded
	}
	return nil
}

// renew extends the lease if it is due, and cancels the execution if the
// lease is about to lapse without a renewal: a claim the process cannot
// keep must not outlive its lease.
func (a *attempt) renew(ctx context.Context, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.over || a.lapsed || now.Before(a.renewAt) {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, a.lease/6)
	err := a.rewrite(wctx, func(m *Materialization) {
		until := now.Add(a.lease)
		m.LeaseUntil = &until
	})
	cancel()
	if err == nil {
		a.renewAt = now.Add(a.lease / 3)
		return
	}
	if errors.Is(err, hook.ErrSuperseded) {
		return
	}
	// Try again at the next tick, unless the lease ends before it could.
	if !now.Add(a.lease / 6).Before(*a.rec.LeaseUntil) {
		a.lapsed = true
		a.cancel(errLeaseLapsed)
	}
}

// progress records a scatter asset's counts while it runs (its driver
// calls it as batches end, at most every scatterProgressEvery), so that
// Status shows them. Counts already recorded write nothing.
func (a *attempt) progress(ctx context.Context, st ScatterStatus) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.rec.Scatter; p != nil && p.Total == st.Total && p.Completed == st.Completed &&
		p.Failed == st.Failed && p.Cancelled == st.Cancelled && p.Pending == st.Pending {
		return
	}
	st.FailedItems = nil
	a.rewrite(ctx, func(m *Materialization) { m.Scatter = &st })
}

// finish records the execution's outcome: out is the record to write
// (its Value is set for a completed outcome; otherwise the record's
// current value is kept). If the record is no longer this attempt's, the
// outcome is written only where it destroys nothing newer: over no record
// at all (invalidated meanwhile), or a completed value over this run's
// failure. It returns the record as it stands and whether out was written.
func (a *attempt) finish(ctx context.Context, out *Materialization) (*Materialization, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.over {
		cur, _, err := a.r.Read(ctx, a.key)
		return cur, false, err
	}
	a.over = true
	cur, _, wrote, err := a.r.change(ctx, a.key, view{&a.rec, a.rev, true}, func(cur *Materialization, rev uint64) *Materialization {
		switch {
		case rev == a.rev, cur == nil, a.mine(cur),
			out.State == StateCompleted && cur.RunID == out.RunID && (cur.State == StateFailed || cur.State == StateCancelled):
		default:
			return nil
		}
		n := *out
		if n.State != StateCompleted {
			n.Value = valueOf(cur)
		}
		return &n
	})
	if err == nil && !wrote && cur != nil && cur.RunID == out.RunID && cur.Attempt == out.Attempt && cur.State == out.State {
		// The outcome is there already: an earlier write of it whose
		// reply was lost.
		wrote = true
	}
	return cur, wrote, err
}
