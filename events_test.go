package flowstone_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/flowstone-go/flowstone"
)

// eventLog records the events an engine emits; subscribers run on the
// executing goroutines, so it locks.
type eventLog struct {
	mu     sync.Mutex
	events []flowstone.Event
}

func (l *eventLog) record(ev flowstone.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

// subscribe records e's events until the test ends.
func subscribe(t testing.TB, e *flowstone.Engine) *eventLog {
	l := &eventLog{}
	t.Cleanup(e.Subscribe(l.record))
	return l
}

func (l *eventLog) all() []flowstone.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// of returns the events of kind, for asset if asset is not empty.
func (l *eventLog) of(kind flowstone.EventKind, asset string) []flowstone.Event {
	var out []flowstone.Event
	for _, ev := range l.all() {
		if ev.Kind == kind && (asset == "" || ev.Asset == asset) {
			out = append(out, ev)
		}
	}
	return out
}

// one returns the only event of kind for asset, failing otherwise.
func (l *eventLog) one(t testing.TB, kind flowstone.EventKind, asset string) flowstone.Event {
	t.Helper()
	evs := l.of(kind, asset)
	if len(evs) != 1 {
		t.Fatalf("%d %s events for %q, want 1; all: %v", len(evs), kind, asset, kinds(l.all()))
	}
	return evs[0]
}

func kinds(evs []flowstone.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = string(ev.Kind) + ":" + ev.Asset
	}
	return out
}

// asInt64 reads an integer metadata value of any integer type.
func asInt64(t testing.TB, v any) int64 {
	t.Helper()
	switch n := v.(type) {
	case int:
		return int64(n)
	case int64:
		return n
	}
	t.Fatalf("metadata value %v is a %T, want an integer", v, v)
	return 0
}

func TestEventsOfARun(t *testing.T) {
	e := newEngine(t)
	log := subscribe(t, e)
	p := keyedPipeline(t, nil)
	res, err := e.Run(ctxT(t), p, "sum", flowstone.Partition("2025-01-15"))
	if err != nil {
		t.Fatal(err)
	}

	for _, asset := range []string{"numbers", "doubled", "sum"} {
		start := log.one(t, flowstone.EventRunStart, asset)
		stop := log.one(t, flowstone.EventRunStop, asset)
		for _, ev := range []flowstone.Event{start, stop} {
			if ev.Pipeline != "example" || ev.Partition != "2025-01-15" || ev.RunID != res.RunID || ev.Time.IsZero() {
				t.Fatalf("%s of %s = %+v, want pipeline, partition, run id and time set", ev.Kind, asset, ev)
			}
		}
		if stop.Duration <= 0 || stop.Err != nil {
			t.Fatalf("run.stop of %s: duration %v, err %v", asset, stop.Duration, stop.Err)
		}
		if stop.Time.Before(start.Time) {
			t.Fatalf("run.stop of %s precedes its start", asset)
		}

		// Each result is stored once, with where and how big: these are
		// small, so inside their records.
		ss := log.one(t, flowstone.EventStoreStart, asset)
		st := log.one(t, flowstone.EventStoreStop, asset)
		if ss.Metadata["storage"] != flowstone.InlineStorage || ss.Metadata["bytes"] == 0 {
			t.Fatalf("store.start metadata = %v", ss.Metadata)
		}
		if st.Metadata["storage"] != flowstone.InlineStorage || st.Metadata["bytes"] != ss.Metadata["bytes"] || st.Err != nil || st.Duration <= 0 {
			t.Fatalf("store.stop of %s = %+v", asset, st)
		}
		if rec := stored(t, e, p, asset); asInt64(t, st.Metadata["bytes"]) != rec.Value.Size || rec.Value.ObjectKey != "" || len(rec.Value.Inline) != int(rec.Value.Size) {
			t.Fatalf("store.stop of %s says %v bytes at %v; the record says %d at %s", asset, st.Metadata["bytes"], st.Metadata["key"], rec.Value.Size, rec.Value.ObjectKey)
		}
	}

	// Reading a dependency is a load, reported under the dependency's name.
	for _, dep := range []string{"numbers", "doubled"} {
		ls := log.one(t, flowstone.EventStorageLoadStart, dep)
		lt := log.one(t, flowstone.EventStorageLoadStop, dep)
		rec := stored(t, e, p, dep)
		if ls.Metadata["key"] != rec.Value.ObjectKey || lt.Metadata["key"] != rec.Value.ObjectKey || lt.Metadata["storage"] != flowstone.InlineStorage {
			t.Fatalf("load of %s: start %v stop %v, want key %s", dep, ls.Metadata, lt.Metadata, rec.Value.ObjectKey)
		}
		if asInt64(t, lt.Metadata["bytes"]) != rec.Value.Size || lt.Duration <= 0 || lt.RunID != res.RunID {
			t.Fatalf("load.stop of %s = %+v, want %d bytes", dep, lt, rec.Value.Size)
		}
	}
	if n := len(log.of(flowstone.EventStorageLoadStart, "sum")); n != 0 {
		t.Fatalf("nothing reads sum, yet %d loads of it", n)
	}
	if n := len(log.of(flowstone.EventRunException, "")); n != 0 {
		t.Fatalf("%d run.exception events in a successful run", n)
	}
}

// stored returns the record of a completed asset.
func stored(t testing.TB, e *flowstone.Engine, p *flowstone.Pipeline, asset string) *flowstone.Materialization {
	t.Helper()
	st, err := e.Status(ctxT(t), p, asset, flowstone.Partition("2025-01-15"))
	if err != nil || st.State != flowstone.StateCompleted {
		t.Fatalf("status of %s: %+v %v", asset, st, err)
	}
	res, err := e.Get(ctxT(t), p, asset, flowstone.Partition("2025-01-15"))
	if err != nil {
		t.Fatal(err)
	}
	return res.Record
}

func TestEventRunException(t *testing.T) {
	e := newEngine(t)
	log := subscribe(t, e)
	p := flowstone.MustPipeline("p",
		flowstone.Asset("broken", func(*flowstone.Context) (any, error) { return nil, errors.New("upstream API said 500") }),
		flowstone.Asset("after", noop, flowstone.DependsOn("broken")),
	)
	_, err := e.Run(ctxT(t), p, "after")
	wantType(t, err, flowstone.TypeDependencyFailed)

	log.one(t, flowstone.EventRunStart, "broken")
	ex := log.one(t, flowstone.EventRunException, "broken")
	if ex.Err == nil || ex.Err.Type != flowstone.TypeExecutionFailed || ex.Duration <= 0 {
		t.Fatalf("run.exception = %+v, want an execution_failed Err and a duration", ex)
	}
	if n := len(log.of(flowstone.EventRunStop, "broken")); n != 0 {
		t.Fatalf("a failed execution also sent %d run.stop", n)
	}
	// Nothing was stored, and the dependent never executed.
	if n := len(log.of(flowstone.EventStoreStart, "")); n != 0 {
		t.Fatalf("%d store events after a failure", n)
	}
	if n := len(log.of(flowstone.EventRunStart, "after")); n != 0 {
		t.Fatal("the dependent of a failed asset emitted run.start")
	}
}

func TestEventPanicIsAnException(t *testing.T) {
	e := newEngine(t)
	log := subscribe(t, e)
	p := flowstone.MustPipeline("p", flowstone.Asset("boom", func(*flowstone.Context) (any, error) { panic("kaboom") }))
	_, err := e.Run(ctxT(t), p, "boom")
	wantType(t, err, flowstone.TypeExecutionFailed)
	if ex := log.one(t, flowstone.EventRunException, "boom"); ex.Err == nil || ex.Err.Details["panic"] != "kaboom" {
		t.Fatalf("run.exception for a panic = %+v", ex)
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	e := newEngine(t)
	var mu sync.Mutex
	var first, second int
	unsub1 := e.Subscribe(func(flowstone.Event) { mu.Lock(); first++; mu.Unlock() })
	unsub2 := e.Subscribe(func(flowstone.Event) { mu.Lock(); second++; mu.Unlock() })
	defer unsub2()
	p := examplePipeline(t, nil)
	ctx := ctxT(t)
	if _, err := e.Run(ctx, p, "sum"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	f1, s1 := first, second
	mu.Unlock()
	if f1 == 0 || f1 != s1 {
		t.Fatalf("before unsubscribe: first=%d second=%d, want equal and non-zero", f1, s1)
	}
	unsub1()
	unsub1() // twice is harmless
	if _, err := e.Run(ctx, p, "sum", flowstone.Force()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if first != f1 {
		t.Fatalf("unsubscribed function received %d more events", first-f1)
	}
	if second == s1 {
		t.Fatal("the remaining subscriber received nothing")
	}
}

func TestCachedRunEmitsNoRunEvents(t *testing.T) {
	e := newEngine(t)
	p := examplePipeline(t, nil)
	ctx := ctxT(t)
	if _, err := e.Run(ctx, p, "sum"); err != nil {
		t.Fatal(err)
	}
	log := subscribe(t, e)
	res, err := e.Run(ctx, p, "sum")
	if err != nil || !res.Cached {
		t.Fatalf("second run: cached=%v err=%v", res != nil && res.Cached, err)
	}
	if evs := log.all(); len(evs) != 0 {
		t.Fatalf("a cached run emitted %v", kinds(evs))
	}
}

func TestScatterEvents(t *testing.T) {
	e := newEngine(t)
	log := subscribe(t, e)
	items := []string{"us", "eu", "asia", "africa"}
	p := flowstone.MustPipeline("p", flowstone.Asset("regions", func(c *flowstone.Context) (any, error) {
		if c.ScatterItem() == "asia" {
			return nil, errors.New("asia is down")
		}
		return "report for " + c.ScatterItem(), nil
	}, flowstone.Scatter(func(*flowstone.Context) ([]string, error) { return items, nil },
		flowstone.ScatterConfig{Parallel: 2, MaxFailures: 1})))
	res, err := e.Run(ctxT(t), p, "regions")
	if err != nil {
		t.Fatal(err)
	}

	evs := log.all()
	first := slices.IndexFunc(evs, func(ev flowstone.Event) bool { return ev.Kind == flowstone.EventScatterStart })
	last := slices.IndexFunc(evs, func(ev flowstone.Event) bool { return ev.Kind == flowstone.EventScatterStop })
	if first < 0 || last < first {
		t.Fatalf("scatter.start/stop missing or out of order: %v", kinds(evs))
	}
	started := map[string]int{}
	stopped := map[string]int{}
	for i, ev := range evs {
		switch ev.Kind {
		case flowstone.EventScatterItemStart, flowstone.EventScatterItemStop:
			if i < first || i > last {
				t.Fatalf("%s outside scatter.start..stop: %v", ev.Kind, kinds(evs))
			}
			item, _ := ev.Metadata["item"].(string)
			if ev.Asset != "regions" || ev.RunID != res.RunID {
				t.Fatalf("%s = %+v", ev.Kind, ev)
			}
			if ev.Kind == flowstone.EventScatterItemStart {
				started[item]++
				continue
			}
			stopped[item]++
			if (item == "asia") != (ev.Err != nil) {
				t.Fatalf("scatter.item.stop of %q has Err %v", item, ev.Err)
			}
			if ev.Duration <= 0 {
				t.Fatalf("scatter.item.stop of %q has no duration", item)
			}
		}
	}
	for _, item := range items {
		if started[item] != 1 || stopped[item] != 1 {
			t.Fatalf("item %q: %d starts, %d stops, want 1 each", item, started[item], stopped[item])
		}
	}
	if len(started) != len(items) || len(stopped) != len(items) {
		t.Fatalf("events for unknown items: %v %v", started, stopped)
	}
	if stop := evs[last]; stop.Duration <= 0 || stop.Asset != "regions" {
		t.Fatalf("scatter.stop = %+v", stop)
	}
	if n := len(log.of(flowstone.EventScatterStart, "")); n != 1 {
		t.Fatalf("%d scatter.start events", n)
	}
	// The scatter asset is still one run: one run.start and one run.stop.
	log.one(t, flowstone.EventRunStart, "regions")
	log.one(t, flowstone.EventRunStop, "regions")
	log.one(t, flowstone.EventStoreStop, "regions")
}

func TestEventsCostNothingWithoutSubscribers(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's own allocations make counts noisy")
	}
	e := newEngine(t)
	p := flowstone.MustPipeline("p",
		flowstone.Asset("dep", func(*flowstone.Context) (any, error) { return 1, nil }),
		flowstone.Asset("one", func(c *flowstone.Context) (any, error) { return flowstone.Dep[int](c, "dep") }, flowstone.DependsOn("dep")))
	ctx := ctxT(t)
	run := func() {
		if _, err := e.Run(ctx, p, "one", flowstone.Force()); err != nil {
			t.Fatal(err)
		}
	}
	run()
	without := testing.AllocsPerRun(50, run)
	unsubscribe := e.Subscribe(func(flowstone.Event) {})
	with := testing.AllocsPerRun(50, run)
	unsubscribe()
	again := testing.AllocsPerRun(50, run)
	// Events (and their metadata maps) are built only for subscribers.
	if with <= without || again >= with {
		t.Fatalf("allocations per run: %.0f without a subscriber, %.0f with one, %.0f after unsubscribing", without, with, again)
	}
}

// BenchmarkRunNoSubscriber and BenchmarkRunOneSubscriber execute the same
// one-asset run; the difference is what telemetry costs. With nobody
// subscribed, events are not even built.
func BenchmarkRunNoSubscriber(b *testing.B) { benchmarkRunEvents(b, 0) }

// BenchmarkRunOneSubscriber: see BenchmarkRunNoSubscriber.
func BenchmarkRunOneSubscriber(b *testing.B) { benchmarkRunEvents(b, 1) }

func benchmarkRunEvents(b *testing.B, subscribers int) {
	e := newEngine(b)
	var seen int
	var mu sync.Mutex
	for range subscribers {
		b.Cleanup(e.Subscribe(func(flowstone.Event) { mu.Lock(); seen++; mu.Unlock() }))
	}
	p := flowstone.MustPipeline("bench", flowstone.Asset("one", func(*flowstone.Context) (any, error) { return 1, nil }))
	ctx := ctxT(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Run(ctx, p, "one", flowstone.Force()); err != nil {
			b.Fatal(err)
		}
	}
	if subscribers > 0 && seen == 0 {
		b.Fatal("the subscriber saw nothing")
	}
}
