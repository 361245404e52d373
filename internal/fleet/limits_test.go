package fleet_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/protocol"
)

// Every stream start-up creates is bounded: the defaults, or the limits
// given; the queue refuses new tasks when full rather than dropping queued
// ones, and schedules live as long as the horizon.
func TestStreamsAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits fleet.Limits
		want   fleet.Limits
	}{
		{"defaults", fleet.Limits{}, fleet.Limits{}.WithDefaults()},
		{"given", fleet.Limits{TaskMaxAge: time.Hour, TaskMaxBytes: 1 << 20, TaskMaxMsgs: 100, CompletionMaxBytes: 2 << 20, ScheduleHorizon: 48 * time.Hour,
			EventMaxBytes: 3 << 20, RecordsMaxBytes: 4 << 20, ResultsMaxBytes: 5 << 20, ScatterMaxBytes: 6 << 20},
			fleet.Limits{TaskMaxAge: time.Hour, TaskMaxBytes: 1 << 20, TaskMaxMsgs: 100, CompletionMaxBytes: 2 << 20, ScheduleHorizon: 48 * time.Hour,
				EventMaxBytes: 3 << 20, RecordsMaxBytes: 4 << 20, ResultsMaxBytes: 5 << 20, ScatterMaxBytes: 6 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
			defer cancel()
			js := newJS(t)
			if err := fleet.Ensure(ctx, js, fleet.WithLimits(tc.limits)); err != nil {
				t.Fatal(err)
			}
			tasks := streamConfig(ctx, t, js, protocol.TaskStream)
			if tasks.MaxAge != tc.want.TaskMaxAge || tasks.MaxBytes != tc.want.TaskMaxBytes || tasks.MaxMsgs != tc.want.TaskMaxMsgs ||
				tasks.Discard != jetstream.DiscardNew {
				t.Errorf("tasks stream: max age %v, bytes %d, msgs %d, discard %v; want %v, %d, %d, new",
					tasks.MaxAge, tasks.MaxBytes, tasks.MaxMsgs, tasks.Discard, tc.want.TaskMaxAge, tc.want.TaskMaxBytes, tc.want.TaskMaxMsgs)
			}
			if done := streamConfig(ctx, t, js, protocol.DoneStream); done.MaxBytes != tc.want.CompletionMaxBytes || done.MaxAge != time.Hour {
				t.Errorf("completions stream: bytes %d, age %v", done.MaxBytes, done.MaxAge)
			}
			if sched := streamConfig(ctx, t, js, fleet.ScheduleStream); sched.MaxAge != tc.want.ScheduleHorizon+24*time.Hour {
				t.Errorf("schedules stream keeps messages %v, want the horizon %v and a day", sched.MaxAge, tc.want.ScheduleHorizon)
			}
			if ev := streamConfig(ctx, t, js, protocol.EventStream); ev.MaxBytes != tc.want.EventMaxBytes {
				t.Errorf("events stream: bytes %d, want %d", ev.MaxBytes, tc.want.EventMaxBytes)
			}
			// The buckets and the results object store.
			opts := []fleet.Option{fleet.WithLimits(tc.limits)}
			mats, runs, mfs, err := fleet.Buckets(ctx, js, opts...)
			if err != nil {
				t.Fatal(err)
			}
			mats.Close()
			runs.Close()
			mfs.Close()
			scatter, err := fleet.ScatterBucket(ctx, js, opts...)
			if err != nil {
				t.Fatal(err)
			}
			scatter.Close()
			if _, err := fleet.ObjectStore(ctx, js, protocol.ResultsBucket, "results", 0, opts...); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				stream string
				want   int64
			}{
				{"KV_" + protocol.MaterializationsBucket, tc.want.RecordsMaxBytes},
				{"KV_" + protocol.ScatterBucket, tc.want.ScatterMaxBytes},
				{"OBJ_" + protocol.ResultsBucket, tc.want.ResultsMaxBytes},
			} {
				got := streamConfig(ctx, t, js, c.stream).MaxBytes
				if c.want == 0 {
					c.want = -1 // no bound
				}
				if got != c.want {
					t.Errorf("%s: max bytes %d, want %d", c.stream, got, c.want)
				}
			}
		})
	}
}

// A schedules stream an operator made shorter than the horizon would drop
// runs before they fire: a coordinator's start-up (which sets the
// horizon) refuses it and says what to change.
func TestSchedulesShorterThanTheHorizonFailStartUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	js := newJS(t)
	if err := fleet.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	sched := streamConfig(ctx, t, js, fleet.ScheduleStream)
	sched.MaxAge = 24 * time.Hour
	if _, err := js.UpdateStream(ctx, sched); err != nil {
		t.Fatal(err)
	}
	// A worker, which schedules nothing, starts over it.
	if err := fleet.Ensure(ctx, js); err != nil {
		t.Fatalf("Ensure without a horizon (a worker's): %v", err)
	}
	err := fleet.Ensure(ctx, js, fleet.WithLimits(fleet.Limits{ScheduleHorizon: fleet.ScheduleHorizonDefault}))
	if err == nil || !strings.Contains(err.Error(), "expire before they fire") || !strings.Contains(err.Error(), "nats stream edit "+fleet.ScheduleStream) {
		t.Fatalf("Ensure over a schedules stream shorter than the horizon = %v; want the fix named", err)
	}
	// A horizon within what the stream keeps is fine.
	if err := fleet.Ensure(ctx, js, fleet.WithLimits(fleet.Limits{ScheduleHorizon: 12 * time.Hour})); err != nil {
		t.Fatalf("Ensure with a 12 h horizon over a 24 h stream: %v", err)
	}
}

func TestLimitsCheck(t *testing.T) {
	if err := (fleet.Limits{}).Check(); err != nil {
		t.Errorf("zero limits (the defaults): %v", err)
	}
	if err := (fleet.Limits{TaskMaxBytes: -1}).Check(); err == nil || !strings.Contains(err.Error(), "task max bytes") {
		t.Errorf("negative task max bytes: %v", err)
	}
}
