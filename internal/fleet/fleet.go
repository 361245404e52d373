// Package fleet creates the JetStream streams, KV buckets and consumers the
// coordinator and the workers share, with the same settings whichever of
// them starts first. Creation is idempotent.
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

// Ensure creates (or updates) the fleet's streams and KV buckets.
func Ensure(ctx context.Context, js jetstream.JetStream) error {
	streams := []jetstream.StreamConfig{
		{
			Name:        protocol.TaskStream,
			Description: "FlowStone materialization tasks (work queue)",
			Subjects:    []string{protocol.TaskSubjects},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  2 * time.Minute,
		},
		{
			Name:        protocol.DoneStream,
			Description: "FlowStone task completions",
			Subjects:    []string{protocol.DoneSubjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			MaxAge:      time.Hour,
			Duplicates:  2 * time.Minute,
		},
		{
			Name:        protocol.EventStream,
			Description: "FlowStone telemetry events",
			Subjects:    []string{protocol.EventSubjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			MaxAge:      time.Hour,
			MaxBytes:    256 << 20,
		},
		{
			Name:              ScheduleStream,
			Description:       "FlowStone delayed runs (scheduled_at)",
			Subjects:          []string{protocol.ScheduleSubjects, protocol.StartSubjects},
			Retention:         jetstream.LimitsPolicy,
			Storage:           jetstream.FileStorage,
			AllowMsgSchedules: true,
		},
	}
	for _, cfg := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("fleet: stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// RunRetention is how long the runs bucket keeps a record after its last
// write. Coordinators rewrite the records of runs still live (scheduled
// far ahead, or running long) before it passes.
const RunRetention = 7 * 24 * time.Hour

// Buckets opens the fleet's KV buckets, creating them if missing. The
// caller closes them; on error none is left open.
func Buckets(ctx context.Context, js jetstream.JetStream) (mats, runs, manifests *jskv.Store, err error) {
	if mats, err = jskv.New(ctx, js, protocol.MaterializationsBucket); err != nil {
		return nil, nil, nil, fmt.Errorf("fleet: bucket %s: %w", protocol.MaterializationsBucket, err)
	}
	if runs, err = jskv.New(ctx, js, protocol.RunsBucket, jskv.WithTTL(RunRetention)); err != nil {
		mats.Close()
		return nil, nil, nil, fmt.Errorf("fleet: bucket %s: %w", protocol.RunsBucket, err)
	}
	if manifests, err = jskv.New(ctx, js, protocol.ManifestsBucket, jskv.WithTTL(ManifestTTL)); err != nil {
		mats.Close()
		runs.Close()
		return nil, nil, nil, fmt.Errorf("fleet: bucket %s: %w", protocol.ManifestsBucket, err)
	}
	return mats, runs, manifests, nil
}

// ConsumerName is the durable pull consumer of a pipeline's tasks at one
// priority; every worker hosting the pipeline shares it.
func ConsumerName(pipeline string, priority int) string {
	return fmt.Sprintf("tasks_%s_p%d", pipeline, priority)
}

// TaskConsumer creates (or binds) the durable consumer of a pipeline's
// tasks at one priority.
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

// IsUnreachable reports whether err means NATS or JetStream is not there.
func IsUnreachable(err error) bool {
	return errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, jetstream.ErrNoStreamResponse)
}
