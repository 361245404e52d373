package flowstone

import (
	"context"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
)

// The gates' part of fleetHooks (see fleethooks.go).

func (fleetHooks) ResolveApprove(opts ...ApproveOption) hook.ApproveRequest {
	c := newApproveConfig(opts)
	return hook.ApproveRequest{Partition: c.partition, Reason: c.reason}
}

func (fleetHooks) WakeGates(e *Engine, key string) { e.wakeGate(key) }

func (fleetHooks) RunLimit(p *Pipeline, asset string, withDeps bool, timeout time.Duration) (time.Duration, error) {
	n, err := p.lookup(asset)
	if err != nil {
		return 0, err
	}
	return runLimit(n, withDeps, timeout), nil
}

func (fleetHooks) HasGates(p *Pipeline) (approval, signal bool) {
	for _, n := range p.nodes {
		if g := n.def.gate; g != nil {
			approval = approval || g.kind == GateApproval
			signal = signal || g.kind == GateSignal
		}
	}
	return approval, signal
}

func (fleetHooks) Signal(e *Engine, ctx context.Context, token string, payload []byte) (key, asset, partition string, err error) {
	c, key, err := e.signal(ctx, token, payload)
	return key, c.Asset, c.Partition, err
}
