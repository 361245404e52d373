package flowstone

import (
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
)

// Condition decides whether a router picks its branch (see When). It runs
// in the router's execution, with the router's dependencies readable
// through Dep; an error or a panic fails the router.
type Condition func(c *Context) (bool, error)

// RouteCase is one branch of a router (see Route): When's, picked if its
// condition holds, or Otherwise's, the default.
type RouteCase struct {
	asset     string
	when      Condition
	otherwise bool
}

// When is a branch of a router: the router picks asset if cond holds and
// no earlier case's did.
func When(asset string, cond Condition) RouteCase { return RouteCase{asset: asset, when: cond} }

// Otherwise is a router's default branch, picked when no When's condition
// holds. Every router has one, as its last case.
func Otherwise(asset string) RouteCase { return RouteCase{asset: asset, otherwise: true} }

// routeSpec is a Route's declaration.
type routeSpec struct {
	cases []RouteCase
	// remote: rebuilt from a manifest, without the conditions, which
	// live with the workers.
	remote bool
}

// names lists the router's branches in order, the default last.
func (r *routeSpec) names() []string {
	out := make([]string, len(r.cases))
	for i, c := range r.cases {
		out[i] = c.asset
	}
	return out
}

// Route makes the asset a router: it picks one of the branches its cases
// name, trying the When conditions in order and falling back to the
// Otherwise case. The asset's function must be nil: its value is its
// decision, the name of the asset it picked (raw bytes: read it with
// Dep[string]), kept in its record. Each branch is an asset of the
// pipeline that depends on the router (DependsOn).
//
// The decision is the router's materialization: it is recorded once for
// a partition and read back, never evaluated again, by every later step
// of the run, by a run resumed after a crash or on another coordinator,
// and by later runs (until the router is invalidated or forced). In a run,
// the branches not picked are skipped: their records end StateSkipped,
// with a Skip saying why and their last good value kept, and they never
// execute. A dependent that needs a skipped asset (DependsOn) is skipped
// too, transitively; one that only uses it (OptionalDeps, or an optional
// branch of a Partial join) runs and sees it absent: Dep returns a
// NotFound error and Context.HasDep false. Join the branches of a route
// downstream with OptionalDeps.
//
// NewPipeline reports a ConfigError for a router with a function, with no
// Otherwise or one that is not the last case, that scatters, that names a
// branch twice or itself, a branch that does not depend on the router or
// is a branch of another router; and an AssetNotFound error for a branch
// that is not in the pipeline.
func Route(cases ...RouteCase) AssetOption {
	r := &routeSpec{cases: slices.Clone(cases)}
	return assetOptionFunc(func(a *AssetDef) { a.route = r })
}

// linkRoutes checks the routers of p and links each branch to its router
// (node.router).
func linkRoutes(p *Pipeline) error {
	for _, n := range p.nodes {
		r := n.def.route
		if r == nil {
			continue
		}
		details := func(more ...any) map[string]any {
			d := map[string]any{"pipeline": p.name, "asset": n.def.name}
			for i := 0; i+1 < len(more); i += 2 {
				d[more[i].(string)] = more[i+1]
			}
			return d
		}
		if n.def.fn != nil {
			return newError(TypeConfigError, details(),
				"router %q has a function: a router's value is its decision, made by its cases; pass nil as its function", n.def.name)
		}
		if n.def.scatter != nil {
			return newError(TypeConfigError, details(), "router %q cannot scatter: its value is one decision", n.def.name)
		}
		if len(r.cases) == 0 || !r.cases[len(r.cases)-1].otherwise {
			return newError(TypeConfigError, details(),
				"router %q needs a default branch: end its cases with flowstone.Otherwise(asset)", n.def.name)
		}
		seen := map[string]bool{}
		for i, c := range r.cases {
			if c.otherwise && i != len(r.cases)-1 {
				return newError(TypeConfigError, details("branch", c.asset),
					"router %q has Otherwise(%q) before its last case: the default comes last", n.def.name, c.asset)
			}
			if !c.otherwise && c.when == nil && !r.remote {
				return newError(TypeConfigError, details("branch", c.asset), "router %q has no condition for branch %q", n.def.name, c.asset)
			}
			if seen[c.asset] {
				return newError(TypeConfigError, details("branch", c.asset), "router %q names branch %q twice", n.def.name, c.asset)
			}
			seen[c.asset] = true
			b, ok := p.byName[c.asset]
			if !ok {
				avail := names(p.nodes)
				return newError(TypeAssetNotFound, details("branch", c.asset, "available", avail),
					"router %q routes to %q, which is not in pipeline %s. Available: [%s]", n.def.name, c.asset, p.name, strings.Join(avail, " "))
			}
			if b == n {
				return newError(TypeConfigError, details("branch", c.asset), "router %q routes to itself", n.def.name)
			}
			if !slices.Contains(b.def.deps, n.def.name) {
				return newError(TypeConfigError, details("branch", c.asset),
					"branch %q of router %q must depend on it: add flowstone.DependsOn(%q) to %q", c.asset, n.def.name, n.def.name, c.asset)
			}
			if b.router != nil {
				return newError(TypeConfigError, details("branch", c.asset, "other", b.router.def.name),
					"asset %q is a branch of routers %q and %q: an asset has one router", c.asset, b.router.def.name, n.def.name)
			}
			b.router = n
		}
	}
	return nil
}

// route runs a router's conditions in order and returns the asset it
// picks, as the raw bytes of its name.
func (x *executor) route(c *Context) (val any, err error) {
	r := c.n.def.route
	for _, rc := range r.cases {
		if rc.otherwise {
			return []byte(rc.asset), nil
		}
		ok, err := x.condition(c, rc)
		if err != nil {
			return nil, err
		}
		if ok {
			return []byte(rc.asset), nil
		}
	}
	return nil, newError(TypeConfigError, map[string]any{"asset": c.n.def.name}, "router %q has no default branch", c.n.def.name)
}

// condition evaluates one When of a router, turning an error or a panic
// into an ExecutionFailed error that names the branch.
func (x *executor) condition(c *Context, rc RouteCase) (ok bool, err error) {
	asset := c.n.def.name
	defer func() {
		if r := recover(); r != nil {
			err = newError(TypeExecutionFailed, map[string]any{"asset": asset, "branch": rc.asset, "panic": fmt.Sprint(r), "stack": string(debug.Stack())},
				"the condition of branch %q of router %q panicked: %v", rc.asset, asset, r)
		}
	}()
	if rc.when == nil {
		return false, newError(TypeConfigError, map[string]any{"asset": asset, "branch": rc.asset},
			"router %q has no condition for branch %q in this process: run it on a worker that hosts the pipeline", asset, rc.asset)
	}
	ok, err = rc.when(c)
	if err != nil {
		var fe *Error
		if !errors.As(err, &fe) {
			err = &Error{Type: TypeExecutionFailed, Message: fmt.Sprintf("the condition of branch %q of router %q failed: %v", rc.asset, asset, err),
				Details: map[string]any{"asset": asset, "branch": rc.asset, "error": err.Error()}, cause: err}
		}
		return false, err
	}
	return ok, nil
}

// decisionOf reads a router's decision from its record: the asset its
// value names.
func decisionOf(rec *Materialization) (string, bool) {
	if !rec.Materialized() || rec.Value.Storage != InlineStorage || rec.Value.Encoding != EncodingRaw {
		return "", false
	}
	return string(rec.Value.Inline), true
}

// Skip says why an asset/partition was skipped in its run (StateSkipped):
// a router chose another branch.
type Skip struct {
	// Router is the router whose decision skipped it, and Chosen the
	// branch (asset) the router chose.
	Router string `json:"router"`
	Chosen string `json:"chosen"`
	// Dependency, when set, is the required dependency whose skip skipped
	// this asset too: it is downstream of a branch not chosen.
	Dependency string `json:"dependency,omitempty"`
}

// String says why, for people.
func (s *Skip) String() string {
	if s.Dependency != "" {
		return fmt.Sprintf("dependency %q was skipped (router %q chose %q)", s.Dependency, s.Router, s.Chosen)
	}
	return fmt.Sprintf("router %q chose %q", s.Router, s.Chosen)
}

// skippedError is the error of a run whose target was skipped.
func skippedError(p *Pipeline, asset, partition string, s *Skip) *Error {
	d := map[string]any{"pipeline": p.name, "asset": asset, "partition": partition, "router": s.Router, "chosen": s.Chosen}
	if s.Dependency != "" {
		d["dependency"] = s.Dependency
	}
	return newError(TypeSkipped, d, "asset %q was skipped for partition %q: %s", asset, partition, s)
}
