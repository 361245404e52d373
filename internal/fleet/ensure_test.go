package fleet_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

const setupTimeout = 60 * time.Second

func newJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, natstest.Server(t)))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// ensureAll runs everything start-up does: streams, buckets, both object
// stores.
func ensureAll(ctx context.Context, t *testing.T, js jetstream.JetStream, opts ...fleet.Option) error {
	t.Helper()
	if err := fleet.Ensure(ctx, js, opts...); err != nil {
		return err
	}
	mats, runs, manifests, err := fleet.Buckets(ctx, js, opts...)
	if err != nil {
		return err
	}
	mats.Close()
	runs.Close()
	manifests.Close()
	if _, err := fleet.ObjectStore(ctx, js, protocol.ResultsBucket, "results", 0, opts...); err != nil {
		return err
	}
	_, err = fleet.ObjectStore(ctx, js, protocol.StagingBucket, "staged", protocol.StagingTTL, opts...)
	return err
}

func streamConfig(ctx context.Context, t *testing.T, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s.CachedInfo().Config
}

// What start-up creates, a second start-up finds as it wants it: nothing
// to log.
func TestStartingTwiceLogsNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	js := newJS(t)
	var log logBuffer
	for range 2 {
		if err := ensureAll(ctx, t, js, fleet.WithLogger(log.logger())); err != nil {
			t.Fatal(err)
		}
	}
	if lines := log.lines(t); len(lines) > 0 {
		t.Fatalf("start-up over its own streams logged %v", lines)
	}
	for _, name := range fleetStreams {
		if cfg := streamConfig(ctx, t, js, name); cfg.Replicas != 1 || cfg.Storage != jetstream.FileStorage {
			t.Errorf("%s: %d replicas on %v, want 1 on file", name, cfg.Replicas, cfg.Storage)
		}
	}
}

// An operator's changes survive a restart; each one is logged once.
func TestStartingKeepsAnOperatorsSettings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	js := newJS(t)
	if err := fleet.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	tasks := streamConfig(ctx, t, js, protocol.TaskStream)
	tasks.MaxAge, tasks.Duplicates = 24*time.Hour, 5*time.Minute
	events := streamConfig(ctx, t, js, protocol.EventStream)
	events.MaxBytes, events.MaxAge = 1<<30, 0
	for _, cfg := range []jetstream.StreamConfig{tasks, events} {
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}

	var log logBuffer
	if err := ensureAll(ctx, t, js, fleet.WithLogger(log.logger())); err != nil {
		t.Fatal(err)
	}
	if got := streamConfig(ctx, t, js, protocol.TaskStream); got.MaxAge != 24*time.Hour || got.Duplicates != 5*time.Minute {
		t.Errorf("tasks stream after start-up: max age %v, duplicates %v; want the operator's 24h and 5m", got.MaxAge, got.Duplicates)
	}
	if got := streamConfig(ctx, t, js, protocol.EventStream); got.MaxBytes != 1<<30 || got.MaxAge != 0 {
		t.Errorf("events stream after start-up: max bytes %d, max age %v; want the operator's 1 GiB and none", got.MaxBytes, got.MaxAge)
	}
	log.wantKept(t, protocol.TaskStream, "max_age", "24h0m0s", "168h0m0s")
	log.wantKept(t, protocol.TaskStream, "duplicate_window", "5m0s", "2m0s")
	log.wantKept(t, protocol.EventStream, "max_bytes", 1<<30, 256<<20)
	log.wantKept(t, protocol.EventStream, "max_age", "unlimited", "1h0m0s")
	if n := len(log.lines(t)); n != 4 {
		t.Errorf("%d lines logged, want one per changed setting (4): %v", n, log.lines(t))
	}
}

// A stream the fleet cannot work with stops start-up with what to fix,
// and stays as it is.
func TestStartingRefusesAStreamItCannotUse(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  jetstream.StreamConfig
		want []string // in the error
	}{
		{"tasks not a work queue",
			jetstream.StreamConfig{Name: protocol.TaskStream, Subjects: []string{protocol.TaskSubjects}, Storage: jetstream.FileStorage},
			[]string{"retention is Limits, the fleet needs WorkQueue", "nats stream rm FLOWSTONE_TASKS"}},
		{"tasks missing subjects",
			jetstream.StreamConfig{Name: protocol.TaskStream, Subjects: []string{"flowstone.task.daily_sales.>"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage},
			[]string{"subjects", "add flowstone.task.>", "nats stream edit FLOWSTONE_TASKS --subjects flowstone.task.daily_sales.>,flowstone.task.>"}},
		{"schedules not allowed",
			jetstream.StreamConfig{Name: fleet.ScheduleStream, Subjects: []string{protocol.ScheduleSubjects, protocol.StartSubjects}, Storage: jetstream.FileStorage},
			[]string{"allow_msg_schedules is false, the fleet needs true", "nats stream edit FLOWSTONE_SCHEDULES --allow-schedules"}},
		{"done sealed",
			jetstream.StreamConfig{Name: protocol.DoneStream, Subjects: []string{protocol.DoneSubjects}, Storage: jetstream.FileStorage, Sealed: true},
			[]string{"sealed is true", "nats stream rm FLOWSTONE_DONE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
			defer cancel()
			js := newJS(t)
			cfg := tc.cfg
			if cfg.Sealed {
				// A stream is sealed by an update, never created sealed.
				cfg.Sealed = false
				if _, err := js.CreateStream(ctx, cfg); err != nil {
					t.Fatal(err)
				}
				cfg.Sealed = true
				if _, err := js.UpdateStream(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			} else if _, err := js.CreateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			before := streamConfig(ctx, t, js, cfg.Name)

			err := fleet.Ensure(ctx, js)
			if err == nil {
				t.Fatal("start-up accepted the stream")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q: %v", w, err)
				}
			}
			if after := streamConfig(ctx, t, js, cfg.Name); !reflect.DeepEqual(after, before) {
				t.Errorf("start-up changed the stream:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
}

// More replicas than servers is refused by JetStream; the error says what
// to change.
func TestReplicasBeyondTheServersSayWhatToDo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	js := newJS(t)
	err := fleet.Ensure(ctx, js, fleet.WithReplicas(3))
	if err == nil || !strings.Contains(err.Error(), "with 3 replicas") || !strings.Contains(err.Error(), "lower --replicas") {
		t.Fatalf("3 replicas on one server: %v", err)
	}
}

func TestCheckReplicas(t *testing.T) {
	for _, tc := range []struct {
		n  int
		ok bool
	}{{0, true}, {1, true}, {3, true}, {5, true}, {-1, false}, {6, false}} {
		err := fleet.CheckReplicas("Config.Replicas", tc.n)
		if (err == nil) != tc.ok {
			t.Errorf("CheckReplicas(%d) = %v", tc.n, err)
		}
		if err != nil && !strings.Contains(err.Error(), "Config.Replicas") {
			t.Errorf("CheckReplicas(%d) does not name the field: %v", tc.n, err)
		}
	}
}
