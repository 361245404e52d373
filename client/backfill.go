package client

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

// Backfill runs asset over the partitions (flowstone.Partitions,
// flowstone.DateRange) on the fleet, up to flowstone.Parallel at a time,
// and returns the counts. As embedded, a failed partition is counted, not
// returned; the error return is for bad arguments and an unreachable fleet.
//
// The fleet records the backfill and answers with its id at once; Backfill
// then follows it by id (see FollowBackfill) until it ends, whichever
// coordinator drives it and through the death of its driver (another
// coordinator, or the same one restarted, adopts it). Without a deadline
// on ctx it waits as long as the backfill makes progress. If the waiting
// ends early, the error names the backfill's id (Details["backfill_id"]):
// the backfill goes on, and FollowBackfill re-attaches to it. Stats.ID is
// the id too. Stats.Errors holds the errors of the first
// protocol.MaxBackfillErrors failed partitions.
//
// With flowstone.OnProgress the client watches the asset's
// materialization records while the backfill runs: the callback is called
// after each partition ends, from one goroutine at a time. Partitions that
// leave no record of their end (one whose dependency failed, one not
// started after OnError(Halt)) are reported when the backfill returns. A
// client that may not watch the records (least privilege) gets reports as
// FollowBackfill makes them.
//
// With flowstone.Async Backfill returns at once, with zero counts and the
// backfill's id in Stats.ID: follow it later with FollowBackfill.
func (c *Client) Backfill(ctx context.Context, pipeline, asset string, opts ...flowstone.BackfillOption) (flowstone.BackfillStats, error) {
	b, err := bridge.ResolveBackfill(opts...)
	if err != nil {
		return flowstone.BackfillStats{}, err
	}
	if len(b.Partitions) == 0 {
		return flowstone.BackfillStats{}, &flowstone.Error{Type: flowstone.TypeBadRequest, Details: map[string]any{"asset": asset},
			Message: "backfill of " + asset + " needs partitions: pass flowstone.Partitions(...) or flowstone.DateRange(from, to)"}
	}
	// Always async on the wire: the coordinator answers once the backfill
	// is recorded, and the client follows the record.
	req := protocol.BackfillRequest{V: protocol.Version, Pipeline: pipeline, Asset: asset, Partitions: b.Partitions,
		Parallel: b.Parallel, Force: b.Force, OnError: protocol.OnErrorContinue, Async: true, Priority: b.Priority}
	if b.OnError == flowstone.Halt {
		req.OnError = protocol.OnErrorHalt
	}
	if !b.WithDeps {
		req.WithDeps = &b.WithDeps
	}
	if b.Timeout != flowstone.DefaultRunTimeout {
		req.TimeoutMS = b.Timeout.Milliseconds()
	}
	if perr := req.Validate(); perr != nil {
		return flowstone.BackfillStats{}, bridge.FromWire(perr)
	}

	var tr *progressTracker
	if !b.Async && b.Progress != nil {
		tr = c.trackProgress(ctx, pipeline, asset, b)
	}
	reply, err := call[protocol.BackfillReply](ctx, c, req)
	if err != nil {
		if tr != nil {
			tr.stop()
		}
		return flowstone.BackfillStats{}, err
	}
	id := reply.RunID
	if b.Async {
		return flowstone.BackfillStats{ID: id}, nil
	}
	var progress func(protocol.BackfillStatusReply)
	if tr != nil && tr.kv == nil {
		progress = newRecordProgress(b.Progress).report
	}
	rep, err := c.followBackfill(ctx, id, progress)
	if tr != nil {
		tr.stop()
	}
	if err != nil {
		return flowstone.BackfillStats{ID: id}, err
	}
	stats := statsOf(rep)
	stats.NotStartedPartitions = c.notStarted(ctx, rep, b.Partitions)
	if tr != nil && tr.kv != nil {
		tr.finish(ctx)
	}
	return stats, backfillError(rep)
}

// progressTracker reports a backfill's partitions as their records end.
type progressTracker struct {
	b      bridge.BackfillRequest
	kv     jetstream.KeyValue
	filter string
	byTok  map[string]string // partition token -> partition
	before map[string]string // partition -> run id of the result before the backfill
	done   map[string]bool
	stats  flowstone.BackfillStats
	cancel context.CancelFunc
	exited chan struct{}
}

// trackProgress starts watching the asset's records and returns once the
// records as they were are read, so that every later change is the
// backfill's. If the watch cannot be set up (a client without access to
// the bucket, say), the tracker reports every partition at the end.
func (c *Client) trackProgress(ctx context.Context, pipeline, asset string, b bridge.BackfillRequest) *progressTracker {
	t := &progressTracker{b: b, byTok: make(map[string]string, len(b.Partitions)), before: map[string]string{},
		done: make(map[string]bool, len(b.Partitions)), exited: make(chan struct{})}
	for _, p := range b.Partitions {
		t.byTok[flowstone.PartitionToken(p)] = p
	}
	ctx, t.cancel = context.WithCancel(ctx)
	var w jetstream.KeyWatcher
	if protocol.ValidName(pipeline) == nil && protocol.ValidName(asset) == nil {
		if mats, err := c.bucket(ctx, protocol.MaterializationsBucket, &c.mats); err == nil {
			// Materialization keys are "mat.<pipeline>.<asset>.<partition token>".
			t.filter = "mat." + pipeline + "." + asset + ".*"
			if w, err = mats.Watch(ctx, t.filter); err == nil {
				t.kv = mats
			}
		}
	}
	if t.kv == nil {
		close(t.exited)
		return t
	}
	ready := make(chan struct{})
	go t.run(ctx, w, ready)
	select {
	case <-ready:
	case <-t.exited:
	case <-ctx.Done():
	}
	return t
}

func (t *progressTracker) run(ctx context.Context, w jetstream.KeyWatcher, ready chan struct{}) {
	defer close(t.exited)
	defer w.Stop()
	initial := true
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				if initial {
					initial = false
					close(ready)
				}
				continue
			}
			t.observe(e, initial)
		}
	}
}

// observe reports the partition of a record that shows it ended. Initial
// records are the state before the backfill: a completed one is skipped,
// unless Force re-runs it.
func (t *progressTracker) observe(e jetstream.KeyValueEntry, initial bool) {
	key := e.Key()
	p, ok := t.byTok[key[strings.LastIndexByte(key, '.')+1:]]
	if !ok || t.done[p] || e.Operation() != jetstream.KeyValuePut {
		return
	}
	var rec flowstone.Materialization
	if json.Unmarshal(e.Value(), &rec) != nil || rec.Partition != p {
		return
	}
	if initial {
		if rec.State == flowstone.StateCompleted {
			if !t.b.Force {
				t.report(p, nil, &t.stats.Skipped)
			} else {
				t.before[p] = rec.RunID
			}
		}
		return
	}
	switch {
	case !rec.State.Terminal():
	case rec.State == flowstone.StateCompleted && t.b.Force && rec.RunID == t.before[p]:
	case rec.State == flowstone.StateCompleted:
		t.report(p, nil, &t.stats.Succeeded)
	default:
		fe := rec.Error
		if fe == nil {
			fe = &flowstone.Error{Type: flowstone.TypeExecutionFailed, Message: "partition " + p + " ended " + string(rec.State)}
		}
		if t.stats.Errors == nil {
			t.stats.Errors = map[string]*flowstone.Error{}
		}
		t.stats.Errors[p] = fe
		t.report(p, fe, &t.stats.Failed)
	}
}

func (t *progressTracker) report(p string, fe *flowstone.Error, count *int) {
	t.done[p] = true
	*count++
	t.progress(flowstone.BackfillProgress{Partition: p, Done: len(t.done), Total: len(t.b.Partitions), Err: fe, Stats: t.stats})
}

// stop ends the live watch.
func (t *progressTracker) stop() {
	t.cancel()
	<-t.exited
}

// finish reports what the live watch had not seen yet: it reads the
// records as they are now (a fresh watch's initial values), then reports
// the partitions that left no ended record (a failed dependency, a halt)
// without an error.
func (t *progressTracker) finish(ctx context.Context) {
	if t.kv != nil && len(t.done) < len(t.b.Partitions) {
		if w, err := t.kv.Watch(ctx, t.filter); err == nil {
		drain:
			for {
				select {
				case e, ok := <-w.Updates():
					if !ok || e == nil {
						break drain
					}
					t.observe(e, false)
				case <-ctx.Done():
					break drain
				}
			}
			w.Stop()
		}
	}
	for _, p := range t.b.Partitions {
		if !t.done[p] {
			t.done[p] = true
			t.progress(flowstone.BackfillProgress{Partition: p, Done: len(t.done), Total: len(t.b.Partitions), Stats: t.stats})
		}
	}
}

func (t *progressTracker) progress(p flowstone.BackfillProgress) {
	if t.b.Progress != nil {
		t.b.Progress(p)
	}
}
