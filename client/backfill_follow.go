package client

import (
	"context"
	"slices"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
)

// How a client follows a backfill.
const (
	// followWait is how long one backfill_status request waits for the
	// record to change (a long poll).
	followWait = 10 * time.Second
	// followRetryMin and followRetryMax bound the pause before asking
	// again when no coordinator answered (they restart, say).
	followRetryMin = 100 * time.Millisecond
	followRetryMax = 2 * time.Second
)

// FollowStallGrace is how long, beyond one partition's run timeout, a
// follower without a deadline waits for a backfill to make progress (a
// partition ending, or a coordinator taking the backfill over) before it
// gives up. A partition ends within its timeout while a coordinator drives
// the backfill; the grace covers the time the fleet takes to notice a dead
// driver and adopt its backfill (under a minute), with room to spare.
const FollowStallGrace = 2 * time.Minute

// FollowBackfill follows the backfill id (a Stats.ID, or the id fsctl
// printed) until it ends, and returns its counts, as Backfill does; it
// re-attaches to a backfill whose Backfill call ended early, or that ran
// with flowstone.Async, and returns at once for one that already ended.
// Of opts only flowstone.OnProgress counts: it is called each time the
// backfill's record shows progress (a few times a second at most), with
// Done and Stats as recorded, and once for each failed partition whose
// error the record keeps (Partition and Err set).
//
// The backfill is followed through any coordinator: a request that no
// coordinator answers (they restart) is sent again. Without a deadline on
// ctx, FollowBackfill waits as long as the backfill makes progress: it
// gives up with a TypeTimeout error only after a partition's run timeout
// plus FollowStallGrace without any. An unknown id is TypeNotFound.
func (c *Client) FollowBackfill(ctx context.Context, id string, opts ...flowstone.BackfillOption) (flowstone.BackfillStats, error) {
	b, err := bridge.ResolveBackfill(opts...)
	if err != nil {
		return flowstone.BackfillStats{}, err
	}
	req := protocol.BackfillStatusRequest{V: protocol.Version, ID: id}
	if perr := req.Validate(); perr != nil {
		return flowstone.BackfillStats{}, bridge.FromWire(perr)
	}
	var progress func(protocol.BackfillStatusReply)
	if b.Progress != nil {
		progress = newRecordProgress(b.Progress).report
	}
	rep, err := c.followBackfill(ctx, id, progress)
	if err != nil {
		return flowstone.BackfillStats{ID: id}, err
	}
	stats := statsOf(rep)
	stats.NotStartedPartitions = c.notStarted(ctx, rep, nil)
	return stats, backfillError(rep)
}

// notStarted names the partitions an ended backfill left out (the first
// flowstone.MaxListedNotStarted, in the order asked): those its record
// does not mark as counted. parts is the backfill's partition list, if
// the caller has it; otherwise it is read from the record's chunks. It
// returns nil when nothing was left out, or when the record cannot be
// read (a client without access to the runs bucket gets the count only).
func (c *Client) notStarted(ctx context.Context, rep protocol.BackfillStatusReply, parts []string) []string {
	if rep.NotStarted == 0 || !rep.State.Terminal() {
		return nil
	}
	value, found, err := c.readRuns(ctx, protocol.BackfillKey(rep.ID))
	if err != nil || !found {
		return nil
	}
	rec, perr := protocol.DecodeBackfillRecord(value)
	if perr != nil {
		return nil
	}
	if len(parts) != rec.Total {
		parts = make([]string, 0, rec.Total)
		for i := range rec.Chunks {
			value, found, err := c.readRuns(ctx, protocol.BackfillPartsKey(rec.ID, i))
			if err != nil || !found {
				return nil
			}
			chunk, perr := protocol.DecodeBackfillPartitions(value)
			if perr != nil || chunk.ID != rec.ID || chunk.Index != i {
				return nil
			}
			parts = append(parts, chunk.Partitions...)
		}
		if len(parts) != rec.Total {
			return nil
		}
	}
	var out []string
	for i, p := range parts {
		if len(out) == flowstone.MaxListedNotStarted {
			break
		}
		if !rec.CountedBit(i) {
			out = append(out, p)
		}
	}
	return out
}

// followBackfill asks for the backfill's record until it is terminal,
// reporting each version to progress (when not nil).
func (c *Client) followBackfill(ctx context.Context, id string, progress func(protocol.BackfillStatusReply)) (protocol.BackfillStatusReply, error) {
	var (
		last     protocol.BackfillStatusReply
		seen     bool
		changed  = time.Now() // when the backfill last made progress
		stall    = flowstone.DefaultRunTimeout + FollowStallGrace
		retry    = followRetryMin
		lastFail error
	)
	for {
		req := protocol.BackfillStatusRequest{V: protocol.Version, ID: id, AfterRevision: last.Revision, WaitMS: followWait.Milliseconds()}
		rctx, cancel := context.WithTimeout(ctx, followWait+c.cfg.timeout)
		rep, err := call[protocol.BackfillStatusReply](rctx, c, req)
		cancel()
		switch {
		case ctx.Err() != nil:
			return last, c.followError(ctx, id, ctx.Err())
		case err != nil && !retryable(err):
			return last, err
		case err != nil:
			// No coordinator answered (they restart), or the one asked
			// stopped: ask again, as long as the backfill may still move.
			lastFail = err
			if time.Since(changed) > stall {
				return last, c.stalledError(id, stall, lastFail)
			}
			select {
			case <-time.After(retry):
			case <-ctx.Done():
				return last, c.followError(ctx, id, ctx.Err())
			}
			retry = min(2*retry, followRetryMax)
			continue
		}
		retry = followRetryMin
		if !seen || rep.Ended() != last.Ended() || rep.State != last.State || rep.Coordinator != last.Coordinator {
			changed = time.Now()
		}
		seen, last = true, rep
		if rep.Request.TimeoutMS > 0 {
			stall = time.Duration(rep.Request.TimeoutMS)*time.Millisecond + FollowStallGrace
		}
		if progress != nil {
			progress(rep)
		}
		if rep.State.Terminal() {
			return rep, nil
		}
		if time.Since(changed) > stall {
			return last, c.stalledError(id, stall, nil)
		}
	}
}

// retryable reports whether a failed status request is worth sending
// again: nobody answered, or not in time.
func retryable(err error) bool {
	t := flowstone.AsError(err).Type
	return t == flowstone.TypeUnavailable || t == flowstone.TypeTimeout
}

// followError explains a follow that ended with ctx.
func (c *Client) followError(ctx context.Context, id string, err error) error {
	e := c.transportError(ctx, "backfill "+id, err)
	if ce, ok := e.(*causedError); ok {
		ce.fe.Details = map[string]any{"backfill_id": id}
		if ce.fe.Type == flowstone.TypeTimeout {
			ce.fe.Message = "backfill " + id + " did not finish in time" + deadlineNote(ctx) +
				": it goes on on the fleet; follow it with fsctl backfill --follow " + id
		} else {
			ce.fe.Message = "stopped following backfill " + id + ": it goes on on the fleet; follow it again with fsctl backfill --follow " + id
		}
	}
	return e
}

// stalledError gives up on a backfill that made no progress for too long.
func (c *Client) stalledError(id string, stall time.Duration, cause error) error {
	msg := "backfill " + id + " made no progress for " + stall.String() + " (no partition ended, no coordinator took it over)"
	details := map[string]any{"backfill_id": id, "stalled_for": stall.String()}
	if cause != nil {
		msg += "; last: " + cause.Error()
		details["cause"] = cause.Error()
	}
	return &flowstone.Error{Type: flowstone.TypeTimeout, Details: details,
		Message: msg + ": check that a coordinator and workers run; it resumes when they do, and fsctl backfill --follow " + id + " re-attaches"}
}

// statsOf is the counts of a backfill as its record tells them.
func statsOf(rep protocol.BackfillStatusReply) flowstone.BackfillStats {
	stats := flowstone.BackfillStats{ID: rep.ID, Succeeded: rep.Succeeded, Failed: rep.Failed, Skipped: rep.Skipped, NotStarted: rep.NotStarted}
	for part, perr := range rep.Errors {
		if stats.Errors == nil {
			stats.Errors = make(map[string]*flowstone.Error, len(rep.Errors))
		}
		stats.Errors[part] = bridge.FromWire(perr)
	}
	return stats
}

// backfillError is the error of a backfill that failed as a whole (not
// one of its partitions): its pipeline changed under it, it was
// cancelled.
func backfillError(rep protocol.BackfillStatusReply) error {
	if rep.Error == nil {
		return nil
	}
	return bridge.FromWire(rep.Error)
}

// recordProgress turns versions of a backfill's record into OnProgress
// reports.
type recordProgress struct {
	fn       func(flowstone.BackfillProgress)
	done     int
	reported map[string]bool // failed partitions reported
}

func newRecordProgress(fn func(flowstone.BackfillProgress)) *recordProgress {
	return &recordProgress{fn: fn, reported: map[string]bool{}}
}

func (r *recordProgress) report(rep protocol.BackfillStatusReply) {
	stats := statsOf(rep)
	ended := rep.Ended()
	var failed []string
	for part := range stats.Errors {
		if !r.reported[part] {
			failed = append(failed, part)
		}
	}
	slices.Sort(failed)
	for _, part := range failed {
		r.reported[part] = true
		r.done = max(r.done, ended)
		r.fn(flowstone.BackfillProgress{Partition: part, Done: r.done, Total: rep.Total, Err: stats.Errors[part], Stats: stats})
	}
	if ended > r.done {
		r.done = ended
		r.fn(flowstone.BackfillProgress{Done: ended, Total: rep.Total, Stats: stats})
	}
}
