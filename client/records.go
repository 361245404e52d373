package client

import (
	"context"
	"errors"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/msgget"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
)

// The client reads the fleet's KV records as a least-privilege client may:
// a key's current value with a message get on the bucket's stream, and
// its updates by subscribing to the subject the bucket's writes are
// published on. It creates no JetStream consumer and looks no stream up.

// kvSubject is the subject key's writes in bucket are published on.
func kvSubject(bucket, key string) string { return "$KV." + bucket + "." + key }

// kvDeleted reports whether a KV message (its header) deletes its key.
func kvDeleted(h nats.Header) bool {
	op := h.Get("KV-Operation")
	return op == "DEL" || op == "PURGE"
}

// readRuns reads key's current value in the runs bucket; found is false
// when the key has none (never written, or deleted). Each read is bounded
// by the client's timeout as well as by ctx.
func (c *Client) readRuns(ctx context.Context, key string) (value []byte, found bool, err error) {
	stream := "KV_" + protocol.RunsBucket
	wctx, done := c.refused.watch(ctx, msgget.Subject(stream))
	defer done()
	rctx, cancel := context.WithTimeout(wctx, c.cfg.timeout)
	defer cancel()
	m, err := msgget.Last(rctx, c.nc, stream, kvSubject(protocol.RunsBucket, key))
	switch {
	case errors.Is(err, msgget.ErrNotFound):
		return nil, false, nil
	case errors.Is(err, msgget.ErrNoStream):
		return nil, false, &flowstone.Error{Type: flowstone.TypeUnavailable,
			Message: "the fleet's bucket " + protocol.RunsBucket + " does not exist on " + c.url() + ": start a coordinator, which creates it",
			Details: map[string]any{"bucket": protocol.RunsBucket}}
	case err != nil:
		if rerr := refused(wctx, "a read of "+protocol.RunsBucket+"/"+key); rerr != nil {
			return nil, false, rerr
		}
		return nil, false, c.transportError(rctx, "read "+protocol.RunsBucket+"/"+key, err)
	}
	if kvDeleted(m.Header) {
		return nil, false, nil
	}
	return m.Data, true, nil
}
