package flowstone

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
)

// gateRecheck is how often a step waiting at a gate reads its record
// again, in case a decision made elsewhere (another process on the same
// store, a fleet coordinator whose wake was lost) did not wake it.
const gateRecheck = 5 * time.Second

// gateRetry is the shortest wait between two looks at a gate's record.
const gateRetry = 20 * time.Millisecond

// gateWaiter is a step waiting at a gate, registered by its record's key
// so that a decision made through this engine (Approve, Reject, Signal,
// or a fleet coordinator's wake) wakes it at once, and Cancel reaches it.
type gateWaiter struct {
	wake   chan struct{}
	cancel context.CancelCauseFunc
}

func (e *Engine) addGateWaiter(key string, w *gateWaiter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.gates[key]
	if m == nil {
		m = map[*gateWaiter]struct{}{}
		e.gates[key] = m
	}
	m[w] = struct{}{}
}

func (e *Engine) removeGateWaiter(key string, w *gateWaiter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.gates[key], w)
	if len(e.gates[key]) == 0 {
		delete(e.gates, key)
	}
}

// wakeGate makes the steps waiting at the gate of key read its record
// again.
func (e *Engine) wakeGate(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for w := range e.gates[key] {
		select {
		case w.wake <- struct{}{}:
		default: // woken already
		}
	}
}

// cancelGates cancels the steps waiting at the gate of key with cause and
// returns how many there were.
func (e *Engine) cancelGates(key string, cause error) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for w := range e.gates[key] {
		w.cancel(cause)
	}
	return len(e.gates[key])
}

// gatePass is how a step left its gate.
type gatePass struct {
	// rec and rev are the record the gate left for the execution (the
	// task's planned record).
	rec *Materialization
	rev uint64
	// value, when set, is a record whose value serves the step: nothing
	// executes.
	value *Materialization
}

// awaitGate takes step s of runID through its asset's gate: it opens the
// gate (or finds it open: a run resumed after its coordinator stopped
// keeps waiting where it was), waits for it to be decided or to expire,
// and returns how the step goes on. While another live run's gate holds
// the record, the run waits for that one, and ends with it if it is
// rejected or expires. Nothing is dispatched, and no execution slot is
// held, while it waits.
func (e *Engine) awaitGate(ctx context.Context, p *Pipeline, s *step, partition, runID string, force bool) (gatePass, *Error) {
	n, g := s.n, s.n.def.gate
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := &gateWaiter{wake: make(chan struct{}, 1), cancel: cancel}
	e.addGateWaiter(s.key, w)
	defer e.removeGateWaiter(s.key, w)
	req := gateRequest{id: ident{p.name, n.def.name, partition}, runID: runID, force: force, spec: g,
		alive: func(id string) bool { return e.alive(ctx, id) }}
	for {
		// Read anew each time, the first time too: a record the plan read
		// may have been decided before this step was registered to be
		// woken.
		out, cur, rev, opened, err := e.x.records.openGate(ctx, s.key, view{}, req)
		if err != nil {
			if ctx.Err() != nil {
				return gatePass{}, e.gateEnded(ctx, p, n, partition, runID)
			}
			return gatePass{}, AsError(err)
		}
		var deadline time.Time // when to look again, at the latest
		switch out {
		case gateValue:
			return gatePass{value: cur}, nil
		case gatePassed:
			if cur.State == StatePending && cur.QueuedBy == "" {
				e.gateEvent(cur, runID) // its decision, seen first
			}
			return gatePass{rec: cur, rev: rev}, nil
		case gateEnded, gateFollowed:
			if out == gateEnded {
				e.gateEvent(cur, runID)
			}
			if cur.Error != nil {
				return gatePass{}, cur.Error
			}
			return gatePass{}, newError(TypeExecutionFailed, map[string]any{"asset": n.def.name, "run_id": runID},
				"asset %q ended %s at its gate", n.def.name, cur.State)
		case gateWaits:
			req.follow = ""
			if opened {
				e.gateEvent(cur, runID)
			}
			deadline = cur.Gate.Deadline
		case gateOther:
			req.follow = ""
			if gating(cur) {
				req.follow = cur.RunID
				// Past then, its gate is taken for a dead run's.
				if d := cur.Gate.Deadline.Add(leaseSkew); time.Now().Before(d) {
					deadline = d
				}
			}
		}
		wait := gateRecheck
		if !deadline.IsZero() {
			// Not less than gateRetry: an expiry that cannot be written
			// (the store is down) is tried again, not in a tight loop.
			wait = min(wait, max(time.Until(deadline), gateRetry))
		}
		timer := time.NewTimer(wait)
		select {
		case <-w.wake:
		case <-timer.C:
			if out == gateWaits && !time.Now().Before(cur.Gate.Deadline) {
				e.expireGate(ctx, p, n, s.key, cur)
			}
		case <-ctx.Done():
			timer.Stop()
			return gatePass{}, e.gateEnded(ctx, p, n, partition, runID)
		}
		timer.Stop()
	}
}

// expireGate ends the gate of cur, whose deadline has passed.
func (e *Engine) expireGate(ctx context.Context, p *Pipeline, n *node, key string, cur *Materialization) {
	g := n.def.gate
	fe := newError(TypeTimeout, map[string]any{"pipeline": p.name, "asset": n.def.name, "partition": cur.Partition, "run_id": cur.RunID,
		"gate": string(g.kind), "timeout_ms": g.wait().Milliseconds()},
		"the %s gate of asset %q (partition %q) was not decided within %v", g.kind, n.def.name, cur.Partition, g.wait())
	if g.kind == GateSignal {
		fe.Message = "no signal came for asset \"" + n.def.name + "\" (partition \"" + cur.Partition + "\") within " + g.wait().String()
	}
	if _, err := e.x.records.expireGate(ctx, key, cur.RunID, cur.Gate.OpenedAt, g.kind == GateSignal && g.hasOnTimeout, fe); err != nil && ctx.Err() == nil {
		e.x.logger.Warn().Err(err).Str("key", key).Str("run_id", cur.RunID).Msg("record_write_failed")
	}
}

// gateEnded is stepEnded for a step whose run ended (or that Cancel
// reached) while it waited at its gate: the gate's record says so, unless
// the run was handed back (its coordinator stops; the next one waits on).
func (e *Engine) gateEnded(ctx context.Context, p *Pipeline, n *node, partition, runID string) *Error {
	fe := ctxError(ctx, p.name, n.def.name)
	if errors.Is(context.Cause(ctx), hook.ErrHandedBack) {
		return fe
	}
	_, fe = e.failStep(p, n, partition, runID, fe)
	return fe
}

// gateEvent emits the event of where runID's gate stands in rec: it
// waits, or how it was decided.
func (e *Engine) gateEvent(rec *Materialization, runID string) {
	g := rec.Gate
	if g == nil || rec.RunID != runID || !e.x.events.active() {
		return
	}
	ev := Event{Pipeline: rec.Pipeline, Asset: rec.Asset, Partition: rec.Partition, RunID: runID, Metadata: map[string]any{"gate": string(g.Kind)}}
	switch g.Decision {
	case "":
		ev.Kind, ev.Time = EventGateWait, g.OpenedAt
		ev.Metadata["deadline"] = g.Deadline.UTC().Format(time.RFC3339Nano)
	case GateApproved:
		ev.Kind = EventGateApproved
	case GateRejected:
		ev.Kind, ev.Err = EventGateRejected, rec.Error
	case GateSignalled:
		ev.Kind = EventGateSignalled
	case GateExpired:
		ev.Kind, ev.Err = EventGateExpired, rec.Error
	default:
		return
	}
	if g.DecidedAt != nil {
		ev.Time = *g.DecidedAt
		ev.Duration = g.DecidedAt.Sub(g.OpenedAt)
	}
	if g.Reason != "" {
		ev.Metadata["reason"] = g.Reason
	}
	e.x.events.emit(ev)
}

// gate returns the gate the attempt's claim carried over (nil: none).
func (a *attempt) gate() *Gate {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rec.Gate
}

// assetFunc is the function an execution of n calls: the asset's own, or
// for an asset behind a signal gate the handler of how its gate ended
// (read from the claimed record, which carries the gate over from the
// decision to the execution). nil: the asset has no function here.
func (x *executor) assetFunc(n *node, a *attempt) AssetFunc {
	g := n.def.gate
	if g == nil || g.kind != GateSignal {
		return n.def.fn
	}
	var rg *Gate
	if a != nil {
		rg = a.gate()
	}
	switch {
	case rg != nil && rg.Decision == GateSignalled:
		payload := rg.Payload
		if g.onSignal != nil {
			return func(c *Context) (any, error) { return g.onSignal(c, payload) }
		}
		return func(*Context) (any, error) {
			if len(payload) == 0 {
				return json.RawMessage("null"), nil
			}
			return json.RawMessage(payload), nil
		}
	case rg != nil && rg.Decision == GateExpired && g.onTimeout != nil:
		return g.onTimeout
	}
	return func(c *Context) (any, error) {
		return nil, newError(TypeConfigError, map[string]any{"pipeline": c.p.name, "asset": n.def.name},
			"asset %q waits for a signal: it runs once signalled (Signal) or when its gate expires with an OnTimeout, not before", n.def.name)
	}
}
