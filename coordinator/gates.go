package coordinator

import (
	"cmp"
	"context"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
)

// Gates on the fleet. The coordinator that drives a run waits at its
// assets' gates in its engine, which reads the gate's record; a decision
// (approve, reject, signal) may reach any coordinator, which writes the
// record through its own engine and then tells every coordinator on
// gateBroadcast, so that the one that drives the run looks at the record
// at once instead of at its next recheck. A run adopted after a restart
// finds its gate's record waiting and waits on; the deadline is in the
// record, so expiry fires whoever drives the run then.

// gateBroadcast reaches every coordinator; its body is the key of the
// record whose gate was decided.
const gateBroadcast = "flowstone.ctl.gate"

// startGates subscribes to gate wakes, and publishes the engine's gate
// events where fsctl watch sees them.
func (c *Coordinator) startGates() error {
	if err := c.subscribe(gateBroadcast, "", func(m *nats.Msg) { bridge.WakeGates(c.engine, string(m.Data)) }); err != nil {
		return unreachable(err, "subscribe gate wakes")
	}
	unsubscribe := bridge.EngineExecutor(c.engine).Subscribe(c.publishGateEvent)
	c.loops.Add(1)
	go func() {
		defer c.loops.Done()
		<-c.ctx.Done()
		unsubscribe()
	}()
	return nil
}

// wakeGates tells every coordinator that the gate of the record under key
// was decided. A lost message costs the driving coordinator a recheck.
func (c *Coordinator) wakeGates(key string) {
	if err := c.nc.Publish(gateBroadcast, []byte(key)); err != nil {
		c.log.Warn().Err(err).Str("key", key).Msg("gate_wake_failed")
	}
}

// publishGateEvent publishes one of the engine's gate events, in a batch
// of its own. (The coordinator's engine executes nothing: its only events
// are its gates'.)
func (c *Coordinator) publishGateEvent(ev flowstone.Event) {
	if !strings.HasPrefix(string(ev.Kind), "gate.") || ev.Pipeline == "" {
		return // the workers publish everything else
	}
	kind := protocol.EventKind(ev.Kind)
	body, perr := protocol.EncodeEventBatch(protocol.EventBatch{V: protocol.Version, Pipeline: ev.Pipeline, Kind: kind, Events: []protocol.Event{{
		V: protocol.Version, Kind: kind, Pipeline: ev.Pipeline, Asset: ev.Asset, Partition: ev.Partition, RunID: ev.RunID,
		Time: ev.Time.UTC(), DurationNS: int64(ev.Duration), Metadata: ev.Metadata, Error: bridge.WireError(ev.Err),
	}}})
	if perr != nil {
		c.log.Debug().Str("error", perr.Message).Str("kind", string(kind)).Msg("gate_event_dropped")
		return
	}
	if err := c.nc.Publish(protocol.EventSubject(ev.Pipeline, kind), body); err != nil {
		c.log.Debug().Err(err).Str("kind", string(kind)).Msg("gate_event_dropped")
	}
}

// RunAlive tells the engine whether the run holding a gate's record is
// still going (see runAlive).
func (d *dispatcher) RunAlive(ctx context.Context, runID string) bool {
	return d.c.runAlive(ctx, runID)
}

// gateStatus converts a record's gate for a status reply.
func gateStatus(g *flowstone.Gate) *protocol.GateStatus {
	if g == nil {
		return nil
	}
	return &protocol.GateStatus{Kind: string(g.Kind), Message: g.Message, Context: g.Context, OpenedAt: g.OpenedAt, Deadline: g.Deadline,
		Decision: string(g.Decision), DecidedAt: g.DecidedAt, Reason: g.Reason}
}

// runLimitMS is RunReply.LimitMS for a run of req: how long it may take,
// set when its gates make that longer than its timeout.
func runLimitMS(p *flowstone.Pipeline, req protocol.RunRequest) int64 {
	timeout := flowstone.DefaultRunTimeout
	if req.TimeoutMS > 0 {
		timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	limit, err := bridge.RunLimit(p, req.Asset, req.RunsDeps(), timeout)
	if err != nil || limit <= timeout {
		return 0
	}
	return limit.Milliseconds()
}

func (c *Coordinator) apiApprove(ctx context.Context, req protocol.ApproveRequest) (protocol.DecisionReply, *protocol.Error) {
	return c.decide(ctx, req.Pipeline, req.Asset, req.Partition, req.Reason, (*flowstone.Engine).Approve)
}

func (c *Coordinator) apiReject(ctx context.Context, req protocol.RejectRequest) (protocol.DecisionReply, *protocol.Error) {
	return c.decide(ctx, req.Pipeline, req.Asset, req.Partition, req.Reason, (*flowstone.Engine).Reject)
}

// decide approves or rejects a gate through this coordinator's engine,
// and wakes the coordinator that drives its run.
func (c *Coordinator) decide(ctx context.Context, pipeline, asset, partition, reason string,
	verb func(*flowstone.Engine, context.Context, *flowstone.Pipeline, string, ...flowstone.ApproveOption) error) (protocol.DecisionReply, *protocol.Error) {
	part := cmp.Or(partition, flowstone.DefaultPartition)
	reply := protocol.DecisionReply{Asset: asset, Partition: part}
	p, perr := c.pipeline(pipeline)
	if perr != nil {
		return reply, perr
	}
	ctx, cancel := withStoreBudget(ctx)
	defer cancel()
	err := verb(c.engine, ctx, p, asset, flowstone.Partition(part), flowstone.Reason(reason))
	if err == nil {
		c.wakeGates(bridge.MaterializationKey(p.Name(), asset, part))
	}
	return reply, wireStore(err)
}

func (c *Coordinator) apiApprovals(ctx context.Context, req protocol.ApprovalsRequest) (protocol.ApprovalsReply, *protocol.Error) {
	var ps []*flowstone.Pipeline
	if req.Pipeline != "" {
		p, perr := c.pipeline(req.Pipeline)
		if perr != nil {
			return protocol.ApprovalsReply{}, perr
		}
		ps = append(ps, p)
	} else {
		for _, s := range c.reg.summaries(ctx) {
			if p, perr := c.pipeline(s.Name); perr == nil {
				ps = append(ps, p)
			}
		}
	}
	reply := protocol.ApprovalsReply{Gates: []protocol.WaitingGate{}}
	for _, p := range ps {
		if approval, signal := bridge.HasGates(p); !approval && !signal {
			continue
		}
		gates, err := c.engine.Approvals(ctx, p)
		if err != nil {
			return protocol.ApprovalsReply{}, wireStore(err)
		}
		for _, g := range gates {
			reply.Gates = append(reply.Gates, protocol.WaitingGate{Pipeline: g.Pipeline, Asset: g.Asset, Partition: g.Partition, RunID: g.RunID,
				Kind: string(g.Kind), Message: g.Message, Context: g.Context, OpenedAt: g.OpenedAt, Deadline: g.Deadline, Token: g.Token})
		}
	}
	return reply, nil
}

func (c *Coordinator) apiSignal(ctx context.Context, req protocol.SignalRequest) (protocol.DecisionReply, *protocol.Error) {
	ctx, cancel := withStoreBudget(ctx)
	defer cancel()
	key, asset, part, err := bridge.Signal(ctx, c.engine, req.Token, req.Payload)
	if key != "" {
		// Delivered, or refused after the token was verified: either
		// way the driver may look again.
		c.wakeGates(key)
	}
	if err != nil {
		return protocol.DecisionReply{}, wireStore(err)
	}
	return protocol.DecisionReply{Asset: asset, Partition: part}, nil
}
