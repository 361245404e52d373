package jskv

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidOption means an Option was given a value it cannot use; the
// wrapped message names the option.
var ErrInvalidOption = errors.New("jskv: invalid option")

// Option configures a Store, and the bucket New creates. Options do not
// change a bucket that already exists: New binds to it as it is.
type Option func(*config) error

// config is the store and bucket configuration the options build.
type config struct {
	replicas       int
	ttl            time.Duration
	maxBytes       int64
	requestTimeout time.Duration
}

const (
	// ReplicasDefault is the number of bucket replicas unless WithReplicas
	// says otherwise: one, the only choice on a single server.
	ReplicasDefault = 1
	// RequestTimeoutDefault bounds each request to the server unless
	// WithRequestTimeout says otherwise: 10 s.
	RequestTimeoutDefault = 10 * time.Second
)

// WithReplicas sets how many servers hold a copy of the bucket, 1 to 5.
// Defaults to ReplicasDefault. Use 3 on a cluster for a bucket that survives
// losing a server.
func WithReplicas(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 5 {
			return fmt.Errorf("%w: WithReplicas(%d): want 1 to 5", ErrInvalidOption, n)
		}
		c.replicas = n
		return nil
	}
}

// WithTTL makes every value expire d after it was written (the bucket's
// MaxAge); expired keys read as not found. Defaults to 0: values never
// expire. Fit for caches and leases, not for state that must persist.
func WithTTL(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("%w: WithTTL(%v): want 0 (no expiry) or more", ErrInvalidOption, d)
		}
		c.ttl = d
		return nil
	}
}

// WithMaxBytes bounds the bucket's bytes, when New creates it: a write
// that would pass it is refused (the store's error says the bucket is
// full). Defaults to 0: no bound.
func WithMaxBytes(n int64) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("%w: WithMaxBytes(%d): want 0 (no bound) or more", ErrInvalidOption, n)
		}
		c.maxBytes = n
		return nil
	}
}

// WithRequestTimeout bounds each request of the Store: a Get, a write, a
// Delete, a Present batch, setting up a Keys listing or a Watch; a Keys
// listing fails when the server sends nothing for d. It applies whether or
// not the caller's context has a deadline (a shorter deadline still wins),
// so a reply lost when the server restarts costs at most d, after which
// the call fails with a *transient.TimeoutError. A write that timed out
// may still have been applied. Defaults to RequestTimeoutDefault (10 s).
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithRequestTimeout(%v): want more than 0", ErrInvalidOption, d)
		}
		c.requestTimeout = d
		return nil
	}
}
