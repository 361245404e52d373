package bridge

import (
	"context"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge/hook"
)

// gateRoot lists the root package's hooks for gates (see root).
type gateRoot interface {
	ResolveApprove(opts ...flowstone.ApproveOption) ApproveRequest
	WakeGates(e *flowstone.Engine, key string)
	RunLimit(p *flowstone.Pipeline, asset string, withDeps bool, timeout time.Duration) (time.Duration, error)
	HasGates(p *flowstone.Pipeline) (approval, signal bool)
	Signal(e *flowstone.Engine, ctx context.Context, token string, payload []byte) (key, asset, partition string, err error)
}

var gr = hook.Root.(gateRoot)

// ApproveRequest is what the options of Approve and Reject describe.
type ApproveRequest = hook.ApproveRequest

// ResolveApprove returns what the options of Approve and Reject describe
// (the partition, DefaultPartition when none is given, and the reason).
func ResolveApprove(opts ...flowstone.ApproveOption) ApproveRequest {
	return gr.ResolveApprove(opts...)
}

// WakeGates makes e's runs waiting at the gate of the record under key
// read it again at once: a fleet coordinator calls it when another one
// tells it a gate was decided.
func WakeGates(e *flowstone.Engine, key string) { gr.WakeGates(e, key) }

// Signal is e.Signal, which also returns, once the token is verified, the
// key of the record it names (for waking the other coordinators), its
// asset and its partition.
func Signal(ctx context.Context, e *flowstone.Engine, token string, payload []byte) (key, asset, partition string, err error) {
	return gr.Signal(e, ctx, token, payload)
}

// RunLimit is how long a run of asset may take given its timeout: the
// timeout and the wait of every gate it may pass.
func RunLimit(p *flowstone.Pipeline, asset string, withDeps bool, timeout time.Duration) (time.Duration, error) {
	return gr.RunLimit(p, asset, withDeps, timeout)
}

// HasGates reports whether p has assets with approval gates and with
// signal gates.
func HasGates(p *flowstone.Pipeline) (approval, signal bool) { return gr.HasGates(p) }
