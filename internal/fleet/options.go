package fleet

import (
	"fmt"

	"github.com/rs/zerolog"
)

// ReplicasDefault is how many servers hold each stream, KV bucket and
// object store the fleet creates unless WithReplicas says otherwise: one,
// the only choice on a single server.
const ReplicasDefault = 1

// MaxReplicas is the most replicas JetStream allows a stream.
const MaxReplicas = 5

// Option configures what Ensure, Buckets and ObjectStore create and how
// they report an existing stream that differs.
type Option func(*settings)

// settings are the options applied.
type settings struct {
	replicas int
	log      zerolog.Logger
	limits   Limits
	// horizon: the caller schedules runs up to limits.ScheduleHorizon
	// ahead, so an existing schedules stream must keep them that long.
	horizon bool
}

func newSettings(opts []Option) settings {
	s := settings{replicas: ReplicasDefault, log: zerolog.Nop()}
	for _, opt := range opts {
		opt(&s)
	}
	s.limits = s.limits.WithDefaults()
	return s
}

// WithReplicas sets how many servers hold each stream, bucket and object
// store the fleet creates; n of 0 or less means ReplicasDefault. It never
// changes one that exists: a different count there is logged and kept.
// Check n with CheckReplicas first.
func WithReplicas(n int) Option {
	return func(s *settings) {
		if n > 0 {
			s.replicas = n
		}
	}
}

// WithLogger receives one warning per setting of an existing stream,
// bucket or object store that differs from what the fleet would create.
// Defaults to no logging.
func WithLogger(log zerolog.Logger) Option {
	return func(s *settings) { s.log = log }
}

// CheckReplicas reports a replica count JetStream cannot use; 0 stands for
// ReplicasDefault. The error names field (a Config field, a flag) and the
// range.
func CheckReplicas(field string, n int) error {
	if n < 0 || n > MaxReplicas {
		return fmt.Errorf("%s is %d: JetStream keeps 1 to %d replicas of a stream (0 means %d); use 3 on a cluster of 3 or more servers",
			field, n, MaxReplicas, ReplicasDefault)
	}
	return nil
}
