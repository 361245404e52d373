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

// Watch calls fn with every telemetry event the fleet publishes for the
// pipeline (run, storage and scatter events of every asset) from now until
// ctx is done, one call at a time. The events of each worker come in the
// order they happened: workers publish them in batches of one kind
// (protocol.EventBatch), so they arrive out of that order, and Watch puts
// them back by the numbers workers stamp on them (protocol.EventSeqKey),
// holding an event until those before it have arrived (a few
// milliseconds; after a message lost on the way, at most a couple of
// seconds). Events of different workers come in the order they arrive.
// It returns nil when ctx is done, and an error if the pipeline name is
// invalid or the subscription fails or is lost (a TypeConfigError when the
// server refuses it: the client's NATS user may not subscribe to the
// events). Batches that do not decode are skipped.
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
	order := newEventOrder()
	for {
		// While events are held, wait no longer than they may be.
		mctx, cancel := ctx, context.CancelFunc(func() {})
		if at, ok := order.due(); ok {
			mctx, cancel = context.WithDeadline(ctx, at)
		}
		msg, err := sub.NextMsgWithContext(mctx)
		held := mctx.Err() != nil // the wait for held events ended
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil && held:
			order.expire(time.Now(), fn)
			continue
		case errors.Is(err, nats.ErrPermissionViolation):
			return subscribeRefused("watch "+pipeline, subject, err)
		case err != nil:
			return c.transportError(ctx, "watch "+pipeline, err)
		}
		// Each message is a batch of events of one kind, oldest first.
		batch, perr := protocol.DecodeEventBatch(msg.Data)
		if perr != nil || batch.Pipeline != pipeline {
			continue
		}
		now := time.Now()
		order.add(msg, batch.Events, now, fn)
		order.expire(now, fn)
	}
}
