package client

import (
	"context"
	"errors"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
)

// Watch calls fn with every telemetry event the fleet publishes for the
// pipeline (run, storage and scatter events of every asset) from now until
// ctx is done, one call at a time, in the order received. Workers publish
// events in batches of one kind (protocol.EventBatch), so events of one kind
// arrive in the order they happened, while events of different kinds may
// arrive out of order, up to the batching delay apart. It returns nil when
// ctx is done, and an error if the pipeline name is invalid or the
// subscription fails or is lost. Batches that do not decode are skipped.
func (c *Client) Watch(ctx context.Context, pipeline string, fn func(protocol.Event)) error {
	if err := protocol.ValidName(pipeline); err != nil {
		var pe *protocol.Error
		if errors.As(err, &pe) {
			return bridge.FromWire(pe)
		}
		return &flowstone.Error{Type: flowstone.TypeBadRequest, Message: err.Error()}
	}
	// Every kind's subject is "flowstone.event.<pipeline>.<kind tokens>".
	subject := "flowstone.event." + pipeline + ".>"
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		return c.transportError(ctx, "watch "+pipeline, err)
	}
	defer sub.Unsubscribe()
	// A slow fn must not make the server cut the connection: buffer
	// generously in the client instead.
	_ = sub.SetPendingLimits(1<<20, 256<<20)
	// Flush, so that the subscription is in place when Watch's caller
	// starts what it wants to watch.
	fctx, cancel := c.withTimeout(ctx)
	err = c.nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return c.transportError(fctx, "watch "+pipeline, err)
	}
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return c.transportError(ctx, "watch "+pipeline, err)
		}
		// Each message is a batch of events of one kind, oldest first.
		batch, perr := protocol.DecodeEventBatch(msg.Data)
		if perr != nil || batch.Pipeline != pipeline {
			continue
		}
		for _, ev := range batch.Events {
			fn(ev)
		}
	}
}
