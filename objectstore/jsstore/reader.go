package jsstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/internal/integrity"
)

const (
	// readAhead bounds the chunk bytes a reader buffers ahead of its caller.
	readAhead = 8 << 20
	// stallCheck is how long a reader waits for a chunk before it checks
	// whether the object was replaced and its chunks purged. Two
	// pullHeartbeats must fit in it.
	stallCheck = 2 * time.Second
	// consumerIdle lets the server drop the consumer of a reader that was
	// never closed.
	consumerIdle = time.Minute
	// resetAttempts bounds how often the ordered consumer behind a reader
	// tries to recreate itself after losing its server, each try taking at
	// most 10 s (nats.go's own limit). nats.go's default is to try without
	// end, inside Next and beyond any context: a reader whose server is
	// gone would block for good.
	resetAttempts = 1
	// pullHeartbeat is how often the server tells an idle pull it is
	// alive (nats.go's shortest). The client counts two missed as a lost
	// pull, and counts afresh at every wait for a chunk (stallCheck), so
	// two must fit in one wait.
	pullHeartbeat = 500 * time.Millisecond
)

// openChunks starts streaming the chunks of the object version oi.
func (s *Store) openChunks(ctx context.Context, key string, oi *jetstream.ObjectInfo) (io.ReadCloser, error) {
	if oi.Size == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	// Creating the consumer is one request: within one request's time,
	// not the caller's whole deadline (a reply lost in a cluster's
	// election would otherwise hold the read until then).
	cons, err := transient.Call(ctx, "jetstream request", s.requestTimeout, func(ctx context.Context) (jetstream.Consumer, error) {
		return s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects:    []string{chunkSubject(s.bucket, oi.NUID)},
			InactiveThreshold: consumerIdle,
			MaxResetAttempts:  resetAttempts,
		})
	})
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages(
		jetstream.PullMaxBytes(max(readAhead, 2*chunkSizeOf(oi))),
		jetstream.StopAfter(int(oi.Chunks)),
		// The consumer just created may live on another server of a
		// cluster, which its first pull can reach before the route has
		// its interest: that pull is lost, and without heartbeats the
		// reader would wait until its context ends (seen on a
		// three-node cluster, about one read in two hundred). Missed
		// heartbeats make the client pull again.
		jetstream.PullHeartbeat(pullHeartbeat),
	)
	if err != nil {
		return nil, err
	}
	return &chunkReader{ctx: ctx, s: s, key: key, nuid: oi.NUID, size: int64(oi.Size), cons: cons, it: it}, nil
}

func chunkSizeOf(oi *jetstream.ObjectInfo) int {
	if oi.Opts != nil && oi.Opts.ChunkSize > 0 {
		return int(oi.Opts.ChunkSize)
	}
	return 128 << 10 // the NATS client's default
}

// chunkReader yields the chunks of one object version in order. The
// integrity.Reader around it checks length and digest.
type chunkReader struct {
	ctx  context.Context
	s    *Store
	key  string
	nuid string
	size int64
	cons jetstream.Consumer
	it   jetstream.MessagesContext

	buf  []byte
	read int64 // bytes of chunks received
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.read >= r.size {
			return 0, io.EOF
		}
		msg, err := r.next()
		if err != nil {
			return 0, err
		}
		r.buf = msg.Data()
		r.read += int64(len(r.buf))
		if meta, err := msg.Metadata(); err == nil && meta.NumPending == 0 && r.read < r.size {
			return 0, r.missing()
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// next waits for the next chunk as long as ctx allows, checking now and
// then that the chunks still exist, and fails with a *transient.TimeoutError
// once it waited the store's stall timeout for this chunk.
func (r *chunkReader) next() (jetstream.Msg, error) {
	stalled := time.Now().Add(r.s.stallTimeout)
	for {
		wait, cancel := context.WithTimeout(r.ctx, max(min(stallCheck, time.Until(stalled)), time.Millisecond))
		msg, err := r.it.Next(jetstream.NextContext(wait))
		ticked := wait.Err() != nil
		cancel()
		switch {
		case err == nil:
			return msg, nil
		case r.ctx.Err() != nil:
			return nil, fmt.Errorf("jsstore: read %q: %w", r.key, integrity.ContextErr(r.ctx))
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			// Not closed by us: its consumer could not be recreated.
			return nil, r.s.fail(r.ctx, "read", r.key, transient.Mark(fmt.Errorf("the stream of chunks broke off: %w", err)))
		case !ticked || !errors.Is(err, context.DeadlineExceeded):
			return nil, r.s.fail(r.ctx, "read", r.key, err)
		}
		// While the server is away the check fails too; keep waiting.
		if err := r.checkCurrent(); err != nil && !transient.Is(err) {
			return nil, err
		}
		if !time.Now().Before(stalled) {
			return nil, fmt.Errorf("jsstore: read %q after %d of %d bytes: %w", r.key, r.read, r.size,
				&transient.TimeoutError{Op: "jetstream chunk", After: r.s.stallTimeout})
		}
	}
}

// checkCurrent reports ErrObjectChanged once the version being read is no
// longer the key's current one, and the error of looking that up.
func (r *chunkReader) checkCurrent() error {
	cur, err := r.s.info(r.ctx, r.key)
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound) || err == nil && (cur.NUID != r.nuid || cur.Deleted):
		return fmt.Errorf("jsstore: read %q: %w: %w", r.key, ErrObjectChanged, objectstore.ErrNotFound)
	case err != nil:
		return r.s.fail(r.ctx, "read", r.key, err)
	}
	return nil
}

// missing explains chunks that can no longer arrive.
func (r *chunkReader) missing() error {
	if err := r.checkCurrent(); err != nil {
		return err
	}
	return fmt.Errorf("%w: %q: the stream holds %d of its %d bytes", objectstore.ErrChecksum, r.key, r.read, r.size)
}

// Close stops the stream of chunks and deletes the consumer behind it.
func (r *chunkReader) Close() error {
	r.it.Stop()
	// Best effort: the server drops an idle consumer after consumerIdle,
	// so do not wait for a server that is away.
	if info := r.cons.CachedInfo(); info != nil && r.s.js.Conn().Status() == nats.CONNECTED {
		_, _ = transient.Call(context.WithoutCancel(r.ctx), "jetstream request", r.s.requestTimeout, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, r.s.stream.DeleteConsumer(ctx, info.Name)
		})
	}
	return nil
}
