package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// On a three-node cluster: what the fleet creates gets the replicas asked
// for, its consumers follow their stream, and a start-up with fewer
// replicas never lowers what an operator created.
func TestOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := natstest.NewCluster(t, 3)
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("restart does not lower", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		// As an operator would: the tasks stream and the materializations
		// bucket at R3 before the fleet first starts, the tasks kept 12 h.
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: protocol.TaskStream, Subjects: []string{protocol.TaskSubjects},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: 3, MaxAge: 12 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		// nats kv add does what CreateKeyValue does: direct gets on.
		if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: protocol.MaterializationsBucket, History: 1,
			Storage: jetstream.FileStorage, Replicas: 3}); err != nil {
			t.Fatal(err)
		}

		var log logBuffer
		if err := ensureAll(ctx, t, js, fleet.WithReplicas(1), fleet.WithLogger(log.logger())); err != nil {
			t.Fatal(err)
		}
		if got := streamConfig(ctx, t, js, protocol.TaskStream); got.Replicas != 3 || got.MaxAge != 12*time.Hour {
			t.Errorf("tasks stream after a start with 1 replica: %d replicas, max age %v; want the operator's 3 and 12h", got.Replicas, got.MaxAge)
		}
		if got := streamConfig(ctx, t, js, "KV_"+protocol.MaterializationsBucket); got.Replicas != 3 {
			t.Errorf("materializations bucket after a start with 1 replica: %d replicas, want the operator's 3", got.Replicas)
		}
		if got := streamConfig(ctx, t, js, protocol.DoneStream); got.Replicas != 1 {
			t.Errorf("done stream created with %d replicas, want 1", got.Replicas)
		}
		log.wantKept(t, protocol.TaskStream, "replicas", 3, 1)
		// The operator's stream has none of the fleet's bounds but the age:
		// each is logged, none changed.
		log.wantKept(t, protocol.TaskStream, "max_age", "12h0m0s", "168h0m0s")
		log.wantKept(t, protocol.TaskStream, "discard", "DiscardOld", "DiscardNew")
		log.wantKept(t, protocol.TaskStream, "max_bytes", "unlimited", fleet.TaskMaxBytesDefault)
		log.wantKept(t, protocol.TaskStream, "max_msgs", "unlimited", fleet.TaskMaxMsgsDefault)
		log.wantKept(t, "KV_"+protocol.MaterializationsBucket, "replicas", 3, 1)
		log.wantKept(t, "KV_"+protocol.MaterializationsBucket, "allow_direct", true, false)
		if n := len(log.lines(t)); n != 7 {
			t.Errorf("%d lines logged, want 7: %v", n, log.lines(t))
		}
		deleteAll(ctx, t, js)
	})

	t.Run("replicas asked for", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		var log logBuffer
		if err := ensureAll(ctx, t, js, fleet.WithReplicas(3), fleet.WithLogger(log.logger())); err != nil {
			t.Fatal(err)
		}
		for _, name := range fleetStreams {
			if cfg := streamConfig(ctx, t, js, name); cfg.Replicas != 3 {
				t.Errorf("%s created with %d replicas, want 3", name, cfg.Replicas)
			}
		}
		if lines := log.lines(t); len(lines) > 0 {
			t.Errorf("creating at R3 logged %v", lines)
		}
		// Consumers have no replica setting of their own: the server gives
		// them their stream's, so a task consumer survives what its
		// stream survives.
		cons, err := fleet.TaskConsumer(ctx, js, "daily_sales", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Cluster == nil || len(info.Cluster.Replicas)+1 != 3 {
			t.Errorf("task consumer on an R3 stream: cluster %+v, want a leader and 2 replicas", info.Cluster)
		}
		deleteAll(ctx, t, js)
	})
}

// fleetStreams are the streams start-up creates or opens.
var fleetStreams = []string{protocol.TaskStream, protocol.DoneStream, protocol.EventStream, fleet.ScheduleStream,
	"KV_" + protocol.MaterializationsBucket, "KV_" + protocol.RunsBucket, "KV_" + protocol.ManifestsBucket,
	"OBJ_" + protocol.ResultsBucket, "OBJ_" + protocol.StagingBucket}

// deleteAll removes the fleet's streams, for the next subtest.
func deleteAll(ctx context.Context, t *testing.T, js jetstream.JetStream) {
	t.Helper()
	for _, name := range fleetStreams {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
	}
}
