package fleet

import (
	"context"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone/objectstore/jsstore"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

// ObjectStore opens a JetStream object store bucket of the fleet (the
// results, the copies staged for clients), creating it if it is missing
// with the replicas WithReplicas sets, the description and ttl (0: objects
// never expire). As Ensure does for streams, it never changes a bucket
// that exists: its settings that differ are logged and kept. Faults a
// wait fixes are retried, as in Ensure. The results bucket is bounded by
// the limits' ResultsMaxBytes.
func ObjectStore(ctx context.Context, js jetstream.JetStream, bucket, description string, ttl time.Duration, opts ...Option) (*jsstore.Store, error) {
	s := newSettings(opts)
	var maxBytes int64
	if bucket == protocol.ResultsBucket {
		maxBytes = s.limits.ResultsMaxBytes
	}
	store, err := step(ctx, js, s, "object store "+bucket, func(ctx context.Context) (*jsstore.Store, error) {
		store, err := jsstore.New(ctx, js, bucket,
			jsstore.WithReplicas(s.replicas), jsstore.WithTTL(ttl), jsstore.WithDescription(description), jsstore.WithMaxBytes(maxBytes))
		if err != nil {
			return nil, err
		}
		if err := checkExisting(ctx, js, s, objectStoreNeed(bucket, s.replicas, ttl, maxBytes)); err != nil {
			return nil, err
		}
		return store, nil
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: object store %s: %w", bucket, err)
	}
	return store, nil
}

// objectStoreNeed is what the fleet needs of an object store's stream:
// jsstore.New's settings (file storage).
func objectStoreNeed(bucket string, replicas int, ttl time.Duration, maxBytes int64) need {
	return need{leaderReads: true, cfg: jetstream.StreamConfig{
		Name:      "OBJ_" + bucket,
		Subjects:  []string{"$O." + bucket + ".C.>", "$O." + bucket + ".M.>"},
		Retention: jetstream.LimitsPolicy,
		Storage:   jetstream.FileStorage,
		Replicas:  replicas,
		MaxAge:    ttl,
		MaxBytes:  maxBytes,
	}}
}
