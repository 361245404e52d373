package coordinator_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/internal/fakeclock"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

// passWait bounds the wait for the schedulers' pass after the fake clock
// moved (a bound for a hang, not a sleep).
const passWait = 20 * time.Second

// autoSensor is a sensor whose runs and failures the test sets; it counts
// its evaluations.
type autoSensor struct {
	mu    sync.Mutex
	calls int
	files []string
	fail  string
}

func (s *autoSensor) evaluate(c *flowstone.SensorContext, cursor string) (flowstone.SensorResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	fail := s.fail
	s.fail = ""
	switch fail {
	case "panic":
		panic("sensor bug")
	case "garbage":
		return flowstone.SensorResult{Runs: []flowstone.SensorRun{{Asset: "nope"}}, Cursor: "x"}, nil
	}
	seen := 0
	fmt.Sscan(cursor, &seen)
	var res flowstone.SensorResult
	for _, f := range s.files[seen:] {
		res.Runs = append(res.Runs, flowstone.SensorRun{Asset: "report", Partition: f, RunKey: f})
	}
	res.Cursor = fmt.Sprint(len(s.files))
	return res, nil
}

func (s *autoSensor) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// autoPipeline is day -> report, partitioned by day, with a nightly
// schedule of report and a sensor.
func autoPipeline(s *autoSensor) *flowstone.Pipeline {
	return flowstone.MustPipeline("auto",
		flowstone.Asset("day", func(c *flowstone.Context) (any, error) { return c.Partition(), nil }, flowstone.PartitionedBy(flowstone.Daily)),
		flowstone.Asset("report", func(c *flowstone.Context) (any, error) { return "report of " + c.Partition(), nil }, flowstone.DependsOn("day")),
	).MustAutomate(
		flowstone.Schedule("nightly", "0 2 * * *", flowstone.Select("report"), flowstone.InTimeZone("Europe/Paris")),
		flowstone.Sensor("files", time.Minute, s.evaluate, flowstone.Timeout(5*time.Second)),
	)
}

// autoFleet is two coordinators on one fake clock and a worker hosting
// autoPipeline, with the schedule and sensor seen once.
func autoFleet(t *testing.T, s *autoSensor, start time.Time) (*env, *fakeclock.Clock) {
	t.Helper()
	e := newEnv(t)
	clock := fakeclock.New(start)
	e.startWorker(autoPipeline(s))
	e.startCoordinatorWith(coordinator.Config{ID: "c1", Clock: clock})
	e.startCoordinatorWith(coordinator.Config{ID: "c2", Clock: clock})
	e.waitPipeline("auto")
	// A pass then sees the schedule and the sensor.
	step(t, clock, time.Second)
	if got := schedules(t, e).Schedules; len(got) != 1 || got[0].NextTick == nil {
		t.Fatalf("schedules: %+v", got)
	}
	return e, clock
}

// step moves the clock and waits for both schedulers' pass.
func step(t *testing.T, clock *fakeclock.Clock, d time.Duration) {
	t.Helper()
	clock.Advance(d)
	if !clock.WaitForWaiters(2, passWait) {
		t.Fatalf("the schedulers did not finish their pass at %v", clock.Now())
	}
}

func schedules(t *testing.T, e *env) protocol.SchedulesReply {
	t.Helper()
	rep, perr := call[protocol.SchedulesReply](e, protocol.VerbSchedules, protocol.SchedulesRequest{V: protocol.Version, Pipeline: "auto"})
	if perr != nil {
		t.Fatal(perr)
	}
	return rep
}

func sensors(t *testing.T, e *env) protocol.SensorStatus {
	t.Helper()
	rep, perr := call[protocol.SensorsReply](e, protocol.VerbSensors, protocol.SensorsRequest{V: protocol.Version})
	if perr != nil || len(rep.Sensors) != 1 {
		t.Fatalf("sensors: %+v, %v", rep, perr)
	}
	return rep.Sensors[0]
}

// TestFleetScheduleFiresOncePerTick: with two coordinators up, the
// nightly tick starts one run of yesterday's report, on the worker.
func TestFleetScheduleFiresOncePerTick(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	e, clock := autoFleet(t, &autoSensor{}, time.Date(2025, 3, 10, 23, 0, 0, 0, paris))
	clock.Set(time.Date(2025, 3, 11, 2, 0, 0, 0, paris))
	if !clock.WaitForWaiters(2, passWait) {
		t.Fatal("no pass at the tick")
	}
	s := schedules(t, e).Schedules[0]
	if s.Fired != 1 || s.LastPartition != "2025-03-10" || len(s.LastRuns) != 1 {
		t.Fatalf("after the tick: %+v", s)
	}
	if rec := e.waitRun(s.LastRuns[0]); rec.State != protocol.StateCompleted || rec.Request.Partition != "2025-03-10" {
		t.Fatalf("the tick's run: %+v", rec)
	}
	step(t, clock, time.Hour)
	if s := schedules(t, e).Schedules[0]; s.Fired != 1 {
		t.Fatalf("fired %d times for one tick", s.Fired)
	}
	keys := runKeys(t, e, "sched-nightly-")
	if len(keys) != 1 {
		t.Fatalf("run records of the schedule: %v, want one", keys)
	}

	// Paused on the fleet: the next tick does not fire.
	if _, perr := call[protocol.PauseReply](e, protocol.VerbPause, protocol.PauseRequest{V: protocol.Version, Pipeline: "auto", Name: "nightly"}); perr != nil {
		t.Fatal(perr)
	}
	clock.Set(time.Date(2025, 3, 12, 2, 0, 0, 0, paris))
	clock.WaitForWaiters(2, passWait)
	if s := schedules(t, e).Schedules[0]; !s.Paused || s.Fired != 1 || s.NextTick != nil {
		t.Fatalf("paused: %+v", s)
	}
	_, perr := call[protocol.PauseReply](e, protocol.VerbPause, protocol.PauseRequest{V: protocol.Version, Pipeline: "auto", Name: "weekly"})
	wantCode(t, perr, protocol.CodeNotFound)
}

// runKeys lists the run ids in the runs bucket that start with prefix.
func runKeys(t *testing.T, e *env, prefix string) []string {
	t.Helper()
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	kv := bucket(t, e, protocol.RunsBucket)
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range keys.Keys() {
		if id, ok := strings.CutPrefix(k, protocol.RunKey("")); ok && strings.HasPrefix(id, prefix) {
			out = append(out, id)
		}
	}
	return out
}

// TestFleetSensorEvaluatedByAWorker: the coordinators, without the
// pipeline's code, have a worker evaluate the sensor once per interval;
// its runs start once; a panic or garbage is a failed evaluation that
// keeps the cursor.
func TestFleetSensorEvaluatedByAWorker(t *testing.T) {
	s := &autoSensor{}
	e, clock := autoFleet(t, s, time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC))
	if got := s.count(); got != 1 {
		t.Fatalf("evaluated %d times in the first interval, want once", got)
	}
	s.mu.Lock()
	s.files = []string{"2025-03-01", "2025-03-02"}
	s.mu.Unlock()
	step(t, clock, time.Minute)
	st := sensors(t, e)
	if st.Cursor != "2" || len(st.LastRuns) != 2 || st.Evaluations != 2 || s.count() != 2 {
		t.Fatalf("after two files: %+v (calls %d)", st, s.count())
	}
	for _, id := range st.LastRuns {
		if rec := e.waitRun(id); rec.State != protocol.StateCompleted {
			t.Fatalf("sensor run %s: %+v", id, rec)
		}
	}
	for _, fail := range []string{"panic", "garbage"} {
		s.mu.Lock()
		s.fail = fail
		s.mu.Unlock()
		step(t, clock, time.Minute)
		st := sensors(t, e)
		if st.Error == nil || st.Cursor != "2" || st.Failures == 0 {
			t.Fatalf("after a %s: %+v", fail, st)
		}
		if fail == "panic" && !strings.Contains(st.Error.Message, "panicked") {
			t.Fatalf("error %v", st.Error)
		}
	}
	step(t, clock, time.Minute)
	if st := sensors(t, e); st.Error != nil || st.Cursor != "2" || len(runKeys(t, e, "sensor-files-")) != 2 {
		t.Fatalf("after a good evaluation: %+v, runs %v", st, runKeys(t, e, "sensor-files-"))
	}
	if got := s.count(); got != 5 {
		t.Fatalf("%d evaluations in 5 intervals with two coordinators", got)
	}
}

// bucket binds a fleet KV bucket.
func bucket(t *testing.T, e *env, name string) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}
