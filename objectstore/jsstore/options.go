package jsstore

import (
	"errors"
	"fmt"
	"time"
)

const (
	// ChunkSizeDefault is the chunk size used unless WithChunkSize says
	// otherwise, capped at the server's max_payload: 1 MiB.
	ChunkSizeDefault = 1 << 20
	// RequestTimeoutDefault bounds each request to the server unless
	// WithRequestTimeout says otherwise: 10 s.
	RequestTimeoutDefault = 10 * time.Second
	// StallTimeoutDefault is how long a reader waits for the next chunk
	// unless WithStallTimeout says otherwise: 30 s.
	StallTimeoutDefault = 30 * time.Second
)

// ErrInvalidOption means an Option got a value it cannot use.
var ErrInvalidOption = errors.New("jsstore: invalid option")

// Option configures New.
type Option func(*options) error

type options struct {
	chunkSize      uint32 // 0: ChunkSizeDefault capped at max_payload
	replicas       int
	requestTimeout time.Duration
	stallTimeout   time.Duration
	ttl            time.Duration
	maxBytes       int64
	description    string
}

// WithChunkSize sets the size of the messages objects are split into, at
// most the server's max_payload. It applies to objects this Store writes;
// every object records its own. Defaults to ChunkSizeDefault, capped at
// max_payload.
func WithChunkSize(n uint32) Option {
	return func(o *options) error {
		if n == 0 {
			return fmt.Errorf("%w: WithChunkSize(0)", ErrInvalidOption)
		}
		o.chunkSize = n
		return nil
	}
}

// WithReplicas sets how many servers keep a copy of the bucket, when New
// creates it; an existing bucket keeps its setting. Defaults to 1.
func WithReplicas(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 5 {
			return fmt.Errorf("%w: WithReplicas(%d): JetStream allows 1 to 5", ErrInvalidOption, n)
		}
		o.replicas = n
		return nil
	}
}

// WithMaxBytes bounds the bucket's bytes, when New creates it: a Put that
// would pass it fails. Defaults to 0: no bound.
func WithMaxBytes(n int64) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("%w: WithMaxBytes(%d): want 0 (no bound) or more", ErrInvalidOption, n)
		}
		o.maxBytes = n
		return nil
	}
}

// WithRequestTimeout bounds each request a Store makes: reading an
// object's metadata, the server's acknowledgement of a chunk, the commit,
// a purge, creating and deleting a reader's consumer. It applies whether or
// not the caller's context has a deadline (a shorter deadline still wins),
// so a reply lost in a reconnect costs at most d, after which the call
// fails with a *transient.TimeoutError. It does not bound a whole Put or
// Get, which take as long as their object needs. Defaults to
// RequestTimeoutDefault (10 s).
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithRequestTimeout(%v): want more than 0", ErrInvalidOption, d)
		}
		o.requestTimeout = d
		return nil
	}
}

// WithTTL makes the objects of the bucket New creates expire d after they
// were written; an existing bucket keeps its setting. Defaults to 0:
// objects never expire. Fit for copies that can be made again, not for
// results.
func WithTTL(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("%w: WithTTL(%v): want 0 (no expiry) or more", ErrInvalidOption, d)
		}
		o.ttl = d
		return nil
	}
}

// WithStallTimeout sets how long a reader returned by Get waits for the
// next chunk before its Read fails with a *transient.TimeoutError: the
// server went away, or the stream of chunks stopped. Only time spent
// waiting inside Read counts, so a slow caller is never cut off. Defaults
// to StallTimeoutDefault (30 s).
func WithStallTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithStallTimeout(%v): want more than 0", ErrInvalidOption, d)
		}
		o.stallTimeout = d
		return nil
	}
}

// WithDescription describes the bucket New creates to operators (nats
// object ls); an existing bucket keeps its own. Defaults to "flowstone
// objects".
func WithDescription(text string) Option {
	return func(o *options) error {
		o.description = text
		return nil
	}
}
