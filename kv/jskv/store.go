// Package jskv implements kv.Store on a JetStream key/value bucket, the
// metadata store of a FlowStone fleet.
//
// Revisions are the bucket stream's sequence numbers. The bucket keeps one
// value per key (history 1) in file storage. Every method validates keys
// before it talks to the server, so an invalid or hostile key (wildcards,
// spaces) returns kv.ErrInvalidKey and never reaches the wire.
//
// Put, Create and Update on a plain local bucket are core-NATS requests to
// the key's subject with a hand-read PubAck (see fastWriter): the same
// messages and results as jetstream.KeyValue at a fraction of its CPU cost.
// Concurrent writes are group-committed: while two batches of writes await
// their replies, new writes queue and go out together as the next batch,
// sharing socket writes; each write keeps its own outcome.
//
// Server errors keep their JetStream codes: a CAS conflict is both
// kv.ErrConflict and the jetstream error under errors.Is/As.
//
// # Deadlines and faults
//
// Every request has a time limit of its own, RequestTimeoutDefault (10 s;
// WithRequestTimeout), also when the caller's context has a later
// deadline, so a reply lost when the server restarts costs one request
// timeout rather than the caller's whole deadline. Running out of it is a
// *transient.TimeoutError; disconnections, no responders during a restart
// and the like are marked too, so transient.Is tells a caller what is
// worth retrying. The caller's context ending is reported as such and is
// not transient. A write that failed with a transient error may still have
// been applied: a retried Create or Update can then meet kv.ErrConflict
// from its own first attempt, so read the key and decide.
package jskv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/internal/transient/natserr"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/nats-io/nats.go/jetstream"
)

// Store is a kv.Store on one JetStream KV bucket. It is safe for concurrent
// use. The NATS connection stays the caller's: Close does not close it.
type Store struct {
	js      jetstream.JetStream
	handle  atomic.Pointer[jetstream.KeyValue] // see kv and rebind
	stream  jetstream.Stream                   // the bucket's stream; nil if it could not be looked up
	fast    *fastWriter                        // Put, Create and Update; nil: through kv
	pre     string                             // "$KV.<bucket>."
	timeout time.Duration                      // each request's limit

	mu     sync.Mutex // guards closed against wg.Add in Watch
	closed bool
	done   chan struct{} // closed by Close: ends watches
	wg     sync.WaitGroup
}

var _ kv.Store = (*Store)(nil)

// New binds to the bucket, creating it (file storage, history 1, the given
// options) if it does not exist. Options never change an existing bucket.
// A bucket created with more than one replica answers reads from its
// leader only (see leaderReads).
// Several processes may call New on the same bucket at once.
func New(ctx context.Context, js jetstream.JetStream, bucket string, opts ...Option) (*Store, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	b, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		b, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:   bucket,
			History:  1,
			Storage:  jetstream.FileStorage,
			Replicas: cfg.replicas,
			TTL:      cfg.ttl,
			MaxBytes: cmp.Or(cfg.maxBytes, -1),
		})
		if err == nil && cfg.replicas > 1 {
			if err = leaderReads(ctx, js, "KV_"+bucket); err == nil {
				b, err = js.KeyValue(ctx, bucket)
			}
		}
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Another process created it first, with its own options.
			b, err = js.KeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jskv: open or create bucket %q: %w", bucket, natserr.Mark(err))
	}
	return newStore(ctx, js, b, cfg), nil
}

// Open binds to an existing bucket. If there is none the error wraps
// jetstream.ErrBucketNotFound: create it with New. Options about the
// bucket's creation are ignored.
func Open(ctx context.Context, js jetstream.JetStream, bucket string, opts ...Option) (*Store, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	b, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("jskv: open bucket %q: %w", bucket, natserr.Mark(err))
	}
	return newStore(ctx, js, b, cfg), nil
}

func newConfig(opts []Option) (config, error) {
	cfg := config{replicas: ReplicasDefault, requestTimeout: RequestTimeoutDefault}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return config{}, err
		}
	}
	return cfg, nil
}

func newStore(ctx context.Context, js jetstream.JetStream, b jetstream.KeyValue, cfg config) *Store {
	s := &Store{js: js, pre: "$KV." + b.Bucket() + ".", timeout: cfg.requestTimeout, done: make(chan struct{})}
	s.handle.Store(&b)
	if stream, err := js.Stream(ctx, "KV_"+b.Bucket()); err == nil {
		s.stream = stream
	}
	s.fast = newFastWriter(js, b, s.stream, cfg.requestTimeout)
	return s
}

// limited makes one request under the store's request timeout.
func limited[T any](s *Store, ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	return transient.Call(ctx, "jetstream request", s.timeout, fn)
}

// kv is the bucket's nats.go handle.
func (s *Store) kv() jetstream.KeyValue { return *s.handle.Load() }

// rebind binds the bucket again after a read found no responders, and
// reports whether it did. A handle reads the way the stream allowed when
// it was bound (direct gets, or the leader's): should the stream's setting
// change since (the process that creates a replicated bucket turns direct
// gets off just after creating it, and others may have bound it in
// between), its reads ask a subject nobody answers any more.
func (s *Store) rebind(ctx context.Context, err error) bool {
	if !natserr.Unanswered(err) {
		return false
	}
	// One request's time: a reply lost to a restart must not hold the
	// caller for its whole deadline.
	b, berr := limited(s, ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return s.js.KeyValue(ctx, s.kv().Bucket())
	})
	if berr != nil {
		return false
	}
	s.handle.Store(&b)
	return true
}

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.kv().Bucket() }

// Get returns the current value of key, or kv.ErrNotFound (also for a
// deleted or expired key).
func (s *Store) Get(ctx context.Context, key string) (kv.Entry, error) {
	if err := s.check(key); err != nil {
		return kv.Entry{}, err
	}
	get := func(ctx context.Context) (jetstream.KeyValueEntry, error) { return s.kv().Get(ctx, key) }
	e, err := limited(s, ctx, get)
	if err != nil && s.rebind(ctx, err) {
		e, err = limited(s, ctx, get)
	}
	if err != nil {
		return kv.Entry{}, s.mapError(ctx, "get", key, err)
	}
	return kv.Entry{Key: key, Value: nonNil(e.Value()), Revision: e.Revision()}, nil
}

// Put writes value unconditionally and returns the new revision.
func (s *Store) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := s.check(key); err != nil {
		return 0, err
	}
	var rev uint64
	var err error
	if s.fast != nil {
		rev, err = s.fast.put(ctx, key, value)
	} else {
		rev, err = limited(s, ctx, func(ctx context.Context) (uint64, error) { return s.kv().Put(ctx, key, value) })
	}
	return rev, s.mapError(ctx, "put", key, err)
}

// Create writes value if key has no value (never written, deleted or
// expired), else kv.ErrConflict.
func (s *Store) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := s.check(key); err != nil {
		return 0, err
	}
	var rev uint64
	var err error
	if s.fast != nil {
		rev, err = s.fast.create(ctx, key, value)
	} else {
		rev, err = limited(s, ctx, func(ctx context.Context) (uint64, error) { return s.kv().Create(ctx, key, value) })
	}
	return rev, s.mapError(ctx, "create", key, err)
}

// Update writes value if key's last revision (a value's or a deletion's) is
// rev, else kv.ErrConflict. rev 0 is always a conflict: JetStream would
// read it as "create", which is Create's job.
func (s *Store) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if err := s.check(key); err != nil {
		return 0, err
	}
	if rev == 0 {
		return 0, fmt.Errorf("jskv: update %q at revision 0 (use Create): %w", key, kv.ErrConflict)
	}
	var err error
	if s.fast != nil {
		rev, err = s.fast.update(ctx, key, value, rev)
	} else {
		rev, err = limited(s, ctx, func(ctx context.Context) (uint64, error) { return s.kv().Update(ctx, key, value, rev) })
	}
	return rev, s.mapError(ctx, "update", key, err)
}

// Delete writes a delete marker for key; with rev > 0 only if the key's last
// revision is rev, else kv.ErrConflict. With rev 0 a key that has no value
// gets a marker too (watchers see a deletion); that is not an error.
func (s *Store) Delete(ctx context.Context, key string, rev uint64) error {
	if err := s.check(key); err != nil {
		return err
	}
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	_, err := limited(s, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.kv().Delete(ctx, key, opts...) })
	return s.mapError(ctx, "delete", key, err)
}

// Erase removes key's value from the bucket's stream without writing a
// delete marker: Get and Keys no longer find it, and watchers are not told.
// It is meant for index keys nobody watches, whose delete markers would
// otherwise pile up in every listing of their prefix until the bucket's TTL
// removes them. Erasing a key without a value is not an error. Where the
// stream cannot be purged (a mirror, a stream that could not be looked
// up), Erase writes a delete marker, as Delete does.
func (s *Store) Erase(ctx context.Context, key string) error {
	if err := s.check(key); err != nil {
		return err
	}
	if s.stream == nil || s.fast == nil {
		return s.Delete(ctx, key, 0)
	}
	_, err := limited(s, ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.stream.Purge(ctx, jetstream.WithPurgeSubject(s.pre+key))
	})
	if err != nil {
		return s.mapError(ctx, "erase", key, err)
	}
	return nil
}

// Close ends every watch, fails the writes still awaiting their reply,
// unsubscribes the writer's reply subject and waits for every goroutine
// the store started (watches, the writer's timeout clock); every later
// call returns kv.ErrClosed. It is idempotent. Whoever opened the store
// (New, Open) closes it.
func (s *Store) Close() {
	s.mu.Lock()
	first := !s.closed
	if first {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	if first && s.fast != nil {
		s.fast.close()
	}
	s.wg.Wait()
	if s.fast != nil {
		s.fast.reaper.Wait() // a second Close returns once the first is done
	}
}

// check rejects calls on a closed store and invalid keys before any I/O.
func (s *Store) check(key string) error {
	select {
	case <-s.done:
		return kv.ErrClosed
	default:
	}
	return kv.ValidKey(key)
}

// nonNil keeps an empty value distinct from a deletion (nil Value).
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}
