package client

import (
	"context"
	"errors"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
)

// Run materializes asset of pipeline on the fleet, with the options of
// flowstone.Run. It returns when the run has ended, with its result (read
// lazily, see Get); with flowstone.Async it returns at once with Result.Job
// set. A failed run returns the run's error: errors.Is(err,
// flowstone.ErrDependencyFailed) and the like work as embedded.
//
// Cancelling ctx stops the waiting, not the run; see the package doc.
func (c *Client) Run(ctx context.Context, pipeline, asset string, opts ...flowstone.RunOption) (*flowstone.Result, error) {
	req, err := bridge.ResolveRun(pipeline, asset, opts...)
	if err != nil {
		return nil, err
	}
	if err := checkPartition(req.Partition); err != nil {
		return nil, err
	}
	wire := wireRun(req)
	reply, err := call[protocol.RunReply](ctx, c, wire)
	if err != nil {
		return nil, err
	}
	if reply.Job != nil {
		job := jobOf(reply.Job)
		return &flowstone.Result{Asset: reply.Asset, Partition: reply.Partition, RunID: reply.RunID, Job: job}, nil
	}
	cached := reply.Cached
	if !cached {
		if reply.LimitMS > 0 {
			// Its gates may wait longer than its timeout: so may we.
			req.Timeout = max(req.Timeout, time.Duration(reply.LimitMS)*time.Millisecond)
		}
		rec, err := c.waitRun(ctx, reply.RunID, req)
		if err != nil {
			return nil, err
		}
		cached = rec.Cached
	}
	getOpts := []flowstone.GetOption{flowstone.Partition(reply.Partition)}
	if req.Storage != "" {
		getOpts = append(getOpts, flowstone.Storage(req.Storage))
	}
	res, err := c.Get(ctx, pipeline, asset, getOpts...)
	if err != nil {
		return nil, err
	}
	res.Cached = cached
	return res, nil
}

// Enqueue sends req as an async run and returns its job, making a Client a
// flowstone.AsyncRunner: an engine built with EngineConfig{Async: c} sends
// its Async runs to the fleet by pipeline name. req reads as the
// engine spells a run out: an empty Partition is the
// default partition, a zero Timeout the default, and WithDeps false runs
// no dependencies.
func (c *Client) Enqueue(ctx context.Context, req flowstone.RunRequest) (*flowstone.Job, error) {
	req.Async = true
	if req.Partition == "" {
		req.Partition = flowstone.DefaultPartition
	}
	reply, err := call[protocol.RunReply](ctx, c, wireRun(req))
	if err != nil {
		return nil, err
	}
	if reply.Job == nil {
		// A coordinator that answered an async run synchronously (cached):
		// report the run as its job.
		state := flowstone.StatePending
		if reply.Cached {
			state = flowstone.StateCompleted
		}
		return &flowstone.Job{ID: reply.RunID, Pipeline: req.Pipeline, Asset: reply.Asset, Partition: reply.Partition,
			Priority: req.Priority, ScheduledAt: req.ScheduledAt, State: state}, nil
	}
	return jobOf(reply.Job), nil
}

// runRecheck is how often a waiting Run reads the run's record again, in
// case an update was lost on the way (a reconnect).
const runRecheck = 5 * time.Second

// waitRun follows the run's record until the run ends; a failed or
// cancelled run returns its error. It subscribes to the record's updates
// (core NATS: the subject its writes are published on) and reads its
// current value with message gets, so it needs no JetStream consumer.
func (c *Client) waitRun(ctx context.Context, runID string, req flowstone.RunRequest) (protocol.RunRecord, error) {
	if _, ok := ctx.Deadline(); !ok {
		// The coordinator fails the run after its timeout; wait that long,
		// plus the request timeout for the news to arrive.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout+c.cfg.timeout)
		defer cancel()
	}
	key := protocol.RunKey(runID)
	subject := kvSubject(protocol.RunsBucket, key)
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		return protocol.RunRecord{}, c.waitError(ctx, runID, req, err)
	}
	defer sub.Unsubscribe()
	// Subscribed before the first read: no update falls in between.
	if err := c.nc.FlushWithContext(ctx); err != nil {
		return protocol.RunRecord{}, c.waitError(ctx, runID, req, err)
	}
	seen := false
	// ended decodes a version of the record: done once the run has ended.
	ended := func(value []byte, found bool) (protocol.RunRecord, bool, error) {
		if !found {
			if seen {
				return protocol.RunRecord{}, true, &flowstone.Error{Type: flowstone.TypeNotFound,
					Message: "the record of run " + runID + " was deleted before the run ended; check the asset with fsctl status",
					Details: runDetails(runID, req)}
			}
			return protocol.RunRecord{}, false, nil
		}
		seen = true
		rec, perr := protocol.DecodeRunRecord(value)
		if perr != nil {
			return protocol.RunRecord{}, true, bridge.FromWire(&protocol.Error{Code: protocol.CodeInternal, Details: runDetails(runID, req),
				Message: "the record of run " + runID + " is unreadable (" + perr.Message + "): a coordinator of another release?"})
		}
		if !rec.State.Terminal() {
			return rec, false, nil
		}
		switch rec.State {
		case protocol.StateCompleted:
			return rec, true, nil
		case protocol.StateCancelled:
			if rec.Error == nil {
				rec.Error = &protocol.Error{Code: protocol.CodeCancelled, Message: "run " + runID + " was cancelled"}
			}
		default:
			if rec.Error == nil {
				rec.Error = &protocol.Error{Code: protocol.CodeExecutionFailed, Message: "run " + runID + " failed without saying why"}
			}
		}
		return rec, true, bridge.FromWire(rec.Error)
	}
	for {
		value, found, err := c.readRuns(ctx, key)
		if err != nil {
			if ctx.Err() != nil {
				return protocol.RunRecord{}, c.waitError(ctx, runID, req, ctx.Err())
			}
			return protocol.RunRecord{}, err
		}
		if rec, done, err := ended(value, found); done {
			return rec, err
		}
		// Then the updates, until the next read.
		if rec, done, err := c.runUpdates(ctx, sub, subject, runID, req, ended); done {
			return rec, err
		}
	}
}

// runUpdates takes the updates of a run's record (sub, on subject) for
// runRecheck, passing each to ended; done once ended says so, or the wait
// failed.
func (c *Client) runUpdates(ctx context.Context, sub *nats.Subscription, subject, runID string, req flowstone.RunRequest,
	ended func([]byte, bool) (protocol.RunRecord, bool, error)) (protocol.RunRecord, bool, error) {
	recheck, cancel := context.WithTimeout(ctx, runRecheck)
	defer cancel()
	for {
		msg, err := sub.NextMsgWithContext(recheck)
		switch {
		case err == nil:
			if rec, done, err := ended(msg.Data, !kvDeleted(msg.Header)); done {
				return rec, true, err
			}
			continue
		case ctx.Err() != nil:
			return protocol.RunRecord{}, true, c.waitError(ctx, runID, req, ctx.Err())
		case recheck.Err() != nil:
			return protocol.RunRecord{}, false, nil
		case errors.Is(err, nats.ErrPermissionViolation):
			return protocol.RunRecord{}, true, subscribeRefused("the wait for run "+runID, subject, err)
		case errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription):
			return protocol.RunRecord{}, true, &flowstone.Error{Type: flowstone.TypeUnavailable,
				Message: "lost the connection to " + c.url() + " while waiting for run " + runID + ": it goes on on the fleet; check it with fsctl status",
				Details: runDetails(runID, req)}
		default:
			return protocol.RunRecord{}, true, c.waitError(ctx, runID, req, err)
		}
	}
}

// waitError explains a wait that ended before the run did.
func (c *Client) waitError(ctx context.Context, runID string, req flowstone.RunRequest, err error) error {
	e := c.transportError(ctx, "run "+runID, err)
	if ce, ok := e.(*causedError); ok {
		ce.fe.Details = runDetails(runID, req)
		if ce.fe.Type == flowstone.TypeTimeout {
			ce.fe.Message = "run " + runID + " of " + req.Asset + " (partition " + req.Partition + ") did not finish in time" + deadlineNote(ctx) +
				": it may still be running on the fleet; check it with fsctl status, or cancel it"
		} else {
			ce.fe.Message = "stopped waiting for run " + runID + " of " + req.Asset + ": it goes on on the fleet; cancel it with fsctl cancel"
		}
	}
	return e
}

func runDetails(runID string, req flowstone.RunRequest) map[string]any {
	return map[string]any{"run_id": runID, "pipeline": req.Pipeline, "asset": req.Asset, "partition": req.Partition}
}

// wireRun converts a resolved run for the wire.
func wireRun(r flowstone.RunRequest) protocol.RunRequest {
	w := protocol.RunRequest{V: protocol.Version, Pipeline: r.Pipeline, Asset: r.Asset, Partition: r.Partition, Force: r.Force,
		Async: r.Async, Storage: r.Storage, Priority: r.Priority, RunID: r.RunID}
	if !r.WithDeps {
		f := false
		w.WithDeps = &f
	}
	if r.Timeout > 0 && r.Timeout != flowstone.DefaultRunTimeout {
		w.TimeoutMS = max(1, r.Timeout.Milliseconds())
	}
	if !r.ScheduledAt.IsZero() {
		t := r.ScheduledAt
		w.ScheduledAt = &t
	}
	return w
}

func jobOf(j *protocol.Job) *flowstone.Job {
	out := &flowstone.Job{ID: j.ID, Pipeline: j.Pipeline, Asset: j.Asset, Partition: j.Partition, Priority: j.Priority, State: flowstone.State(j.State)}
	if j.ScheduledAt != nil {
		out.ScheduledAt = *j.ScheduledAt
	}
	return out
}
