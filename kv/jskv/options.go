package jskv

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidOption means an Option was given a value it cannot use; the
// wrapped message names the option.
var ErrInvalidOption = errors.New("jskv: invalid option")

// Option configures the bucket New creates. Options do not change a bucket
// that already exists: New binds to it as it is.
type Option func(*config) error

// config is the bucket configuration the options build.
type config struct {
	replicas int
	ttl      time.Duration
}

// ReplicasDefault is the number of bucket replicas unless WithReplicas says
// otherwise: one, the only choice on a single server.
const ReplicasDefault = 1

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
