package client

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
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
	if tr != nil {
		progress = tr.fallback(newRecordProgress(b.Progress).report)
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
	if tr != nil {
		tr.finish(stats)
	}
	return stats, backfillError(rep)
}

// progressTracker reports a backfill's partitions as their records end:
// it subscribes to the asset's materialization records as they are
// written (the subject of the bucket's writes, core NATS), so it needs no
// JetStream consumer.
type progressTracker struct {
	b      bridge.BackfillRequest
	byTok  map[string]string // partition token -> partition
	done   map[string]bool
	stats  flowstone.BackfillStats
	cancel context.CancelFunc
	exited chan struct{}
	// failed is set, before exited is closed, when the live watch could not
	// be set up or broke off (a client not allowed to subscribe, say).
	failed bool
}

// trackProgress subscribes to the asset's records before the backfill
// starts, so that every change of a record it sees is the backfill's. If
// the subscription fails (a client not allowed it), the follow's reports
// take over (fallback).
func (c *Client) trackProgress(ctx context.Context, pipeline, asset string, b bridge.BackfillRequest) *progressTracker {
	t := &progressTracker{b: b, byTok: make(map[string]string, len(b.Partitions)),
		done: make(map[string]bool, len(b.Partitions)), exited: make(chan struct{})}
	for _, p := range b.Partitions {
		t.byTok[flowstone.PartitionToken(p)] = p
	}
	ctx, t.cancel = context.WithCancel(ctx)
	fail := func() {
		t.failed = true
		close(t.exited)
	}
	if protocol.ValidName(pipeline) != nil || protocol.ValidName(asset) != nil {
		fail()
		return t
	}
	// Materialization keys are "mat.<pipeline>.<asset>.<partition token>".
	sub, err := c.nc.SubscribeSync(kvSubject(protocol.MaterializationsBucket, "mat."+pipeline+"."+asset+".*"))
	if err != nil {
		fail()
		return t
	}
	// A slow callback must not make the server cut the connection.
	_ = sub.SetPendingLimits(1<<20, 256<<20)
	fctx, cancel := c.withTimeout(ctx)
	err = c.nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		sub.Unsubscribe()
		fail()
		return t
	}
	go t.run(ctx, sub)
	return t
}

func (t *progressTracker) run(ctx context.Context, sub *nats.Subscription) {
	defer sub.Unsubscribe()
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() == nil {
				t.failed = true
			}
			close(t.exited)
			return
		}
		t.observe(msg)
	}
}

// observe reports the partition of a record that shows it ended.
func (t *progressTracker) observe(msg *nats.Msg) {
	subj := msg.Subject
	p, ok := t.byTok[subj[strings.LastIndexByte(subj, '.')+1:]]
	if !ok || t.done[p] || kvDeleted(msg.Header) {
		return
	}
	var rec flowstone.Materialization
	if json.Unmarshal(msg.Data, &rec) != nil || rec.Partition != p || !rec.State.Terminal() {
		return
	}
	if rec.State == flowstone.StateCompleted {
		t.report(p, nil, &t.stats.Succeeded)
		return
	}
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

func (t *progressTracker) report(p string, fe *flowstone.Error, count *int) {
	t.done[p] = true
	*count++
	t.progress(flowstone.BackfillProgress{Partition: p, Done: len(t.done), Total: len(t.b.Partitions), Err: fe, Stats: t.stats})
}

// fallback returns the follow's progress function: report, once the live
// watch has failed (and reported nothing more), nothing before.
func (t *progressTracker) fallback(report func(protocol.BackfillStatusReply)) func(protocol.BackfillStatusReply) {
	return func(rep protocol.BackfillStatusReply) {
		select {
		case <-t.exited:
			if t.failed {
				report(rep)
			}
		default:
		}
	}
}

// stop ends the live watch.
func (t *progressTracker) stop() {
	t.cancel()
	<-t.exited
}

// finish reports, once the backfill has ended with stats, the partitions
// the live watch did not see end: those skipped (materialized before),
// those that left no ended record (a failed dependency, a halt), and any
// whose update was lost on the way; each with its error if stats keeps
// one. Those reports carry stats, the backfill's counts as recorded. A
// tracker whose watch failed reported through the follow: it reports
// nothing more.
func (t *progressTracker) finish(stats flowstone.BackfillStats) {
	if t.failed {
		return
	}
	for _, p := range t.b.Partitions {
		if !t.done[p] {
			t.done[p] = true
			t.progress(flowstone.BackfillProgress{Partition: p, Done: len(t.done), Total: len(t.b.Partitions), Err: stats.Errors[p], Stats: stats})
		}
	}
}

func (t *progressTracker) progress(p flowstone.BackfillProgress) {
	if t.b.Progress != nil {
		t.b.Progress(p)
	}
}
