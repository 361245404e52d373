package jsstore

import (
	"errors"
	"fmt"
	"time"
)

// ChunkSizeDefault is the chunk size used unless WithChunkSize says
// otherwise, capped at the server's max_payload: 1 MiB.
const ChunkSizeDefault = 1 << 20

// ErrInvalidOption means an Option got a value it cannot use.
var ErrInvalidOption = errors.New("jsstore: invalid option")

// Option configures New.
type Option func(*options) error

type options struct {
	chunkSize   uint32 // 0: ChunkSizeDefault capped at max_payload
	replicas    int
	ttl         time.Duration
	description string
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

// WithDescription describes the bucket New creates to operators (nats
// object ls); an existing bucket keeps its own. Defaults to "flowstone
// objects".
func WithDescription(text string) Option {
	return func(o *options) error {
		o.description = text
		return nil
	}
}
