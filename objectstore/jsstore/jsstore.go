package jsstore

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/internal/transient/natserr"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/internal/integrity"
)

// ErrObjectChanged means the object was overwritten or deleted while a
// reader was streaming it. It also matches objectstore.ErrNotFound: the
// version being read is gone. Get the key again for the current version.
var ErrObjectChanged = errors.New("jsstore: object changed while being read")

// Store keeps objects in a JetStream object store bucket. It is safe for
// concurrent use.
type Store struct {
	bucket         string
	js             jetstream.JetStream
	obs            atomic.Pointer[jetstream.ObjectStore] // see withHandle
	stream         jetstream.Stream
	chunkSize      uint32
	requestTimeout time.Duration
	stallTimeout   time.Duration
	putLocks       keyLocks
	leftovers      leftovers
}

var _ objectstore.Store = (*Store)(nil)

// New opens the object store bucket, creating it with file storage and the
// options if it is missing. Options never change an existing bucket. A
// bucket created with more than one replica answers reads from its leader
// only (see leaderReads).
func New(ctx context.Context, js jetstream.JetStream, bucket string, opts ...Option) (*Store, error) {
	o := options{replicas: 1, requestTimeout: RequestTimeoutDefault, stallTimeout: StallTimeoutDefault}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	maxPayload := js.Conn().MaxPayload()
	chunkSize := o.chunkSize
	if chunkSize == 0 {
		chunkSize = uint32(min(ChunkSizeDefault, maxPayload))
	}
	if int64(chunkSize) > maxPayload {
		return nil, fmt.Errorf("%w: WithChunkSize(%d) exceeds the server's max_payload of %d bytes", ErrInvalidOption, chunkSize, maxPayload)
	}

	obs, err := js.ObjectStore(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      bucket,
			Description: cmp.Or(o.description, "flowstone objects"),
			Storage:     jetstream.FileStorage,
			Replicas:    o.replicas,
			TTL:         o.ttl,
			MaxBytes:    cmp.Or(o.maxBytes, -1),
		})
		if err == nil && o.replicas > 1 {
			if err = leaderReads(ctx, js, streamName(bucket)); err == nil {
				obs, err = js.ObjectStore(ctx, bucket)
			}
		}
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Created by someone else meanwhile.
			obs, err = js.ObjectStore(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jsstore: open object store bucket %q: %w", bucket, natserr.Mark(err))
	}
	stream, err := js.Stream(ctx, streamName(bucket))
	if err != nil {
		return nil, fmt.Errorf("jsstore: open the stream of bucket %q: %w", bucket, natserr.Mark(err))
	}
	st := &Store{bucket: bucket, js: js, stream: stream, chunkSize: chunkSize,
		requestTimeout: o.requestTimeout, stallTimeout: o.stallTimeout}
	st.obs.Store(&obs)
	return st, nil
}

// withHandle calls fn with the bucket's nats.go handle. A handle reads
// metadata the way the stream allowed when it was bound (direct gets, or
// the leader's): should the stream's setting change since (the process
// that created the bucket turns direct gets off just after creating it,
// and others may have bound it in between), its reads find no responders.
// Then the bucket is bound again and fn called once more. Callers bound
// ctx to one request's time.
func withHandle[T any](ctx context.Context, s *Store, fn func(jetstream.ObjectStore) (T, error)) (T, error) {
	v, err := fn(*s.obs.Load())
	if !natserr.Unanswered(err) {
		return v, err
	}
	obs, berr := s.js.ObjectStore(ctx, s.bucket)
	if berr != nil {
		return v, err
	}
	s.obs.Store(&obs)
	return fn(obs)
}

// Name returns "jetstream".
func (s *Store) Name() string { return "jetstream" }

// Put streams the object into the bucket in chunks, a few in flight at a
// time, and commits it with its metadata message; Puts of one key through
// one Store take turns. A failed Put leaves the key as it was: its chunks
// are purged (later, by another Put, if the server cannot be reached), so
// putting the same bytes again is safe.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (objectstore.Info, error) {
	if err := objectstore.ValidKey(key); err != nil {
		return objectstore.Info{}, err
	}
	if err := integrity.ContextErr(ctx); err != nil {
		return objectstore.Info{}, fmt.Errorf("jsstore: put %q: %w", key, err)
	}
	unlock, err := s.putLocks.lock(ctx, key)
	if err != nil {
		return objectstore.Info{}, fmt.Errorf("jsstore: put %q: %w", key, err)
	}
	src := integrity.NewSource(ctx, r, size)
	oi, err := s.write(ctx, key, src)
	unlock()
	if err != nil {
		return objectstore.Info{}, s.fail(ctx, "put", key, err)
	}
	s.sweepLeftovers(ctx)
	return toInfo(key, oi)
}

// purgeIfSuperseded drops the chunks of the version just written if another
// process's Put replaced it before its metadata landed: that Put purged only
// the version it saw when it started. Within a Store putLocks rules this
// out; across processes this narrows the window for stranded chunks to the
// moment between another Put's commit and its own check.
func (s *Store) purgeIfSuperseded(ctx context.Context, key, nuid string) {
	cur, err := s.info(context.WithoutCancel(ctx), key)
	if err != nil || cur.NUID == nuid {
		return
	}
	s.purgeChunks(ctx, key, nuid)
}

// Get opens the object and streams its chunks as they are read.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, objectstore.Info, error) {
	oi, err := s.lookup(ctx, "get", key)
	if err != nil {
		return nil, objectstore.Info{}, err
	}
	info, err := toInfo(key, oi)
	if err != nil {
		return nil, objectstore.Info{}, err
	}
	body, err := s.openChunks(ctx, key, oi)
	if err != nil {
		return nil, objectstore.Info{}, s.fail(ctx, "get", key, err)
	}
	return integrity.NewReader(body, key, info.Size, info.SHA256), info, nil
}

// Stat reads the object's metadata message.
func (s *Store) Stat(ctx context.Context, key string) (objectstore.Info, error) {
	oi, err := s.lookup(ctx, "stat", key)
	if err != nil {
		return objectstore.Info{}, err
	}
	return toInfo(key, oi)
}

// Delete marks the object deleted and purges its chunks.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := objectstore.ValidKey(key); err != nil {
		return err
	}
	if err := integrity.ContextErr(ctx); err != nil {
		return fmt.Errorf("jsstore: delete %q: %w", key, err)
	}
	// Several requests (read the metadata, mark it deleted, purge the
	// chunks), each quick: one request's time for all of them.
	_, err := transient.Call(ctx, "jetstream request", s.requestTimeout, func(ctx context.Context) (struct{}, error) {
		return withHandle(ctx, s, func(obs jetstream.ObjectStore) (struct{}, error) { return struct{}{}, obs.Delete(ctx, key) })
	})
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return s.fail(ctx, "delete", key, err)
	}
	return nil
}

func (s *Store) lookup(ctx context.Context, op, key string) (*jetstream.ObjectInfo, error) {
	if err := objectstore.ValidKey(key); err != nil {
		return nil, err
	}
	if err := integrity.ContextErr(ctx); err != nil {
		return nil, fmt.Errorf("jsstore: %s %q: %w", op, key, err)
	}
	oi, err := s.info(ctx, key)
	if err == nil && oi.Deleted {
		err = jetstream.ErrObjectNotFound
	}
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("jsstore: %s %q: %w", op, key, objectstore.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(ctx, op, key, err)
	}
	if oi.Opts != nil && oi.Opts.Link != nil {
		return nil, fmt.Errorf("jsstore: %s %q: the object is a link, which jsstore does not follow", op, key)
	}
	return oi, nil
}

// info reads the metadata of key's current version, deleted or not,
// within one request's time.
func (s *Store) info(ctx context.Context, key string) (*jetstream.ObjectInfo, error) {
	return transient.Call(ctx, "jetstream request", s.requestTimeout, func(ctx context.Context) (*jetstream.ObjectInfo, error) {
		return withHandle(ctx, s, func(obs jetstream.ObjectStore) (*jetstream.ObjectInfo, error) {
			return obs.GetInfo(ctx, key, jetstream.GetObjectInfoShowDeleted())
		})
	})
}

// fail explains err from op on key for the caller: the caller's context
// ending when it did, and otherwise the error marked for transient.Is if a
// retry may help.
func (s *Store) fail(ctx context.Context, op, key string, err error) error {
	if ctxErr := integrity.ContextErr(ctx); ctxErr != nil {
		if errors.Is(err, ctx.Err()) {
			return fmt.Errorf("jsstore: %s %q: %w", op, key, err)
		}
		return fmt.Errorf("jsstore: %s %q: %w: %w", op, key, ctxErr, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// A client library's own time limit, not the caller's.
		err = fmt.Errorf("%w (%v)", &transient.TimeoutError{Op: "jetstream request"}, err)
	}
	return fmt.Errorf("jsstore: %s %q: %w", op, key, natserr.Mark(err))
}

func toInfo(key string, oi *jetstream.ObjectInfo) (objectstore.Info, error) {
	digest, err := jetstream.DecodeObjectDigest(oi.Digest)
	if err != nil || !strings.HasPrefix(oi.Digest, "SHA-256=") || len(digest) != 32 {
		return objectstore.Info{}, fmt.Errorf("%w: %q has no SHA-256 digest, but %q", objectstore.ErrChecksum, key, oi.Digest)
	}
	return objectstore.Info{Key: key, Size: int64(oi.Size), SHA256: hex.EncodeToString(digest)}, nil
}

func streamName(bucket string) string { return "OBJ_" + bucket }

func chunkSubject(bucket, nuid string) string { return "$O." + bucket + ".C." + nuid }
