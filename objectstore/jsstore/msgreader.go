package jsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowstone-go/flowstone/internal/msgget"
	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/internal/integrity"
)

// Reader reads the objects of a bucket with message gets alone
// ($JS.API.STREAM.MSG.GET.OBJ_<bucket>): the object's metadata, then each
// chunk, one request each. Unlike Store, it creates no consumer, looks no
// stream up and never writes, so a connection whose permissions allow
// only that one subject reads objects: the client role of
// deploy/nats.conf reads the fleet's results so. It is slower than
// Store.Get on large objects (a round trip per chunk, the chunk in base64)
// and checks the bytes the same way. It is safe for concurrent use.
type Reader struct {
	nc             *nats.Conn
	bucket         string
	requestTimeout time.Duration
}

// NewReader returns a Reader of bucket's objects over nc. Each request
// is bounded by RequestTimeoutDefault as well as by the caller's context.
func NewReader(nc *nats.Conn, bucket string) *Reader {
	return &Reader{nc: nc, bucket: bucket, requestTimeout: RequestTimeoutDefault}
}

// Stat returns the object's size and SHA-256. A missing or deleted object
// is objectstore.ErrNotFound, and so is a bucket that does not exist.
func (r *Reader) Stat(ctx context.Context, key string) (objectstore.Info, error) {
	oi, err := r.lookup(ctx, "stat", key)
	if err != nil {
		return objectstore.Info{}, err
	}
	return toInfo(key, oi)
}

// Get opens the object's current version, as Store.Get does: the bytes
// read are checked against the recorded length and SHA-256 (a mismatch is
// objectstore.ErrChecksum), and a version replaced or deleted while it is
// read fails with ErrObjectChanged. The reader uses ctx for every request
// it makes.
func (r *Reader) Get(ctx context.Context, key string) (io.ReadCloser, objectstore.Info, error) {
	oi, err := r.lookup(ctx, "get", key)
	if err != nil {
		return nil, objectstore.Info{}, err
	}
	info, err := toInfo(key, oi)
	if err != nil {
		return nil, objectstore.Info{}, err
	}
	body := &msgChunks{ctx: ctx, r: r, key: key, nuid: oi.NUID, chunks: oi.Chunks, next: 1}
	return integrity.NewReader(body, key, info.Size, info.SHA256), info, nil
}

// lookup reads the metadata of key's current version.
func (r *Reader) lookup(ctx context.Context, op, key string) (*jetstream.ObjectInfo, error) {
	if err := objectstore.ValidKey(key); err != nil {
		return nil, err
	}
	m, err := r.get(ctx, func(ctx context.Context) (*msgget.Msg, error) {
		return msgget.Last(ctx, r.nc, streamName(r.bucket), metaSubject(r.bucket, key))
	})
	if errors.Is(err, msgget.ErrNotFound) || errors.Is(err, msgget.ErrNoStream) {
		return nil, fmt.Errorf("jsstore: %s %q: %w (%w)", op, key, objectstore.ErrNotFound, err)
	}
	if err != nil {
		return nil, r.fail(ctx, op, key, err)
	}
	var oi jetstream.ObjectInfo
	if err := json.Unmarshal(m.Data, &oi); err != nil {
		return nil, fmt.Errorf("jsstore: %s %q: its metadata does not decode: %w", op, key, err)
	}
	if oi.Deleted {
		return nil, fmt.Errorf("jsstore: %s %q: %w", op, key, objectstore.ErrNotFound)
	}
	if oi.Opts != nil && oi.Opts.Link != nil {
		return nil, fmt.Errorf("jsstore: %s %q: the object is a link, which jsstore does not follow", op, key)
	}
	return &oi, nil
}

// get makes one request, within one request's time.
func (r *Reader) get(ctx context.Context, fn func(context.Context) (*msgget.Msg, error)) (*msgget.Msg, error) {
	if err := integrity.ContextErr(ctx); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, r.requestTimeout)
	defer cancel()
	return fn(rctx)
}

// fail explains err from op on key, as Store.fail does.
func (r *Reader) fail(ctx context.Context, op, key string, err error) error {
	if ctxErr := integrity.ContextErr(ctx); ctxErr != nil {
		return fmt.Errorf("jsstore: %s %q: %w: %w", op, key, ctxErr, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
		err = fmt.Errorf("%w (%v)", &transient.TimeoutError{Op: "jetstream request", After: r.requestTimeout}, err)
	}
	return fmt.Errorf("jsstore: %s %q: %w", op, key, err)
}

// msgChunks yields the chunks of one object version, each read with a
// message get when the previous one is used up.
type msgChunks struct {
	ctx    context.Context
	r      *Reader
	key    string
	nuid   string
	chunks uint32
	read   uint32 // chunks read
	next   uint64 // the stream sequence to look for the next chunk from
	buf    []byte
}

func (c *msgChunks) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.read == c.chunks {
			return 0, io.EOF
		}
		m, err := c.r.get(c.ctx, func(ctx context.Context) (*msgget.Msg, error) {
			return msgget.Next(ctx, c.r.nc, streamName(c.r.bucket), c.next, chunkSubject(c.r.bucket, c.nuid))
		})
		if errors.Is(err, msgget.ErrNotFound) || errors.Is(err, msgget.ErrNoStream) {
			return 0, c.missing()
		}
		if err != nil {
			return 0, c.r.fail(c.ctx, "read", c.key, err)
		}
		c.read++
		c.next = m.Seq + 1
		c.buf = m.Data
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// missing explains a chunk that is not there: the version was replaced or
// deleted (its chunks purged), or the stream lost it.
func (c *msgChunks) missing() error {
	oi, err := c.r.lookup(c.ctx, "read", c.key)
	switch {
	case errors.Is(err, objectstore.ErrNotFound) || err == nil && oi.NUID != c.nuid:
		return fmt.Errorf("jsstore: read %q: %w: %w", c.key, ErrObjectChanged, objectstore.ErrNotFound)
	case err != nil:
		return err
	}
	return fmt.Errorf("%w: %q: chunk %d of %d is missing from the stream", objectstore.ErrChecksum, c.key, c.read+1, c.chunks)
}

func (c *msgChunks) Close() error { return nil }
