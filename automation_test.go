package flowstone_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/fakeclock"
	"github.com/flowstone-go/flowstone/kv"
)

// passWait bounds the wait for a scheduler to finish a pass after the
// fake clock moved: a bound for a hang, never a sleep.
const passWait = 10 * time.Second

var paris = mustZone("Europe/Paris")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// executions records which partitions an asset executed, and tells each
// one on a channel.
type executions struct {
	mu   sync.Mutex
	done []string
	ch   chan string
}

func newExecutions() *executions { return &executions{ch: make(chan string, 1000)} }

func (x *executions) add(s string) {
	x.mu.Lock()
	x.done = append(x.done, s)
	x.mu.Unlock()
	x.ch <- s
}

func (x *executions) list() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.done)
}

// next waits for the next execution.
func (x *executions) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-x.ch:
		return s
	case <-time.After(passWait):
		t.Fatalf("no execution within %v; so far %v", passWait, x.list())
		return ""
	}
}

// salesPipeline is orders -> revenue, partitioned by day, with revenue's
// executions recorded.
func salesPipeline(x *executions) *flowstone.Pipeline {
	return flowstone.MustPipeline("sales",
		flowstone.Asset("orders", func(c *flowstone.Context) (any, error) { return 3, nil }, flowstone.PartitionedBy(flowstone.Daily)),
		flowstone.Asset("revenue", func(c *flowstone.Context) (any, error) {
			x.add(c.Partition() + "/" + c.RunID())
			return 30, nil
		}, flowstone.DependsOn("orders")),
	)
}

// autoEngine is an engine over store on clock.
func autoEngine(t *testing.T, store kv.Store, clock *fakeclock.Clock) *flowstone.Engine {
	t.Helper()
	e, err := flowstone.NewEngine(flowstone.EngineConfig{KV: store})
	if err != nil {
		t.Fatal(err)
	}
	flowstone.SetClock(e, clock)
	t.Cleanup(e.Close)
	return e
}

// advance moves the clock to t and waits until n schedulers have finished
// their pass.
func advance(t *testing.T, clock *fakeclock.Clock, to time.Time, n int) {
	t.Helper()
	clock.Set(to)
	if !clock.WaitForWaiters(n, passWait) {
		t.Fatalf("%d scheduler(s) did not finish their pass at %v", n, to)
	}
}

func scheduleOf(t *testing.T, e *flowstone.Engine, p *flowstone.Pipeline, name string) flowstone.ScheduleStatus {
	t.Helper()
	list, err := e.Schedules(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no schedule %s in %+v", name, list)
	return flowstone.ScheduleStatus{}
}

// TestScheduleDailyFiresOncePerTick: a daily schedule at 02:00 Paris time
// fires at each tick for the day before, once, with two engines sharing
// one store and running it.
func TestScheduleDailyFiresOncePerTick(t *testing.T) {
	x := newExecutions()
	p := salesPipeline(x).MustAutomate(
		flowstone.Schedule("nightly", "0 2 * * *", flowstone.Select("revenue"), flowstone.InTimeZone("Europe/Paris")))
	store := kv.NewMemory()
	clock := fakeclock.New(time.Date(2025, 3, 10, 10, 0, 0, 0, paris))
	e1, e2 := autoEngine(t, store, clock), autoEngine(t, store, clock)
	ctx := context.Background()
	for _, e := range []*flowstone.Engine{e1, e2} {
		if err := e.StartAutomation(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if !clock.WaitForWaiters(2, passWait) {
		t.Fatal("the schedulers did not start")
	}
	s := scheduleOf(t, e1, p, "nightly")
	if want := time.Date(2025, 3, 11, 2, 0, 0, 0, paris); s.NextTick == nil || !s.NextTick.Equal(want) {
		t.Fatalf("next tick %v, want %v", s.NextTick, want)
	}
	if s.LastTick != nil || s.Fired != 0 || s.Mapping != "previous_day" || s.TimeZone != "Europe/Paris" {
		t.Fatalf("before any tick: %+v", s)
	}

	advance(t, clock, time.Date(2025, 3, 11, 1, 59, 59, 0, paris), 2)
	if got := scheduleOf(t, e1, p, "nightly").Fired; got != 0 {
		t.Fatalf("fired %d before its tick", got)
	}
	advance(t, clock, time.Date(2025, 3, 11, 2, 0, 0, 0, paris), 2)
	if got := x.next(t); !strings.HasPrefix(got, "2025-03-10/sched-nightly-20250311T010000Z-") {
		t.Fatalf("executed %s, want yesterday's revenue by the tick's run", got)
	}
	advance(t, clock, time.Date(2025, 3, 11, 3, 0, 0, 0, paris), 2)
	advance(t, clock, time.Date(2025, 3, 12, 2, 0, 0, 0, paris), 2)
	if got := x.next(t); !strings.HasPrefix(got, "2025-03-11/") {
		t.Fatalf("executed %s, want 2025-03-11's revenue", got)
	}
	s = scheduleOf(t, e2, p, "nightly")
	if s.Fired != 2 || s.LastPartition != "2025-03-11" || len(s.LastRuns) != 1 || s.LastTick == nil ||
		!s.LastTick.Equal(time.Date(2025, 3, 12, 2, 0, 0, 0, paris)) {
		t.Fatalf("after two ticks: %+v", s)
	}
	e1.Close()
	e2.Close()
	if got := x.list(); len(got) != 2 {
		t.Fatalf("revenue executed %d times, want once per tick: %v", len(got), got)
	}
}

// TestScheduleCatchUp: ticks missed while no engine ran the schedule are
// caught up by its policy when one runs it again.
func TestScheduleCatchUp(t *testing.T) {
	for _, tc := range []struct {
		policy         flowstone.CatchUpPolicy
		fired, skipped int64
		partitions     []string
	}{
		{flowstone.CatchUpLatest, 1, 2, []string{"2025-03-13"}},
		{flowstone.CatchUpAll, 3, 0, []string{"2025-03-11", "2025-03-12", "2025-03-13"}},
		{flowstone.CatchUpNone, 0, 3, nil},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			x := newExecutions()
			p := salesPipeline(x).MustAutomate(flowstone.Schedule("nightly", "0 2 * * *", flowstone.Select("revenue"), flowstone.CatchUp(tc.policy)))
			store := kv.NewMemory()
			clock := fakeclock.New(time.Date(2025, 3, 11, 12, 0, 0, 0, time.UTC))
			ctx := context.Background()
			e := autoEngine(t, store, clock)
			if err := e.StartAutomation(ctx, p); err != nil {
				t.Fatal(err)
			}
			advance(t, clock, clock.Now(), 1)
			e.Close() // every process down for three ticks
			clock.Set(time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC))
			e = autoEngine(t, store, clock)
			if err := e.StartAutomation(ctx, p); err != nil {
				t.Fatal(err)
			}
			advance(t, clock, clock.Now(), 1)
			s := scheduleOf(t, e, p, "nightly")
			if s.Fired != tc.fired || s.Skipped != tc.skipped {
				t.Fatalf("fired %d, skipped %d; want %d, %d", s.Fired, s.Skipped, tc.fired, tc.skipped)
			}
			e.Close()
			var got []string
			for _, s := range x.list() {
				got = append(got, strings.Split(s, "/")[0])
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.partitions) {
				t.Fatalf("executed %v, want %v", got, tc.partitions)
			}
			if want := time.Date(2025, 3, 15, 2, 0, 0, 0, time.UTC); s.NextTick == nil || !s.NextTick.Equal(want) {
				t.Fatalf("next tick %v, want %v", s.NextTick, want)
			}
		})
	}
}

// TestScheduleDST: ticks follow Paris's wall clock; 02:30 does not exist
// on the day clocks go forward (skipped), and happens twice on the day
// they go back (fired once).
func TestScheduleDST(t *testing.T) {
	x := newExecutions()
	p := salesPipeline(x).MustAutomate(flowstone.Schedule("early", "30 2 * * *", flowstone.Select("revenue"),
		flowstone.InTimeZone("Europe/Paris"), flowstone.MapTick(flowstone.SameDay)))
	next := func(from time.Time) time.Time {
		t.Helper()
		clock := fakeclock.New(from)
		e := autoEngine(t, kv.NewMemory(), clock)
		s := scheduleOf(t, e, p, "early")
		return *s.NextTick
	}
	// Spring forward, Sunday 30 March 2025: 02:00 becomes 03:00.
	if got, want := next(time.Date(2025, 3, 29, 12, 0, 0, 0, paris)), time.Date(2025, 3, 31, 2, 30, 0, 0, paris); !got.Equal(want) {
		t.Errorf("after 29 March: next tick %v, want %v (none on the 30th)", got.In(paris), want)
	}
	// Fall back, Sunday 26 October 2025: 03:00 becomes 02:00; 02:30 is
	// seen twice and fires at its first.
	first := time.Date(2025, 10, 26, 0, 30, 0, 0, time.UTC) // 02:30 CEST
	if got := next(time.Date(2025, 10, 25, 12, 0, 0, 0, paris)); !got.Equal(first) {
		t.Errorf("after 25 October: next tick %v, want %v", got.In(paris), first.In(paris))
	}
	store := kv.NewMemory()
	clock := fakeclock.New(first.Add(-time.Minute))
	e := autoEngine(t, store, clock)
	if err := e.StartAutomation(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	advance(t, clock, clock.Now(), 1)
	advance(t, clock, first, 1)
	advance(t, clock, first.Add(time.Hour), 1) // 02:30 CET
	advance(t, clock, first.Add(2*time.Hour), 1)
	s := scheduleOf(t, e, p, "early")
	if s.Fired != 1 {
		t.Fatalf("fired %d times on the day clocks go back, want once", s.Fired)
	}
	if want := time.Date(2025, 10, 27, 2, 30, 0, 0, paris); !s.NextTick.Equal(want) {
		t.Fatalf("next tick %v, want %v", s.NextTick.In(paris), want)
	}
}

// TestAutomateRefusesBadDefinitions: every bad schedule or sensor is a
// clear error, and the pipeline it was declared on is left as it was.
func TestAutomateRefusesBadDefinitions(t *testing.T) {
	x := newExecutions()
	p := salesPipeline(x)
	ok := func(*flowstone.SensorContext, string) (flowstone.SensorResult, error) {
		return flowstone.SensorResult{}, nil
	}
	static := flowstone.MustPipeline("regions", flowstone.Asset("r", func(*flowstone.Context) (any, error) { return 1, nil },
		flowstone.PartitionedBy(flowstone.Static("us", "eu"))))
	for _, tc := range []struct {
		name string
		p    *flowstone.Pipeline
		def  flowstone.Automation
		typ  flowstone.ErrorType
		says string
	}{
		{"invalid cron", p, flowstone.Schedule("s", "0 25 * * *", flowstone.Select("revenue")), flowstone.TypeConfigError, "invalid cron expression"},
		{"cron gibberish", p, flowstone.Schedule("s", "every day", flowstone.Select("revenue")), flowstone.TypeConfigError, "invalid cron expression"},
		{"unknown zone", p, flowstone.Schedule("s", "0 2 * * *", flowstone.Select("revenue"), flowstone.InTimeZone("Mars/Olympus")), flowstone.TypeConfigError, "unknown time zone"},
		{"zone in cron", p, flowstone.Schedule("s", "CRON_TZ=Europe/Paris 0 2 * * *", flowstone.Select("revenue")), flowstone.TypeConfigError, "InTimeZone"},
		{"unknown asset", p, flowstone.Schedule("s", "0 2 * * *", flowstone.Select("revenue", "profit")), flowstone.TypeAssetNotFound, `"profit" not found`},
		{"no asset", p, flowstone.Schedule("s", "0 2 * * *", nil), flowstone.TypeConfigError, "selects no asset"},
		{"bad name", p, flowstone.Schedule("2am", "0 2 * * *", flowstone.Select("revenue")), flowstone.TypeConfigError, "invalid schedule or sensor name"},
		{"hour mapping on days", p, flowstone.Schedule("s", "0 2 * * *", flowstone.Select("revenue"), flowstone.MapTick(flowstone.SameHour)), flowstone.TypeConfigError, "cannot take the partitions"},
		{"static without mapping", static, flowstone.Schedule("s", "0 2 * * *", flowstone.Select("r")), flowstone.TypeConfigError, "MapTick"},
		{"static foreign key", static, flowstone.Schedule("s", "0 2 * * *", flowstone.Select("r"), flowstone.MapTick(flowstone.FixedKey("asia"))), flowstone.TypeConfigError, "cannot take"},
		{"sensor without function", p, flowstone.Sensor("s", time.Minute, nil), flowstone.TypeConfigError, "has no function"},
		{"sensor too often", p, flowstone.Sensor("s", time.Millisecond, ok), flowstone.TypeConfigError, "below the minimum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := tc.p.Automate(tc.def)
			var fe *flowstone.Error
			if !errors.As(err, &fe) || fe.Type != tc.typ || !strings.Contains(fe.Message, tc.says) {
				t.Fatalf("Automate = %v, %v; want a %s error saying %q", q, err, tc.typ, tc.says)
			}
			if len(tc.p.ScheduleNames())+len(tc.p.SensorNames()) != 0 {
				t.Fatal("the pipeline changed")
			}
		})
	}
	t.Run("name taken", func(t *testing.T) {
		q := p.MustAutomate(flowstone.Schedule("nightly", "@daily", flowstone.Select("revenue")))
		if _, err := q.Automate(flowstone.Sensor("nightly", time.Minute, ok)); !errors.Is(err, flowstone.ErrConfig) {
			t.Fatalf("a sensor named as a schedule: %v", err)
		}
		if got := q.ScheduleNames(); !slices.Equal(got, []string{"nightly"}) || len(p.ScheduleNames()) != 0 {
			t.Fatalf("schedules %v, original %v", got, p.ScheduleNames())
		}
	})
	t.Run("fixed key static", func(t *testing.T) {
		if _, err := static.Automate(flowstone.Schedule("s", "@hourly", flowstone.Select("r"), flowstone.MapTick(flowstone.FixedKey("eu")))); err != nil {
			t.Fatal(err)
		}
	})
}

// fileSensor is a sensor over a list of file names the test appends to:
// its cursor is how many it has seen; each new file is a run of revenue
// for the partition in its name, keyed by the file.
type fileSensor struct {
	mu    sync.Mutex
	files []string
	calls int
	// fail makes the next evaluation return this (error, panic, garbage).
	fail string
}

func (f *fileSensor) add(names ...string) {
	f.mu.Lock()
	f.files = append(f.files, names...)
	f.mu.Unlock()
}

func (f *fileSensor) evaluate(c *flowstone.SensorContext, cursor string) (flowstone.SensorResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	fail := f.fail
	f.fail = ""
	switch fail {
	case "error":
		return flowstone.SensorResult{}, errors.New("listing failed")
	case "panic":
		panic("sensor bug")
	case "garbage":
		return flowstone.SensorResult{Runs: []flowstone.SensorRun{{Asset: "profit", Partition: "2025-01-01"}}, Cursor: "99"}, nil
	case "bad partition":
		return flowstone.SensorResult{Runs: []flowstone.SensorRun{{Asset: "revenue", Partition: "yesterday"}}, Cursor: "99"}, nil
	}
	seen := 0
	fmt.Sscan(cursor, &seen)
	var res flowstone.SensorResult
	for _, name := range f.files[seen:] {
		res.Runs = append(res.Runs, flowstone.SensorRun{Asset: "revenue", Partition: strings.TrimSuffix(name, ".csv"), RunKey: name})
	}
	res.Cursor = fmt.Sprint(len(f.files))
	return res, nil
}

func sensorOf(t *testing.T, e *flowstone.Engine, p *flowstone.Pipeline) flowstone.SensorStatus {
	t.Helper()
	list, err := e.Sensors(context.Background(), p)
	if err != nil || len(list) != 1 {
		t.Fatalf("Sensors = %+v, %v", list, err)
	}
	return list[0]
}

// TestSensorRunsNewFilesOnce: a sensor evaluated every minute, by one of
// two engines sharing a store, starts a run per new file once; failed
// evaluations (an error, a panic, garbage) are recorded, start nothing
// and keep the cursor.
func TestSensorRunsNewFilesOnce(t *testing.T) {
	x := newExecutions()
	fs := &fileSensor{}
	p := salesPipeline(x).MustAutomate(flowstone.Sensor("files", time.Minute, fs.evaluate))
	store := kv.NewMemory()
	clock := fakeclock.New(time.Date(2025, 3, 10, 10, 0, 0, 0, time.UTC))
	e1, e2 := autoEngine(t, store, clock), autoEngine(t, store, clock)
	for _, e := range []*flowstone.Engine{e1, e2} {
		if err := e.StartAutomation(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	if !clock.WaitForWaiters(2, passWait) {
		t.Fatal("the schedulers did not start")
	}
	s := sensorOf(t, e1, p)
	if s.Evaluations != 1 || s.Cursor != "0" || s.Failures != 0 {
		t.Fatalf("after the first pass: %+v", s)
	}
	fs.add("2025-03-01.csv", "2025-03-02.csv")
	advance(t, clock, clock.Now().Add(30*time.Second), 2)
	if got := sensorOf(t, e1, p).Evaluations; got != 1 {
		t.Fatalf("evaluated %d times within its first interval", got)
	}
	advance(t, clock, clock.Now().Add(30*time.Second), 2)
	got := []string{strings.Split(x.next(t), "/")[0], strings.Split(x.next(t), "/")[0]}
	slices.Sort(got)
	if !slices.Equal(got, []string{"2025-03-01", "2025-03-02"}) {
		t.Fatalf("executed %v", got)
	}
	s = sensorOf(t, e2, p)
	if s.Evaluations != 2 || s.Cursor != "2" || len(s.LastRuns) != 2 {
		t.Fatalf("after the new files: %+v", s)
	}

	for _, fail := range []string{"error", "panic", "garbage", "bad partition"} {
		t.Run(fail, func(t *testing.T) {
			fs.mu.Lock()
			fs.fail = fail
			fs.mu.Unlock()
			fs.add("2025-03-0" + fmt.Sprint(len(fs.files)+1) + ".csv")
			before := sensorOf(t, e1, p)
			advance(t, clock, clock.Now().Add(time.Minute), 2)
			s := sensorOf(t, e1, p)
			if s.Failures != before.Failures+1 || s.Cursor != before.Cursor || s.Error == nil {
				t.Fatalf("a failed evaluation (%s): %+v", fail, s)
			}
			if fail == "panic" && !strings.Contains(s.Error.Message, "panicked: sensor bug") {
				t.Fatalf("error %v does not tell the panic", s.Error)
			}
			if fail == "garbage" && (s.Error.Type != flowstone.TypeBadRequest || !strings.Contains(s.Error.Message, `"profit"`)) {
				t.Fatalf("error %v does not name the unknown asset", s.Error)
			}
			// The next evaluation sees the file again, from the same cursor.
			advance(t, clock, clock.Now().Add(time.Minute), 2)
			if got := strings.Split(x.next(t), "/")[0]; got != strings.TrimSuffix(fs.files[len(fs.files)-1], ".csv") {
				t.Fatalf("executed %s after the failure", got)
			}
			if s := sensorOf(t, e1, p); s.Error != nil || s.Cursor != fmt.Sprint(len(fs.files)) {
				t.Fatalf("after a good evaluation: %+v", s)
			}
		})
	}
	e1.Close()
	e2.Close()
	if n := len(x.list()); n != 6 {
		t.Fatalf("%d executions for 6 files: %v", n, x.list())
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if want := 2 + 2*4; fs.calls != want {
		t.Fatalf("the sensor was evaluated %d times in %d intervals: two engines must evaluate each interval once", fs.calls, want)
	}
}

// TestSensorRunKeysDedupe: runs a sensor requests again (an evaluation
// that returns old files from an old cursor) do not start again.
func TestSensorRunKeysDedupe(t *testing.T) {
	x := newExecutions()
	calls := 0
	p := salesPipeline(x).MustAutomate(flowstone.Sensor("again", time.Minute, func(c *flowstone.SensorContext, cursor string) (flowstone.SensorResult, error) {
		calls++
		// Always the same request and no cursor: a sensor that forgets.
		return flowstone.SensorResult{Runs: []flowstone.SensorRun{{Asset: "revenue", Partition: "2025-03-01", RunKey: "file-1"}}}, nil
	}))
	clock := fakeclock.New(time.Date(2025, 3, 10, 10, 0, 0, 0, time.UTC))
	e := autoEngine(t, kv.NewMemory(), clock)
	if err := e.StartAutomation(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	advance(t, clock, clock.Now(), 1)
	for range 3 {
		advance(t, clock, clock.Now().Add(time.Minute), 1)
	}
	e.Close()
	if n := len(x.list()); n != 1 || calls != 4 {
		t.Fatalf("%d executions in %d evaluations of one run key, want 1", n, calls)
	}
}

// TestPauseAndResume: a paused schedule fires nothing and shows no next
// tick; once resumed, its ticks count from then (no catch-up of the
// pause). Unknown names are NotFound errors.
func TestPauseAndResume(t *testing.T) {
	x := newExecutions()
	fs := &fileSensor{}
	p := salesPipeline(x).MustAutomate(
		flowstone.Schedule("nightly", "0 2 * * *", flowstone.Select("revenue"), flowstone.CatchUp(flowstone.CatchUpAll)),
		flowstone.Sensor("files", time.Minute, fs.evaluate))
	clock := fakeclock.New(time.Date(2025, 3, 10, 10, 0, 0, 0, time.UTC))
	e := autoEngine(t, kv.NewMemory(), clock)
	ctx := context.Background()
	for _, name := range []string{"nightly", "files"} {
		if err := e.PauseAutomation(ctx, p, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.PauseAutomation(ctx, p, "hourly"); !errors.Is(err, flowstone.ErrNotFound) || !strings.Contains(err.Error(), "nightly") {
		t.Fatalf("pause of an unknown name: %v", err)
	}
	if err := e.StartAutomation(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := e.StartAutomation(ctx, p); !errors.Is(err, flowstone.ErrConfig) {
		t.Fatalf("a second StartAutomation: %v", err)
	}
	advance(t, clock, clock.Now(), 1)
	advance(t, clock, time.Date(2025, 3, 12, 12, 0, 0, 0, time.UTC), 1)
	s := scheduleOf(t, e, p, "nightly")
	if !s.Paused || s.NextTick != nil || s.Fired != 0 || sensorOf(t, e, p).Evaluations != 0 {
		t.Fatalf("paused: %+v, %+v", s, sensorOf(t, e, p))
	}
	for _, name := range []string{"nightly", "files"} {
		if err := e.ResumeAutomation(ctx, p, name); err != nil {
			t.Fatal(err)
		}
	}
	advance(t, clock, clock.Now().Add(time.Second), 1)
	s = scheduleOf(t, e, p, "nightly")
	if s.Paused || s.Fired != 0 || s.NextTick == nil || !s.NextTick.Equal(time.Date(2025, 3, 13, 2, 0, 0, 0, time.UTC)) {
		t.Fatalf("resumed: %+v", s)
	}
	if got := sensorOf(t, e, p).Evaluations; got != 1 {
		t.Fatalf("resumed sensor evaluated %d times", got)
	}
	advance(t, clock, time.Date(2025, 3, 13, 2, 0, 0, 0, time.UTC), 1)
	if got := x.next(t); !strings.HasPrefix(got, "2025-03-12/") {
		t.Fatalf("executed %s", got)
	}
}

// TestAutomationRestartsAfterStop: Engine.Close stops the scheduler; the
// engine can start it again, and it goes on from the store.
func TestAutomationRestartsAfterStop(t *testing.T) {
	x := newExecutions()
	p := salesPipeline(x).MustAutomate(flowstone.Schedule("nightly", "@daily", flowstone.Select("revenue")))
	clock := fakeclock.New(time.Date(2025, 3, 10, 10, 0, 0, 0, time.UTC))
	e := autoEngine(t, kv.NewMemory(), clock)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.StartAutomation(ctx, p); err != nil {
		t.Fatal(err)
	}
	advance(t, clock, clock.Now(), 1)
	e.Close()
	if err := e.StartAutomation(context.Background(), p); err != nil {
		t.Fatalf("StartAutomation after Close: %v", err)
	}
	advance(t, clock, time.Date(2025, 3, 11, 0, 0, 0, 0, time.UTC), 1)
	if got := x.next(t); !strings.HasPrefix(got, "2025-03-10/") {
		t.Fatalf("executed %s", got)
	}
}
