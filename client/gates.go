package client

import (
	"context"
	"encoding/json"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
)

// Approve lets the approval gate of asset pass on the fleet for the
// partition (flowstone.Partition; the default partition without it),
// with an optional flowstone.Reason: the run that waits there, driven by
// whichever coordinator, resumes and runs the asset, then its
// dependents. The errors are flowstone.Engine.Approve's: NotFound when no
// approval waits there, BadRequest for an asset without an approval gate
// or a bad partition.
func (c *Client) Approve(ctx context.Context, pipeline, asset string, opts ...flowstone.ApproveOption) error {
	a := bridge.ResolveApprove(opts...)
	if err := checkPartition(a.Partition); err != nil {
		return err
	}
	_, err := call[protocol.DecisionReply](ctx, c, protocol.ApproveRequest{V: protocol.Version, Pipeline: pipeline, Asset: asset,
		Partition: a.Partition, Reason: a.Reason})
	return err
}

// Reject ends the gate of asset that waits on the fleet for the
// partition, an approval or a signal: the asset fails with a Rejected
// error carrying the reason (flowstone.Reason), its dependents with a
// DependencyFailed error naming it. Errors as Approve's.
func (c *Client) Reject(ctx context.Context, pipeline, asset string, opts ...flowstone.ApproveOption) error {
	a := bridge.ResolveApprove(opts...)
	if err := checkPartition(a.Partition); err != nil {
		return err
	}
	_, err := call[protocol.DecisionReply](ctx, c, protocol.RejectRequest{V: protocol.Version, Pipeline: pipeline, Asset: asset,
		Partition: a.Partition, Reason: a.Reason})
	return err
}

// Approvals lists the gates that wait on the fleet, of pipeline or, for
// "", of every pipeline, oldest first; a signal gate's entry carries the
// token Signal takes.
func (c *Client) Approvals(ctx context.Context, pipeline string) ([]flowstone.WaitingGate, error) {
	r, err := call[protocol.ApprovalsReply](ctx, c, protocol.ApprovalsRequest{V: protocol.Version, Pipeline: pipeline})
	if err != nil {
		return nil, err
	}
	out := make([]flowstone.WaitingGate, len(r.Gates))
	for i, g := range r.Gates {
		out[i] = flowstone.WaitingGate{Pipeline: g.Pipeline, Asset: g.Asset, Partition: g.Partition, RunID: g.RunID, Kind: flowstone.GateKind(g.Kind),
			Message: g.Message, Context: g.Context, OpenedAt: g.OpenedAt, Deadline: g.Deadline, Token: g.Token}
	}
	return out, nil
}

// Signal delivers a signal with payload (JSON, or nil for none) to the
// gate that token names: the run waiting there resumes and the asset's
// OnSignal makes its value from the payload on a worker. A token the
// fleet did not sign is a BadRequest error, a gate that no longer waits
// (signalled already, rejected, expired) a NotFound error; nothing
// changes then. Payload that is not JSON is a BadRequest error before
// anything is sent.
func (c *Client) Signal(ctx context.Context, token string, payload []byte) error {
	if len(payload) > 0 && !json.Valid(payload) {
		return &flowstone.Error{Type: flowstone.TypeBadRequest, Message: "the signal's payload is not JSON", Details: map[string]any{"field": "payload"}}
	}
	_, err := call[protocol.DecisionReply](ctx, c, protocol.SignalRequest{V: protocol.Version, Token: token, Payload: payload})
	return err
}

// gateOf converts a status reply's gate.
func gateOf(g *protocol.GateStatus) *flowstone.Gate {
	if g == nil {
		return nil
	}
	return &flowstone.Gate{Kind: flowstone.GateKind(g.Kind), Message: g.Message, Context: g.Context, OpenedAt: g.OpenedAt, Deadline: g.Deadline,
		Decision: flowstone.GateDecision(g.Decision), DecidedAt: g.DecidedAt, Reason: g.Reason}
}
