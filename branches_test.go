package flowstone_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
)

// barrier lets n functions through once all n have arrived, or fails
// them when ctx ends first.
type barrier struct {
	mu      sync.Mutex
	waiting int
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{waiting: n, all: make(chan struct{})} }

func (b *barrier) arrive(ctx context.Context) error {
	b.mu.Lock()
	b.waiting--
	if b.waiting == 0 {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return nil
	case <-ctx.Done():
		return errors.New("the other branches never started alongside this one")
	}
}

// joinPipeline is regions: eu_raw → eu_total and us_total, joined by
// total with cfg; us_total fails while fail is set, eu_total waits at
// gate (nil: never) and both meet at meet (nil: never) before returning.
func joinPipeline(cfg flowstone.JoinConfig, fail *atomic.Bool, gate chan struct{}, meet *barrier, got *map[string]flowstone.BranchResult) *flowstone.Pipeline {
	wait := func(c *flowstone.Context) error {
		if meet != nil {
			if err := meet.arrive(c.Context()); err != nil {
				return err
			}
		}
		if gate != nil {
			select {
			case <-gate:
			case <-c.Context().Done():
				return c.Context().Err()
			}
		}
		return nil
	}
	return flowstone.MustPipeline("regions",
		flowstone.Asset("eu_raw", func(*flowstone.Context) (any, error) { return 40, nil }),
		flowstone.Asset("eu_total", func(c *flowstone.Context) (any, error) {
			if err := wait(c); err != nil {
				return nil, err
			}
			n, err := flowstone.Dep[int](c, "eu_raw")
			return n + 2, err
		}, flowstone.DependsOn("eu_raw")),
		flowstone.Asset("us_total", func(c *flowstone.Context) (any, error) {
			if meet != nil {
				if err := meet.arrive(c.Context()); err != nil {
					return nil, err
				}
			}
			if fail != nil && fail.Load() {
				return nil, errors.New("the US feed is down")
			}
			return 58, nil
		}),
		flowstone.Asset("total", func(c *flowstone.Context) (any, error) {
			branches := c.Branches()
			if got != nil {
				*got = branches
			}
			sum := 0
			for _, b := range branches {
				if !b.OK() {
					continue
				}
				var n int
				if err := b.Decode(&n); err != nil {
					return nil, err
				}
				sum += n
			}
			return sum, nil
		}, flowstone.Join(flowstone.Branches{"eu": "eu_total", "us": "us_total"}, cfg)),
	)
}

func TestJoinRunsBranchesConcurrentlyAndGetsTheirValues(t *testing.T) {
	e := newEngine(t)
	var got map[string]flowstone.BranchResult
	p := joinPipeline(flowstone.JoinConfig{}, nil, nil, newBarrier(2), &got)
	res, err := e.Run(ctxT(t), p, "total")
	if err != nil {
		t.Fatal(err)
	}
	if n := decodeInt(t, res); n != 100 {
		t.Fatalf("total = %d, want 100", n)
	}
	if len(got) != 2 || got["eu"].Asset != "eu_total" || got["us"].Branch != "us" || !got["us"].OK() || got["us"].Err != nil || got["us"].Skipped {
		t.Fatalf("branches = %+v", got)
	}
	info, err := flowstone.AssetInfo(p, "total")
	if err != nil || !info.Parallel || info.Branches["eu"] != "eu_total" || info.Join == nil || info.Join.Mode != flowstone.AllOrNothing {
		t.Fatalf("info = %+v, %v", info, err)
	}
	if info, _ := flowstone.AssetInfo(p, "eu_total"); info.Parallel {
		t.Fatalf("a branch is not a join: %+v", info)
	}
}

func TestJoinAllOrNothingFailsOnAFailedBranch(t *testing.T) {
	e := newEngine(t)
	var fail atomic.Bool
	fail.Store(true)
	p := joinPipeline(flowstone.JoinConfig{Mode: flowstone.AllOrNothing}, &fail, nil, nil, nil)
	_, err := e.Run(ctxT(t), p, "total")
	fe := wantType(t, err, flowstone.TypeDependencyFailed)
	if fe.Details["branch"] != "us" || fe.Details["root_asset"] != "us_total" || !strings.Contains(fe.Message, `branch "us"`) {
		t.Fatalf("error = %v (%+v), want it to name branch us", fe, fe.Details)
	}
	// The branch that succeeded keeps its value for the next run.
	if ok, _ := e.Exists(ctxT(t), p, "eu_total"); !ok {
		t.Fatal("eu_total lost its value")
	}
}

func TestJoinPartialGetsTheFailedOptionalBranchError(t *testing.T) {
	e := newEngine(t)
	var fail atomic.Bool
	fail.Store(true)
	var got map[string]flowstone.BranchResult
	p := joinPipeline(flowstone.JoinConfig{Mode: flowstone.Partial, Optional: []string{"us"}}, &fail, nil, nil, &got)
	res, err := e.Run(ctxT(t), p, "total")
	if err != nil {
		t.Fatal(err)
	}
	if n := decodeInt(t, res); n != 42 {
		t.Fatalf("total = %d, want the EU's 42 alone", n)
	}
	us := got["us"]
	if us.OK() || us.Skipped || us.Err == nil || us.Err.Type != flowstone.TypeExecutionFailed || !strings.Contains(us.Err.Message, "feed is down") {
		t.Fatalf("us = %+v (err %v), want its execution error", us, us.Err)
	}
	var n int
	if err := us.Decode(&n); !errors.Is(err, flowstone.ErrNotFound) {
		t.Fatalf("decode of the failed branch = %v, want not_found", err)
	}
	if !got["eu"].OK() {
		t.Fatalf("eu = %+v", got["eu"])
	}
}

func TestJoinTimeoutCancelsTheBranchesNotDone(t *testing.T) {
	gate := make(chan struct{})
	defer close(gate)
	t.Run("partial", func(t *testing.T) {
		e := newEngine(t)
		var got map[string]flowstone.BranchResult
		p := joinPipeline(flowstone.JoinConfig{Mode: flowstone.Partial, Optional: []string{"eu"}, Timeout: 200 * time.Millisecond}, nil, gate, nil, &got)
		start := time.Now()
		res, err := e.Run(ctxT(t), p, "total")
		if err != nil {
			t.Fatal(err)
		}
		if n := decodeInt(t, res); n != 58 || time.Since(start) < 200*time.Millisecond {
			t.Fatalf("total = %d after %v, want the US's 58 once the timeout passed", n, time.Since(start))
		}
		eu := got["eu"]
		if eu.OK() || eu.Err == nil || !errors.Is(eu.Err, flowstone.ErrTimeout) || eu.Err.Details["join"] != "total" {
			t.Fatalf("eu = %+v (err %v), want the join's timeout", eu, eu.Err)
		}
		st, err := e.Status(ctxT(t), p, "eu_total")
		if err != nil || st.State != flowstone.StateFailed || !errors.Is(st.Error, flowstone.ErrTimeout) {
			t.Fatalf("status of the branch that timed out = %+v, %v", st, err)
		}
	})
	t.Run("a branch run alone", func(t *testing.T) {
		e := newEngine(t)
		p := joinPipeline(flowstone.JoinConfig{Timeout: time.Millisecond}, nil, nil, nil, nil)
		if res, err := e.Run(ctxT(t), p, "eu_total"); err != nil || decodeInt(t, res) != 42 {
			t.Fatalf("eu_total alone: %v; its join's clock does not run without the join", err)
		}
	})
	t.Run("all or nothing", func(t *testing.T) {
		e := newEngine(t)
		p := joinPipeline(flowstone.JoinConfig{Timeout: 200 * time.Millisecond}, nil, gate, nil, nil)
		_, err := e.Run(ctxT(t), p, "total")
		fe := wantType(t, err, flowstone.TypeDependencyFailed)
		if fe.Details["branch"] != "eu" || !errors.Is(fe, flowstone.ErrDependencyFailed) || !strings.Contains(fe.Message, "timeout") {
			t.Fatalf("error = %v (%+v)", fe, fe.Details)
		}
	})
}

func TestJoinDeclarationErrors(t *testing.T) {
	fn := func(*flowstone.Context) (any, error) { return 1, nil }
	cases := []struct {
		name string
		join flowstone.AssetOption
		deps []string
		want flowstone.ErrorType
		text string
	}{
		{"no branches", flowstone.Join(nil, flowstone.JoinConfig{}), nil, flowstone.TypeConfigError, "joins no branches"},
		{"bad branch name", flowstone.Join(flowstone.Branches{"9x": "a"}, flowstone.JoinConfig{}), nil, flowstone.TypeConfigError, "invalid branch name"},
		{"unknown end", flowstone.Join(flowstone.Branches{"x": "nope"}, flowstone.JoinConfig{}), nil, flowstone.TypeAssetNotFound, `ends in "nope"`},
		{"same end twice", flowstone.Join(flowstone.Branches{"x": "a", "y": "a"}, flowstone.JoinConfig{}), nil, flowstone.TypeConfigError, "both end in"},
		{"end also a dependency", flowstone.Join(flowstone.Branches{"x": "a"}, flowstone.JoinConfig{}), []string{"a"}, flowstone.TypeConfigError, "dependency of its join already"},
		{"optional without partial", flowstone.Join(flowstone.Branches{"x": "a"}, flowstone.JoinConfig{Optional: []string{"x"}}), nil, flowstone.TypeConfigError, "flowstone.Partial"},
		{"partial without optional", flowstone.Join(flowstone.Branches{"x": "a"}, flowstone.JoinConfig{Mode: flowstone.Partial}), nil, flowstone.TypeConfigError, "names no optional"},
		{"unknown optional", flowstone.Join(flowstone.Branches{"x": "a"}, flowstone.JoinConfig{Mode: flowstone.Partial, Optional: []string{"y"}}), nil, flowstone.TypeConfigError, "not one of its branches"},
		{"unknown mode", flowstone.Join(flowstone.Branches{"x": "a"}, flowstone.JoinConfig{Mode: "some"}), nil, flowstone.TypeConfigError, "join mode"},
		{"negative timeout", flowstone.Join(flowstone.Branches{"x": "a"}, flowstone.JoinConfig{Timeout: -time.Second}), nil, flowstone.TypeConfigError, "negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := flowstone.NewPipeline("p", flowstone.Asset("a", fn), flowstone.Asset("j", fn, c.join, flowstone.DependsOn(c.deps...)))
			fe := wantType(t, err, c.want)
			if !strings.Contains(fe.Message, c.text) {
				t.Fatalf("error = %v, want it to say %q", fe, c.text)
			}
		})
	}
}

// shipping is a routed pipeline: order (its quantity is the partition
// key's first field) → route picks bulk (quantity at least 100), express
// (a key starting "rush") or standard; label needs bulk; shipment uses
// whichever branch ran. evals counts the evaluations of route's
// conditions.
func shipping(evals *atomic.Int32, counts *sync.Map) *flowstone.Pipeline {
	count := func(name string) {
		v, _ := counts.LoadOrStore(name, new(atomic.Int32))
		v.(*atomic.Int32).Add(1)
	}
	branch := func(name string, price int) flowstone.AssetDef {
		return flowstone.Asset(name, func(c *flowstone.Context) (any, error) {
			count(name)
			chosen, err := flowstone.Dep[string](c, "route")
			if err != nil || chosen != name {
				return nil, errors.New("the branch ran though the router chose " + chosen)
			}
			return price, nil
		}, flowstone.DependsOn("route"))
	}
	return flowstone.MustPipeline("shipping",
		flowstone.Asset("order", func(c *flowstone.Context) (any, error) {
			count("order")
			q := 1
			if strings.HasPrefix(c.Partition(), "big") {
				q = 500
			}
			return q, nil
		}, flowstone.PartitionedBy(flowstone.AnyKey)),
		flowstone.Asset("route", nil, flowstone.DependsOn("order"), flowstone.Route(
			flowstone.When("bulk", func(c *flowstone.Context) (bool, error) {
				evals.Add(1)
				q, err := flowstone.Dep[int](c, "order")
				return q >= 100, err
			}),
			flowstone.When("express", func(c *flowstone.Context) (bool, error) {
				return strings.HasPrefix(c.Partition(), "rush"), nil
			}),
			flowstone.Otherwise("standard"),
		)),
		branch("bulk", 100), branch("express", 30), branch("standard", 5),
		flowstone.Asset("label", func(c *flowstone.Context) (any, error) {
			count("label")
			return "pallet", nil
		}, flowstone.DependsOn("bulk")),
		flowstone.Asset("shipment", func(c *flowstone.Context) (any, error) {
			count("shipment")
			out := ""
			for _, b := range []string{"bulk", "express", "standard", "label"} {
				if c.HasDep(b) {
					out += b + " "
				} else if _, err := flowstone.Dep[int](c, b); !errors.Is(err, flowstone.ErrNotFound) {
					return nil, errors.New("an absent dependency read as " + err.Error())
				}
			}
			return strings.TrimSpace(out), nil
		}, flowstone.OptionalDeps("bulk", "express", "standard", "label")),
	)
}

func execs(counts *sync.Map, name string) int {
	v, ok := counts.Load(name)
	if !ok {
		return 0
	}
	return int(v.(*atomic.Int32).Load())
}

func TestRouterPicksTheFirstMatchingConditionElseTheDefault(t *testing.T) {
	e := newEngine(t)
	var evals atomic.Int32
	var counts sync.Map
	p := shipping(&evals, &counts)
	ctx := ctxT(t)
	var events []flowstone.Event
	var mu sync.Mutex
	defer e.Subscribe(func(ev flowstone.Event) {
		if ev.Kind == flowstone.EventRunSkipped || ev.Kind == flowstone.EventRunStop && ev.Asset == "route" {
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		}
	})()
	for part, want := range map[string]string{"big-1": "bulk label", "rush-2": "express", "small-3": "standard", "big-rush": "bulk label"} {
		res, err := e.Run(ctx, p, "shipment", flowstone.Partition(part))
		if err != nil {
			t.Fatalf("%s: %v", part, err)
		}
		var got string
		if err := res.Decode(&got); err != nil || got != want {
			t.Fatalf("shipment of %s = %q, %v; want %q", part, got, err, want)
		}
		st, err := e.Status(ctx, p, "route", flowstone.Partition(part))
		if chosen := strings.Fields(want)[0]; err != nil || st.Route != chosen || st.State != flowstone.StateCompleted {
			t.Fatalf("status of route for %s = %+v, %v; want its decision %s", part, st, err, chosen)
		}
	}
	for _, b := range []string{"bulk", "express", "standard"} {
		if execs(&counts, b) != map[string]int{"bulk": 2, "express": 1, "standard": 1}[b] {
			t.Fatalf("%s executed %d times", b, execs(&counts, b))
		}
	}
	// The unselected branches are skipped, and so is label under a bulk
	// not chosen; Status says why.
	st, err := e.Status(ctx, p, "bulk", flowstone.Partition("small-3"))
	if err != nil || st.State != flowstone.StateSkipped || st.Skip == nil || *st.Skip != (flowstone.Skip{Router: "route", Chosen: "standard"}) || st.Value != nil || st.RunID == "" {
		t.Fatalf("status of the unselected bulk = %+v, %v", st, err)
	}
	st, err = e.Status(ctx, p, "label", flowstone.Partition("rush-2"))
	if err != nil || st.State != flowstone.StateSkipped || st.Skip == nil || st.Skip.Dependency != "bulk" || st.Skip.Chosen != "express" {
		t.Fatalf("status of label under an unselected bulk = %+v (skip %+v), %v", st, st.Skip, err)
	}
	if execs(&counts, "label") != 2 {
		t.Fatalf("label executed %d times, want for the two bulk orders only", execs(&counts, "label"))
	}
	mu.Lock()
	defer mu.Unlock()
	skipped := map[string]int{}
	for _, ev := range events {
		if ev.Kind == flowstone.EventRunSkipped {
			skipped[ev.Asset+"@"+ev.Partition]++
			if ev.Metadata["router"] != "route" || ev.Metadata["chosen"] == "" || ev.RunID == "" {
				t.Errorf("skip event %+v", ev)
			}
		} else if ev.Metadata["route"] == nil {
			t.Errorf("the router's run.stop has no route: %+v", ev)
		}
	}
	if skipped["bulk@small-3"] != 1 || skipped["label@small-3"] != 1 || skipped["standard@big-1"] != 1 || len(skipped) != 10 {
		t.Fatalf("skip events %v", skipped)
	}
}

func TestRouterDecisionIsRecordedOnce(t *testing.T) {
	e := newEngine(t)
	var evals atomic.Int32
	var counts sync.Map
	p := shipping(&evals, &counts)
	ctx := ctxT(t)
	part := flowstone.Partition("big-7")
	if _, err := e.Run(ctx, p, "shipment", part, flowstone.WithRunID("once-1")); err != nil {
		t.Fatal(err)
	}
	// The same run again, and a new run of another dependent: the decision
	// is read from the router's record.
	if _, err := e.Run(ctx, p, "shipment", part, flowstone.WithRunID("once-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Invalidate(ctx, p, "shipment", part); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, p, "shipment", part); err != nil {
		t.Fatal(err)
	}
	if evals.Load() != 1 || execs(&counts, "bulk") != 1 {
		t.Fatalf("the conditions ran %d times, bulk %d; want once each", evals.Load(), execs(&counts, "bulk"))
	}
	// A branch run as the target is skipped when not chosen.
	_, err := e.Run(ctx, p, "standard", part)
	fe := wantType(t, err, flowstone.TypeSkipped)
	if fe.Details["chosen"] != "bulk" || fe.Details["router"] != "route" {
		t.Fatalf("error = %v (%+v)", fe, fe.Details)
	}
	_, err = e.Run(ctx, p, "standard", part, flowstone.WithDeps(false))
	wantType(t, err, flowstone.TypeSkipped)
	if execs(&counts, "standard") != 0 {
		t.Fatal("standard executed")
	}
}

func TestRouterNewDecisionHidesOldBranchValues(t *testing.T) {
	e := newEngine(t)
	var evals atomic.Int32
	var counts sync.Map
	p := shipping(&evals, &counts)
	ctx := ctxT(t)
	// Seed a bulk value, then route the partition to standard: the old
	// bulk value stays readable (Get), but shipment sees bulk absent.
	part := flowstone.Partition("small-9")
	if err := e.Seed(ctx, p, "bulk", 100, part); err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(ctx, p, "shipment", part)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := res.Decode(&got); err != nil || got != "standard" {
		t.Fatalf("shipment = %q, %v; want standard alone", got, err)
	}
	st, err := e.Status(ctx, p, "bulk", part)
	if err != nil || st.State != flowstone.StateSkipped || st.Value == nil {
		t.Fatalf("status of the old bulk = %+v, %v; want skipped with its old value kept", st, err)
	}
	if _, err := e.Get(ctx, p, "bulk", part); err != nil {
		t.Fatalf("get of the old bulk: %v", err)
	}
}

func TestRouterFailureFailsItsBranches(t *testing.T) {
	e := newEngine(t)
	p := flowstone.MustPipeline("r",
		flowstone.Asset("route", nil, flowstone.Route(
			flowstone.When("a", func(*flowstone.Context) (bool, error) { return false, errors.New("cannot tell") }),
			flowstone.Otherwise("b"))),
		flowstone.Asset("a", func(*flowstone.Context) (any, error) { return 1, nil }, flowstone.DependsOn("route")),
		flowstone.Asset("b", func(*flowstone.Context) (any, error) { return 2, nil }, flowstone.DependsOn("route")),
	)
	_, err := e.Run(ctxT(t), p, "b")
	fe := wantType(t, err, flowstone.TypeDependencyFailed)
	if fe.Details["root_asset"] != "route" || !strings.Contains(fe.Message, "cannot tell") {
		t.Fatalf("error = %v", fe)
	}
}

func TestRouteDeclarationErrors(t *testing.T) {
	fn := func(*flowstone.Context) (any, error) { return 1, nil }
	yes := func(*flowstone.Context) (bool, error) { return true, nil }
	branch := func(name string) flowstone.AssetDef { return flowstone.Asset(name, fn, flowstone.DependsOn("r")) }
	cases := []struct {
		name   string
		assets []flowstone.AssetDef
		want   flowstone.ErrorType
		text   string
	}{
		{"a function", []flowstone.AssetDef{flowstone.Asset("r", fn, flowstone.Route(flowstone.Otherwise("a"))), branch("a")}, flowstone.TypeConfigError, "pass nil"},
		{"no default", []flowstone.AssetDef{flowstone.Asset("r", nil, flowstone.Route(flowstone.When("a", yes))), branch("a")}, flowstone.TypeConfigError, "default branch"},
		{"default first", []flowstone.AssetDef{flowstone.Asset("r", nil, flowstone.Route(flowstone.Otherwise("a"), flowstone.Otherwise("b"))), branch("a"), branch("b")}, flowstone.TypeConfigError, "before its last"},
		{"nil condition", []flowstone.AssetDef{flowstone.Asset("r", nil, flowstone.Route(flowstone.When("a", nil), flowstone.Otherwise("b"))), branch("a"), branch("b")}, flowstone.TypeConfigError, "no condition"},
		{"twice", []flowstone.AssetDef{flowstone.Asset("r", nil, flowstone.Route(flowstone.When("a", yes), flowstone.Otherwise("a"))), branch("a")}, flowstone.TypeConfigError, "twice"},
		{"unknown", []flowstone.AssetDef{flowstone.Asset("r", nil, flowstone.Route(flowstone.Otherwise("zz")))}, flowstone.TypeAssetNotFound, "zz"},
		{"not depending", []flowstone.AssetDef{flowstone.Asset("r", nil, flowstone.Route(flowstone.Otherwise("a"))), flowstone.Asset("a", fn)}, flowstone.TypeConfigError, "must depend on it"},
		{"two routers", []flowstone.AssetDef{flowstone.Asset("r", nil, flowstone.Route(flowstone.Otherwise("a"))), flowstone.Asset("s", nil, flowstone.Route(flowstone.Otherwise("a"))),
			flowstone.Asset("a", fn, flowstone.DependsOn("r", "s"))}, flowstone.TypeConfigError, "one router"},
		{"scatter", []flowstone.AssetDef{flowstone.Asset("r", nil, flowstone.Route(flowstone.Otherwise("a")), flowstone.Scatter(func(*flowstone.Context) ([]string, error) { return nil, nil }, flowstone.ScatterConfig{})), branch("a")}, flowstone.TypeConfigError, "scatter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := flowstone.NewPipeline("p", c.assets...)
			fe := wantType(t, err, c.want)
			if !strings.Contains(fe.Message, c.text) {
				t.Fatalf("error = %v, want it to say %q", fe, c.text)
			}
		})
	}
}

// TestManifestCarriesJoinsAndRoutes: a coordinator rebuilds joins and
// routers from a manifest, and its manifest of the rebuilt pipeline is
// the workers'.
func TestManifestCarriesJoinsAndRoutes(t *testing.T) {
	var evals atomic.Int32
	var counts sync.Map
	for _, p := range []*flowstone.Pipeline{
		shipping(&evals, &counts),
		joinPipeline(flowstone.JoinConfig{Mode: flowstone.Partial, Optional: []string{"us"}, Timeout: time.Minute}, nil, nil, nil, nil),
	} {
		m := bridge.Manifest(p, "w1")
		b, perr := protocol.EncodeManifest(m)
		if perr != nil {
			t.Fatal(perr)
		}
		m, perr = protocol.DecodeManifest(b)
		if perr != nil {
			t.Fatal(perr)
		}
		rebuilt, err := bridge.PipelineFromManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		again := bridge.Manifest(rebuilt, "w1")
		again.UpdatedAt = m.UpdatedAt
		a, _ := protocol.EncodeManifest(again)
		if string(a) != string(b) {
			t.Fatalf("manifest of the rebuilt pipeline:\n%s\nwant\n%s", a, b)
		}
		for _, name := range flowstone.Assets(p) {
			want, _ := flowstone.AssetInfo(p, name)
			got, _ := flowstone.AssetInfo(rebuilt, name)
			w, _ := jsonMarshal(want)
			g, _ := jsonMarshal(got)
			if w != g {
				t.Fatalf("info of %s rebuilt = %s, want %s", name, g, w)
			}
		}
	}
}

// TestSkipLeavesAnotherRunsExecutionAlone: a run that skips a branch
// while another run executes it (the router was invalidated and decided
// otherwise in between) leaves that execution's record alone; the
// execution's outcome lands, and the skipping run's dependents see the
// branch absent.
func TestSkipLeavesAnotherRunsExecutionAlone(t *testing.T) {
	e := newEngine(t)
	var pickA atomic.Bool
	pickA.Store(true)
	started, release := make(chan struct{}), make(chan struct{})
	p := flowstone.MustPipeline("r",
		flowstone.Asset("route", nil, flowstone.Route(
			flowstone.When("a", func(*flowstone.Context) (bool, error) { return pickA.Load(), nil }),
			flowstone.Otherwise("b"))),
		flowstone.Asset("a", func(c *flowstone.Context) (any, error) {
			close(started)
			<-release
			return 1, nil
		}, flowstone.DependsOn("route")),
		flowstone.Asset("b", func(*flowstone.Context) (any, error) { return 2, nil }, flowstone.DependsOn("route")),
		flowstone.Asset("out", func(c *flowstone.Context) (any, error) {
			return c.HasDep("a"), nil
		}, flowstone.OptionalDeps("a", "b")),
	)
	ctx := ctxT(t)
	first := make(chan error, 1)
	go func() {
		_, err := e.Run(ctx, p, "a", flowstone.WithRunID("first"))
		first <- err
	}()
	waitFor(t, started, "a to start")
	if _, err := e.Invalidate(ctx, p, "route"); err != nil {
		t.Fatal(err)
	}
	pickA.Store(false)
	res, err := e.Run(ctx, p, "out", flowstone.WithRunID("second"))
	if err != nil {
		t.Fatal(err)
	}
	var hasA bool
	if err := res.Decode(&hasA); err != nil || hasA {
		t.Fatalf("out saw a: %v, %v; want it absent in the run that skipped it", hasA, err)
	}
	st, err := e.Status(ctx, p, "a")
	if err != nil || st.State != flowstone.StateRunning || st.RunID != "first" {
		t.Fatalf("status of a while the first run executes it = %+v, %v", st, err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if st, err := e.Status(ctx, p, "a"); err != nil || st.State != flowstone.StateCompleted || st.RunID != "first" {
		t.Fatalf("status of a after the first run = %+v, %v", st, err)
	}
}

// TestRouterUnderARouter: a router that is a branch of another is skipped
// with it, and so are its own branches.
func TestRouterUnderARouter(t *testing.T) {
	e := newEngine(t)
	yes := func(*flowstone.Context) (bool, error) { return true, nil }
	fn := func(v int) flowstone.AssetFunc { return func(*flowstone.Context) (any, error) { return v, nil } }
	p := flowstone.MustPipeline("nested",
		flowstone.Asset("outer", nil, flowstone.Route(flowstone.When("plain", yes), flowstone.Otherwise("inner"))),
		flowstone.Asset("plain", fn(1), flowstone.DependsOn("outer")),
		flowstone.Asset("inner", nil, flowstone.DependsOn("outer"), flowstone.Route(flowstone.When("x", yes), flowstone.Otherwise("y"))),
		flowstone.Asset("x", fn(2), flowstone.DependsOn("inner")),
		flowstone.Asset("y", fn(3), flowstone.DependsOn("inner")),
		flowstone.Asset("all", func(c *flowstone.Context) (any, error) {
			n := 0
			for _, d := range []string{"plain", "x", "y"} {
				if v, err := flowstone.Dep[int](c, d); err == nil {
					n += v
				}
			}
			return n, nil
		}, flowstone.OptionalDeps("plain", "x", "y")),
	)
	ctx := ctxT(t)
	res, err := e.Run(ctx, p, "all")
	if err != nil || decodeInt(t, res) != 1 {
		t.Fatalf("all = %v; want plain's 1 alone", err)
	}
	for asset, dep := range map[string]string{"inner": "", "x": "inner", "y": "inner"} {
		st, err := e.Status(ctx, p, asset)
		if err != nil || st.State != flowstone.StateSkipped || *st.Skip != (flowstone.Skip{Router: "outer", Chosen: "plain", Dependency: dep}) {
			t.Fatalf("status of %s = %+v (skip %+v), %v", asset, st, st.Skip, err)
		}
	}
}

// TestBackfillOfABranchCountsRoutedPartitionsSkipped: partitions whose
// router chose another branch run nothing and count as skipped.
func TestBackfillOfABranchCountsRoutedPartitionsSkipped(t *testing.T) {
	e := newEngine(t)
	var evals atomic.Int32
	var counts sync.Map
	p := shipping(&evals, &counts)
	st, err := e.Backfill(ctxT(t), p, "bulk", flowstone.Partitions("big-1", "small-1", "big-2", "rush-1"))
	if err != nil || st.Succeeded != 2 || st.Skipped != 2 || st.Failed != 0 {
		t.Fatalf("backfill of bulk = %+v, %v; want 2 bulk orders run and 2 skipped", st, err)
	}
}

// TestSeededDecisionRoutesWithoutConditions: a router seeded with a
// branch's name routes runs there; anything else is refused.
func TestSeededDecisionRoutesWithoutConditions(t *testing.T) {
	e := newEngine(t)
	var evals atomic.Int32
	var counts sync.Map
	p := shipping(&evals, &counts)
	ctx := ctxT(t)
	part := flowstone.Partition("big-3")
	if err := e.Seed(ctx, p, "route", "express", part); err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(ctx, p, "shipment", part)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := res.Decode(&got); err != nil || got != "express" || evals.Load() != 0 {
		t.Fatalf("shipment = %q, %v after %d evaluations; want express from the seeded decision", got, err, evals.Load())
	}
	for _, bad := range []any{"nowhere", 3} {
		wantType(t, e.Seed(ctx, p, "route", bad, part), flowstone.TypeBadRequest)
	}
}
