// Package fleet creates the JetStream streams, KV buckets, object stores
// and consumers the coordinator and the workers share, with the same
// settings whichever of them starts first. Creation is idempotent, and
// never changes what exists: an operator's settings are kept, and those
// that differ from the fleet's are logged (see Ensure).
package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone/kv/jskv"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

// Settings of the shared streams.
const (
	// AckWaitDefault is how long a task may go without an ack or an
	// in-progress heartbeat before JetStream redelivers it to another
	// worker.
	AckWaitDefault = 30 * time.Second
	// MaxDeliverDefault is how many deliveries a task gets before it is
	// given up (the coordinator then fails its materialization).
	MaxDeliverDefault = 5
	// MaxAckPendingDefault caps in-flight tasks per consumer, all workers
	// together.
	MaxAckPendingDefault = 20000
	// ScheduleStream holds delayed runs (scheduled_at): schedules on
	// flowstone.sched.>, firing onto flowstone.start.>.
	ScheduleStream = "FLOWSTONE_SCHEDULES"
	// ManifestTTL is how long a worker's manifest lives without a refresh.
	ManifestTTL = 30 * time.Second
	// ManifestRefresh is how often workers refresh their manifests.
	ManifestRefresh = 10 * time.Second
)

// Ensure creates the fleet's streams that are missing, each with the
// replicas WithReplicas sets. A step that fails on a fault a wait fixes
// (JetStream starting, a leader election, a request timing out) is
// retried for up to StartWait. A stream that exists is never changed, so an
// operator's settings (nats stream edit) survive every start: each of its
// settings that differs from what Ensure would create is logged (see
// WithLogger) and kept, and an error says what to fix if the fleet cannot
// work with it (a tasks stream that is not a work queue, a subject
// missing, schedules not allowed).
func Ensure(ctx context.Context, js jetstream.JetStream, opts ...Option) error {
	s := newSettings(opts)
	for _, n := range streams(s.replicas, s.limits, s.horizon) {
		_, err := step(ctx, js, s, "stream "+n.cfg.Name, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, ensureStream(ctx, js, s, n)
		})
		if err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
	}
	return nil
}

// streams are the fleet's streams with replicas each, bounded by l (its
// defaults filled in); horizon: an existing schedules stream must keep
// messages for l.ScheduleHorizon.
func streams(replicas int, l Limits, horizon bool) []need {
	var horizonNeed time.Duration
	if horizon {
		horizonNeed = l.ScheduleHorizon
	}
	return []need{
		{workQueue: true, cfg: jetstream.StreamConfig{
			Name:        protocol.TaskStream,
			Description: "FlowStone materialization tasks (work queue)",
			Subjects:    []string{protocol.TaskSubjects},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			Duplicates:  2 * time.Minute,
			MaxAge:      l.TaskMaxAge,
			MaxBytes:    l.TaskMaxBytes,
			MaxMsgs:     l.TaskMaxMsgs,
			Discard:     jetstream.DiscardNew,
		}},
		{cfg: jetstream.StreamConfig{
			Name:        protocol.DoneStream,
			Description: "FlowStone task completions",
			Subjects:    []string{protocol.DoneSubjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			MaxAge:      time.Hour,
			MaxBytes:    l.CompletionMaxBytes,
			Duplicates:  2 * time.Minute,
		}},
		{cfg: jetstream.StreamConfig{
			Name:        protocol.EventStream,
			Description: "FlowStone telemetry events",
			Subjects:    []string{protocol.EventSubjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			MaxAge:      time.Hour,
			MaxBytes:    l.EventMaxBytes,
		}},
		{scheduleHorizon: horizonNeed, cfg: jetstream.StreamConfig{
			Name:              ScheduleStream,
			Description:       "FlowStone delayed runs (scheduled_at)",
			Subjects:          []string{protocol.ScheduleSubjects, protocol.StartSubjects},
			Retention:         jetstream.LimitsPolicy,
			Storage:           jetstream.FileStorage,
			Replicas:          replicas,
			AllowMsgSchedules: true,
			// Bounded by age only: message scheduling needs discard-old,
			// and a full stream would drop the oldest schedules unseen.
			MaxAge: l.ScheduleHorizon + scheduleAgeMargin,
		}},
	}
}

// RunRetention is how long the runs bucket keeps a record after its last
// write. Coordinators rewrite the records of runs still live (scheduled
// far ahead, or running long) before it passes.
const RunRetention = 7 * 24 * time.Hour

// Buckets opens the fleet's KV buckets, creating the missing ones with the
// replicas WithReplicas sets. As Ensure does for streams, it never changes
// a bucket that exists: its settings that differ are logged and kept. On
// an error no bucket is left open. Faults a wait fixes are retried, as in
// Ensure.
func Buckets(ctx context.Context, js jetstream.JetStream, opts ...Option) (mats, runs, manifests *jskv.Store, err error) {
	s := newSettings(opts)
	if mats, err = openBucket(ctx, js, s, protocol.MaterializationsBucket, 0, s.limits.RecordsMaxBytes); err != nil {
		return nil, nil, nil, err
	}
	if runs, err = openBucket(ctx, js, s, protocol.RunsBucket, RunRetention, 0); err != nil {
		mats.Close()
		return nil, nil, nil, err
	}
	if manifests, err = openBucket(ctx, js, s, protocol.ManifestsBucket, ManifestTTL, 0); err != nil {
		mats.Close()
		runs.Close()
		return nil, nil, nil, err
	}
	return mats, runs, manifests, nil
}

// ScatterRetention is how long the scatter bucket keeps a batch's outcome
// after it was written. The driver of a scatter drops its batches' keys
// once the asset's outcome is recorded; this bounds what a scatter whose
// driver never came back leaves.
const ScatterRetention = 7 * 24 * time.Hour

// ScatterBucket opens the bucket of scatter batch outcomes (workers use
// it), creating it as Buckets does.
func ScatterBucket(ctx context.Context, js jetstream.JetStream, opts ...Option) (*jskv.Store, error) {
	s := newSettings(opts)
	return openBucket(ctx, js, s, protocol.ScatterBucket, ScatterRetention, s.limits.ScatterMaxBytes)
}

// AutomationBucket opens the bucket of schedules' and sensors' states
// (coordinators use it), creating it as Buckets does. Its keys never
// expire: a paused schedule, or a yearly one, keeps its state.
func AutomationBucket(ctx context.Context, js jetstream.JetStream, opts ...Option) (*jskv.Store, error) {
	// Bounded by its keys: one per schedule and sensor, each holding one
	// value of at most about 20 KiB (a cursor of protocol.MaxCursorBytes).
	return openBucket(ctx, js, newSettings(opts), protocol.AutomationBucket, 0, 0)
}

// openBucket opens a KV bucket, creating it if missing (see Buckets), with
// ttl and maxBytes (0: none).
func openBucket(ctx context.Context, js jetstream.JetStream, s settings, bucket string, ttl time.Duration, maxBytes int64) (*jskv.Store, error) {
	kvOpts := []jskv.Option{jskv.WithReplicas(s.replicas), jskv.WithMaxBytes(maxBytes)}
	if ttl > 0 {
		kvOpts = append(kvOpts, jskv.WithTTL(ttl))
	}
	store, err := step(ctx, js, s, "bucket "+bucket, func(ctx context.Context) (*jskv.Store, error) {
		store, err := jskv.New(ctx, js, bucket, kvOpts...)
		if err != nil {
			return nil, err
		}
		if err := checkExisting(ctx, js, s, bucketNeed(bucket, s.replicas, ttl, maxBytes)); err != nil {
			store.Close()
			return nil, err
		}
		return store, nil
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: bucket %s: %w", bucket, err)
	}
	return store, nil
}

// bucketNeed is what the fleet needs of a KV bucket's stream: jskv.New's
// settings (one value per key, file storage).
func bucketNeed(bucket string, replicas int, ttl time.Duration, maxBytes int64) need {
	return need{leaderReads: true, cfg: jetstream.StreamConfig{
		Name:              "KV_" + bucket,
		Subjects:          []string{"$KV." + bucket + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		MaxAge:            ttl,
		MaxBytes:          maxBytes,
		MaxMsgsPerSubject: 1,
	}}
}

// ConsumerName is the durable pull consumer of a pipeline's tasks at one
// priority; every worker hosting the pipeline shares it.
func ConsumerName(pipeline string, priority int) string {
	return fmt.Sprintf("tasks_%s_p%d", pipeline, priority)
}

// TaskConsumer creates (or binds) the durable consumer of a pipeline's
// tasks at one priority. The consumer leaves its replica count to the
// server, which gives a durable consumer its stream's: it is as available
// as the tasks it delivers, however the stream was created or scaled.
func TaskConsumer(ctx context.Context, js jetstream.JetStream, pipeline string, priority int, ackWait time.Duration) (jetstream.Consumer, error) {
	if ackWait <= 0 {
		ackWait = AckWaitDefault
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       ConsumerName(pipeline, priority),
		FilterSubject: protocol.TaskSubject(pipeline, priority),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       ackWait,
		MaxDeliver:    MaxDeliverDefault,
		MaxAckPending: MaxAckPendingDefault,
	}
	c, err := js.CreateOrUpdateConsumer(ctx, protocol.TaskStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("fleet: consumer %s: %w", cfg.Durable, err)
	}
	return c, nil
}

// ItemConsumerName is the durable pull consumer of a pipeline's scatter
// item batches; every worker hosting the pipeline shares it.
func ItemConsumerName(pipeline string) string { return "items_" + pipeline }

// ItemConsumer creates (or binds) the durable consumer of a pipeline's
// scatter item batches. A batch is delivered until it is acked: the
// worker that takes a batch delivered MaxDeliverDefault times already
// records its items failed instead of running them, so a batch that kills
// its workers ends, and the scatter's driver learns of it.
func ItemConsumer(ctx context.Context, js jetstream.JetStream, pipeline string, ackWait time.Duration) (jetstream.Consumer, error) {
	if ackWait <= 0 {
		ackWait = AckWaitDefault
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       ItemConsumerName(pipeline),
		FilterSubject: protocol.ItemSubject(pipeline),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: MaxAckPendingDefault,
	}
	c, err := js.CreateOrUpdateConsumer(ctx, protocol.TaskStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("fleet: consumer %s: %w", cfg.Durable, err)
	}
	return c, nil
}

// IsUnreachable reports whether err means NATS or JetStream is not there.
func IsUnreachable(err error) bool {
	return errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, jetstream.ErrNoStreamResponse)
}
