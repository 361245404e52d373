package faces_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// Parallel branches (Join) and conditional routing (Route) on every face.

// branchState steers the branch and route assets of one pipeline
// instance.
type branchState struct {
	usDown      atomic.Bool // us_total fails while set
	pickBulk    atomic.Bool // route's bulk condition holds while set
	pickExpress atomic.Bool // route's express condition holds while set
	holdBulk    atomic.Bool // bulk waits for release while set
	meet        *barrier    // left and right meet here
	hold        chan struct{}
	releaseOnce sync.Once
}

func newBranchState() *branchState {
	return &branchState{meet: newBarrier(2), hold: make(chan struct{})}
}

// release lets a held bulk finish.
func (b *branchState) release() { b.releaseOnce.Do(func() { close(b.hold) }) }

// barrier lets n functions through once all n have arrived; one that
// waits past its context fails.
type barrier struct {
	mu      sync.Mutex
	waiting int
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{waiting: n, all: make(chan struct{})} }

func (b *barrier) arrive(ctx context.Context) error {
	b.mu.Lock()
	if b.waiting--; b.waiting == 0 {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return nil
	case <-ctx.Done():
		return errors.New("the other branch never ran alongside this one")
	}
}

// describe is a join's view of its branches: "eu=42 us=execution_failed
// ship=skipped".
func describe(c *flowstone.Context) (any, error) {
	var parts []string
	for name, b := range c.Branches() {
		switch {
		case b.Skipped:
			parts = append(parts, name+"=skipped")
		case b.Err != nil:
			parts = append(parts, name+"="+string(b.Err.Type))
		default:
			var n int
			if err := b.Decode(&n); err != nil {
				return nil, err
			}
			parts = append(parts, name+"="+strconv.Itoa(n))
		}
	}
	slices.Sort(parts) // the same on every face
	return strings.Join(parts, " "), nil
}

// branchAssets are the table's joins and router:
//
//   - left and right meet (each waits for the other) and pair joins them;
//   - eu_total (42), us_total (58, or fails while usDown), eu_slow (waits
//     for its context): total joins eu and us all or nothing, timed joins
//     eu_slow and us_total partially within 300ms;
//   - order → route, a router that picks bulk (while pickBulk), express
//     (while pickExpress) or standard; label needs bulk, shipment uses
//     whichever branch ran; partial joins eu, us and express (ship), the
//     last two optional.
func branchAssets(c *counts, counted func(string, flowstone.AssetFunc) flowstone.AssetFunc) []flowstone.AssetDef {
	b := c.br
	value := func(n int) flowstone.AssetFunc { return func(*flowstone.Context) (any, error) { return n, nil } }
	meeting := func(n int) flowstone.AssetFunc {
		return func(ctx *flowstone.Context) (any, error) {
			if err := b.meet.arrive(ctx.Context()); err != nil {
				return nil, err
			}
			return n, nil
		}
	}
	branch := func(name string, price int) flowstone.AssetDef {
		return flowstone.Asset(name, counted(name, func(ctx *flowstone.Context) (any, error) {
			if name == "bulk" && b.holdBulk.Load() {
				select {
				case <-b.hold:
				case <-ctx.Context().Done():
					return nil, ctx.Context().Err()
				}
			}
			chosen, err := flowstone.Dep[string](ctx, "route")
			if err != nil || chosen != name {
				return nil, fmt.Errorf("%s ran though the router chose %q (%v)", name, chosen, err)
			}
			return price, nil
		}), flowstone.DependsOn("route"))
	}
	return []flowstone.AssetDef{
		flowstone.Asset("left", counted("left", meeting(1))),
		flowstone.Asset("right", counted("right", meeting(2))),
		flowstone.Asset("pair", describe, flowstone.Join(flowstone.Branches{"l": "left", "r": "right"}, flowstone.JoinConfig{})),
		flowstone.Asset("eu_total", counted("eu_total", value(42))),
		flowstone.Asset("us_total", counted("us_total", func(*flowstone.Context) (any, error) {
			if b.usDown.Load() {
				return nil, errors.New("the US feed is down")
			}
			return 58, nil
		})),
		flowstone.Asset("eu_slow", counted("eu_slow", func(ctx *flowstone.Context) (any, error) {
			<-ctx.Context().Done()
			return nil, ctx.Context().Err()
		})),
		flowstone.Asset("total", describe, flowstone.Join(flowstone.Branches{"eu": "eu_total", "us": "us_total"}, flowstone.JoinConfig{Mode: flowstone.AllOrNothing})),
		flowstone.Asset("timed", describe, flowstone.Join(flowstone.Branches{"eu": "eu_slow", "us": "us_total"},
			flowstone.JoinConfig{Mode: flowstone.Partial, Optional: []string{"eu"}, Timeout: 300 * time.Millisecond})),
		flowstone.Asset("order", counted("order", value(7))),
		flowstone.Asset("route", nil, flowstone.DependsOn("order"), flowstone.Route(
			flowstone.When("bulk", func(ctx *flowstone.Context) (bool, error) {
				c.add("route_conditions")
				_, err := flowstone.Dep[int](ctx, "order")
				return b.pickBulk.Load(), err
			}),
			flowstone.When("express", func(*flowstone.Context) (bool, error) { return b.pickExpress.Load(), nil }),
			flowstone.Otherwise("standard"),
		)),
		branch("bulk", 100), branch("express", 30), branch("standard", 5),
		flowstone.Asset("label", counted("label", value(1)), flowstone.DependsOn("bulk")),
		flowstone.Asset("shipment", counted("shipment", func(ctx *flowstone.Context) (any, error) {
			var present []string
			for _, d := range []string{"bulk", "express", "standard", "label"} {
				if ctx.HasDep(d) {
					present = append(present, d)
				} else if _, err := flowstone.Dep[int](ctx, d); !errors.Is(err, flowstone.ErrNotFound) {
					return nil, fmt.Errorf("absent %s read as %v, want not_found", d, err)
				}
			}
			return strings.Join(present, " "), nil
		}), flowstone.OptionalDeps("bulk", "express", "standard", "label")),
		flowstone.Asset("partial", describe, flowstone.Join(flowstone.Branches{"eu": "eu_total", "us": "us_total", "ship": "express"},
			flowstone.JoinConfig{Mode: flowstone.Partial, Optional: []string{"us", "ship"}})),
	}
}

// runString runs asset and decodes its string value.
func runString(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, asset string) string {
	t.Helper()
	res, err := f.Run(ctx, p, asset)
	if err != nil {
		t.Fatalf("run %s: %v", asset, err)
	}
	return decode[string](t, res)
}

// wantSkipped checks that asset's latest run skipped it, for skip.
func wantSkipped(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, asset string, skip flowstone.Skip, runID string) {
	t.Helper()
	st, err := f.Status(ctx, p, asset)
	if err != nil || st.State != flowstone.StateSkipped || st.Skip == nil || *st.Skip != skip || st.CompletedAt == nil || runID != "" && st.RunID != runID {
		t.Fatalf("status of %s = %+v (skip %+v), %v; want skipped by run %q: %+v", asset, st, st.Skip, err, runID, skip)
	}
}

func init() {
	rows = append(rows, []row{
		{"branches run concurrently and the join gets their results", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
			if got := runString(t, ctx, f, p, "pair"); got != "l=1 r=2" {
				t.Fatalf("pair = %q, want both branches' values", got)
			}
			if c.of("left") != 1 || c.of("right") != 1 {
				t.Fatalf("left ran %d times, right %d", c.of("left"), c.of("right"))
			}
		}},
		{"all or nothing: a failed branch fails the join with dependency_failed naming it", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
			c.br.usDown.Store(true)
			_, err := f.Run(ctx, p, "total")
			wantErr(t, "the join of a failed branch", err, flowstone.ErrDependencyFailed)
			fe := flowstone.AsError(err)
			if fe.Details["branch"] != "us" || fe.Details["root_asset"] != "us_total" || !strings.Contains(fe.Message, "feed is down") {
				t.Fatalf("error = %v (%+v); want it to name branch us", fe, fe.Details)
			}
			st, err := f.Status(ctx, p, "total")
			if err != nil || st.State != flowstone.StateFailed || !errors.Is(st.Error, flowstone.ErrDependencyFailed) {
				t.Fatalf("status of the join = %+v, %v", st, err)
			}
			c.br.usDown.Store(false)
			if got := runString(t, ctx, f, p, "total"); got != "eu=42 us=58" || c.of("eu_total") != 1 {
				t.Fatalf("total once us is back = %q, eu_total ran %d times; want eu reused", got, c.of("eu_total"))
			}
		}},
		{"partial: the join gets a failed optional branch's error and a skipped one as skipped", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
			c.br.usDown.Store(true)
			if got := runString(t, ctx, f, p, "partial"); got != "eu=42 ship=skipped us=execution_failed" {
				t.Fatalf("partial = %q", got)
			}
			wantSkipped(t, ctx, f, p, "express", flowstone.Skip{Router: "route", Chosen: "standard"}, "")
			if c.of("express") != 0 {
				t.Fatal("the skipped branch executed")
			}
			info, err := flowstone.AssetInfo(p, "partial")
			if err != nil || !info.Parallel || info.Branches["ship"] != "express" || info.Join.Mode != flowstone.Partial {
				t.Fatalf("info = %+v, %v", info, err)
			}
		}},
		{"the join's timeout stops the branches not done; a partial join gets a timeout error", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
			start := time.Now()
			if got := runString(t, ctx, f, p, "timed"); got != "eu=timeout us=58" {
				t.Fatalf("timed = %q", got)
			}
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Fatalf("the join ran after %v, before its branches' timeout", d)
			}
			st, err := f.Status(ctx, p, "eu_slow")
			if err != nil || st.State != flowstone.StateFailed || !errors.Is(st.Error, flowstone.ErrTimeout) {
				t.Fatalf("status of the branch that timed out = %+v, %v", st, err)
			}
		}},
		{"a router picks the first condition that holds, else its default; Status shows its decision", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
			c.br.pickBulk.Store(true)
			c.br.pickExpress.Store(true)
			if got := runString(t, ctx, f, p, "shipment"); got != "bulk label" {
				t.Fatalf("shipment = %q, want bulk, the first that holds", got)
			}
			st, err := f.Status(ctx, p, "route")
			if err != nil || st.Route != "bulk" || st.State != flowstone.StateCompleted {
				t.Fatalf("status of the router = %+v, %v", st, err)
			}
			if _, err := f.Invalidate(ctx, p, "route", flowstone.Cascade()); err != nil {
				t.Fatal(err)
			}
			c.br.pickBulk.Store(false)
			c.br.pickExpress.Store(false)
			if got := runString(t, ctx, f, p, "shipment"); got != "standard" {
				t.Fatalf("shipment = %q, want standard, the default", got)
			}
			if st, err := f.Status(ctx, p, "route"); err != nil || st.Route != "standard" {
				t.Fatalf("status of the router = %+v, %v", st, err)
			}
			if c.of("bulk") != 1 || c.of("standard") != 1 || c.of("express") != 0 {
				t.Fatalf("executions %v", c.execs)
			}
		}},
		{"unselected branches are skipped; a dependent that needs one is skipped too, one that uses it sees it absent", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
			c.br.pickExpress.Store(true)
			res, err := f.Run(ctx, p, "shipment")
			if err != nil {
				t.Fatal(err)
			}
			if got := decode[string](t, res); got != "express" {
				t.Fatalf("shipment = %q, want express alone", got)
			}
			wantSkipped(t, ctx, f, p, "bulk", flowstone.Skip{Router: "route", Chosen: "express"}, res.RunID)
			wantSkipped(t, ctx, f, p, "standard", flowstone.Skip{Router: "route", Chosen: "express"}, res.RunID)
			wantSkipped(t, ctx, f, p, "label", flowstone.Skip{Router: "route", Chosen: "express", Dependency: "bulk"}, res.RunID)
			if c.of("bulk") != 0 || c.of("standard") != 0 || c.of("label") != 0 {
				t.Fatalf("executions %v", c.execs)
			}
			// Asked for, a skipped branch is a skipped error.
			_, err = f.Run(ctx, p, "label")
			wantErr(t, "a run of a skipped asset", err, flowstone.ErrSkipped)
			if _, err := f.Get(ctx, p, "bulk"); !errors.Is(err, flowstone.ErrNotFound) {
				t.Fatalf("get of a skipped branch = %v, want not_found", err)
			}
		}},
		{"a resumed run reads the router's decision: the router is not evaluated again", func(t *testing.T, ctx context.Context, f face, p *flowstone.Pipeline, c *counts) {
			c.br.pickBulk.Store(true)
			c.br.holdBulk.Store(true)
			defer c.br.release()
			runID := "resumed-" + strings.ReplaceAll(p.Name(), "_", "-")
			f, done := f.resumeAfterDecision(t, ctx, p, "shipment", "route", runID)
			// Another decision now would pick express: the resumed run
			// must not ask.
			c.br.pickBulk.Store(false)
			c.br.pickExpress.Store(true)
			c.br.release()
			if err := waitDone(t, ctx, done); err != nil {
				t.Fatalf("the resumed run: %v", err)
			}
			res, err := f.Get(ctx, p, "shipment")
			if err != nil || decode[string](t, res) != "bulk label" || res.RunID != runID {
				t.Fatalf("shipment = %+v, %v; want bulk label from run %s", res, err, runID)
			}
			if n := c.of("route_conditions"); n != 1 {
				t.Fatalf("the router's conditions ran %d times, want once", n)
			}
			wantSkipped(t, ctx, f, p, "express", flowstone.Skip{Router: "route", Chosen: "bulk"}, runID)
			wantSkipped(t, ctx, f, p, "standard", flowstone.Skip{Router: "route", Chosen: "bulk"}, runID)
			if c.of("express") != 0 || c.of("standard") != 0 || c.of("bulk") != 1 {
				t.Fatalf("executions %v", c.execs)
			}
		}},
	}...)
}
