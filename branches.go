package flowstone

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
)

// Branches names the parallel branches an asset joins (see Join): branch
// name → the asset the branch ends in, an asset of the same pipeline.
// Branch names are identifiers, like asset names.
type Branches map[string]string

// JoinMode says which of a join's branches must succeed for the join to
// run.
type JoinMode string

// The join modes. The zero JoinMode is AllOrNothing.
const (
	// AllOrNothing: every branch must succeed. A branch that fails, or
	// does not end within JoinConfig.Timeout, fails the join with a
	// DependencyFailed error naming the branch.
	AllOrNothing JoinMode = "all_or_nothing"
	// Partial: the branches JoinConfig.Optional names may fail; the join
	// runs and reads their outcome (BranchResult.Err, or Skipped). The
	// other branches must succeed, as in AllOrNothing.
	Partial JoinMode = "partial"
)

// JoinConfig says how an asset joins its branches (see Join).
type JoinConfig struct {
	// Mode is AllOrNothing (the default) or Partial.
	Mode JoinMode `json:"mode"`
	// Optional names the branches a Partial join can do without: at least
	// one, and only with Partial.
	Optional []string `json:"optional,omitempty"`
	// Timeout, when above 0, bounds the branches together, from when the
	// first of them starts to execute in a run: branches not done by then
	// are cancelled and end with a Timeout error (reported to a Partial
	// join for an optional branch, failing the join for a required one).
	// It covers each branch's end asset and the assets upstream of it that
	// only that branch needs.
	Timeout time.Duration `json:"timeout_ns,omitempty"`
}

// joinSpec is a Join's declaration, checked when the pipeline is built.
type joinSpec struct {
	branches Branches
	cfg      JoinConfig
	names    []string          // the branch names, sorted
	optional map[string]bool   // by branch name
	byAsset  map[string]string // end asset → branch name
}

// Join makes the asset join parallel branches: each branch's end asset
// becomes a dependency of this one (required, or optional for the
// Optional branches of a Partial join), so that the branches run
// concurrently, each as soon as its own dependencies allow, and the
// asset runs once they have ended. Its function reads their outcomes with
// Context.Branches. The engine runs the branches like any dependencies:
// cached ones are reused, and on a fleet they run across the workers.
//
// NewPipeline reports a ConfigError for no branches, a bad branch name,
// two branches ending in one asset, an end asset that is also listed in
// DependsOn or OptionalDeps, an Optional name that is no branch, Optional
// without Partial (or Partial without Optional), an unknown Mode or a
// negative Timeout; and an AssetNotFound error for an end asset that is
// not in the pipeline.
func Join(branches Branches, cfg JoinConfig) AssetOption {
	j := &joinSpec{branches: maps.Clone(branches), cfg: cfg, optional: map[string]bool{}, byAsset: map[string]string{}}
	j.cfg.Optional = slices.Clone(cfg.Optional)
	if j.cfg.Mode == "" {
		j.cfg.Mode = AllOrNothing
	}
	j.names = slices.Sorted(maps.Keys(j.branches))
	for _, b := range j.cfg.Optional {
		j.optional[b] = true
	}
	for _, b := range j.names {
		j.byAsset[j.branches[b]] = b
	}
	return assetOptionFunc(func(a *AssetDef) { a.join = j })
}

// check validates the join of asset in pipeline, but for its end assets'
// existence (NewPipeline's dependency check reports those).
func (j *joinSpec) check(pipeline, asset string) error {
	details := func(more ...any) map[string]any {
		d := map[string]any{"pipeline": pipeline, "asset": asset}
		for i := 0; i+1 < len(more); i += 2 {
			d[more[i].(string)] = more[i+1]
		}
		return d
	}
	if len(j.names) == 0 {
		return newError(TypeConfigError, details(), "asset %q joins no branches: give Join at least one", asset)
	}
	ends := map[string]string{}
	for _, b := range j.names {
		if err := validName("branch", b); err != nil {
			fe := AsError(err)
			fe.Details["pipeline"], fe.Details["asset"] = pipeline, asset
			return fe
		}
		end := j.branches[b]
		if other, dup := ends[end]; dup {
			return newError(TypeConfigError, details("branch", b, "other", other, "end", end),
				"branches %q and %q of %q both end in asset %q: each branch ends in an asset of its own", other, b, asset, end)
		}
		ends[end] = b
		if end == asset {
			return newError(TypeConfigError, details("branch", b), "branch %q of %q ends in %q itself: a branch ends upstream of its join", b, asset, asset)
		}
	}
	switch j.cfg.Mode {
	case AllOrNothing:
		if len(j.cfg.Optional) > 0 {
			return newError(TypeConfigError, details("optional", j.cfg.Optional),
				"asset %q names optional branches %v in mode all_or_nothing: set Mode to flowstone.Partial", asset, j.cfg.Optional)
		}
	case Partial:
		if len(j.cfg.Optional) == 0 {
			return newError(TypeConfigError, details("mode", string(Partial)),
				"asset %q joins in mode partial but names no optional branch: list in Optional the branches it can do without", asset)
		}
	default:
		return newError(TypeConfigError, details("mode", string(j.cfg.Mode)),
			"asset %q has join mode %q: use flowstone.AllOrNothing or flowstone.Partial", asset, j.cfg.Mode)
	}
	for _, b := range j.cfg.Optional {
		if _, ok := j.branches[b]; !ok {
			return newError(TypeConfigError, details("branch", b, "branches", j.names),
				"optional branch %q of %q is not one of its branches [%s]", b, asset, strings.Join(j.names, " "))
		}
	}
	if j.cfg.Timeout < 0 {
		return newError(TypeConfigError, details("timeout_ms", j.cfg.Timeout.Milliseconds()), "asset %q has a negative join timeout %v", asset, j.cfg.Timeout)
	}
	return nil
}

// required reports whether branch b must succeed for the join to run.
func (j *joinSpec) required(b string) bool { return !j.optional[b] }

// BranchResult is the outcome of one branch of a join in the join's
// execution (see Context.Branches): a value, an error, or skipped.
type BranchResult struct {
	// Branch names the branch; Asset is the asset it ends in.
	Branch string
	Asset  string
	// Err says why an optional branch of a Partial join has no value: its
	// end asset failed, or ran past the join's Timeout (a Timeout error).
	// Nil when the branch has a value or was skipped.
	Err *Error
	// Skipped is true when the branch's end asset was skipped in this run:
	// a router upstream of it chose another branch (see Route).
	Skipped bool

	c   *Context
	ref *depRef
}

// OK reports whether the branch has a value to Decode.
func (r BranchResult) OK() bool { return r.ref != nil }

// Decode reads the branch's value into v (a pointer), as Dep reads a
// dependency: with the codec, as the raw bytes into a *[]byte or *string,
// or as a stream into an *io.Reader or *io.ReadCloser. It returns a
// NotFound error for a branch without a value.
func (r BranchResult) Decode(v any) error {
	if r.ref == nil {
		why := "was skipped"
		if r.Err != nil {
			why = "failed: " + r.Err.Error()
		}
		return wrapError(TypeNotFound, r.Err, map[string]any{"branch": r.Branch, "dependency": r.Asset},
			"branch %q (asset %q) has no value: it %s", r.Branch, r.Asset, why)
	}
	return r.c.read(r.ref, v)
}

// Branches returns the outcome of each branch the asset joins (see Join),
// by branch name; nil for an asset that joins none. A required branch
// always has a value here (the join would not run otherwise); an optional
// one of a Partial join may have failed or been skipped instead.
func (c *Context) Branches() map[string]BranchResult {
	j := c.n.def.join
	if j == nil {
		return nil
	}
	out := make(map[string]BranchResult, len(j.names))
	for _, b := range j.names {
		asset := j.branches[b]
		r := BranchResult{Branch: b, Asset: asset, c: c}
		switch ref := c.dep(asset); {
		case ref == nil:
			r.Err = newError(TypeNotFound, map[string]any{"branch": b, "dependency": asset}, "branch %q (asset %q) has no outcome in this execution", b, asset)
		case ref.Skipped:
			r.Skipped = true
		case ref.Missing:
			r.Err = absentError(c, ref)
		default:
			r.ref = ref
		}
		out[b] = r
	}
	return out
}

// absentError is why a missing optional dependency has no value, as the
// engine told it (nil when it did not).
func absentError(c *Context, ref *depRef) *Error {
	if ref.Err != nil {
		return AsError(ref.Err)
	}
	return newError(TypeNotFound, map[string]any{"asset": c.n.def.name, "dependency": ref.Asset},
		"dependency %q of %q has no value for partition %q", ref.Asset, c.n.def.name, c.task.Partition)
}

// branchRef names a branch of a join.
type branchRef struct {
	join   *node
	branch string
}

// linkJoins marks, for every join with a Timeout, the assets of each of
// its branches (node.members): the branch's end asset and the assets
// upstream of it that no other dependency of the join needs. It reports
// whether there is such a join.
func linkJoins(nodes []*node) bool {
	var closures map[*node][]bool
	closure := func(n *node) []bool {
		if c, ok := closures[n]; ok {
			return c
		}
		c := make([]bool, len(nodes))
		var mark func(m *node)
		mark = func(m *node) {
			if c[m.index] {
				return
			}
			c[m.index] = true
			for _, in := range m.inputs {
				mark(in)
			}
		}
		mark(n)
		closures[n] = c
		return c
	}
	for _, jn := range nodes {
		j := jn.def.join
		if j == nil || j.cfg.Timeout <= 0 {
			continue
		}
		if closures == nil {
			closures = map[*node][]bool{}
		}
		for _, in := range jn.inputs {
			b, ok := j.byAsset[in.def.name]
			if !ok {
				continue
			}
			own := slices.Clone(closure(in))
			for _, other := range jn.inputs {
				if other == in {
					continue
				}
				for i, up := range closure(other) {
					if up {
						own[i] = false
					}
				}
			}
			for i, mine := range own {
				if mine {
					nodes[i].members = append(nodes[i].members, branchRef{join: jn, branch: b})
				}
			}
		}
	}
	return closures != nil
}

// branchClock is one run's clock of a join's branches (JoinConfig.Timeout):
// it starts when the first of them starts to execute and, when it runs
// out, cancels those not done, with a Timeout error.
type branchClock struct {
	join  *node
	limit time.Duration
	// ctx is the run's context, cancelled when the clock runs out; the
	// branches' steps run under it.
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	deadline time.Time
	timer    *time.Timer
}

// start starts the clock, if it has not started, and returns when it runs
// out.
func (b *branchClock) start() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.deadline.IsZero() {
		b.deadline = time.Now().Add(b.limit)
		b.timer = time.AfterFunc(b.limit, func() { b.cancel(b.timeoutError()) })
	}
	return b.deadline
}

// stop stops the clock once the run is over.
func (b *branchClock) stop() {
	b.mu.Lock()
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
	b.cancel(nil)
}

// timeoutError is the error of the branches the clock stopped. It wraps
// hook.ErrTaskDeadline: the tasks of those branches carry the clock's end
// as their deadline, so that a fleet's worker stops them on its own and
// the run's other tasks go on.
func (b *branchClock) timeoutError() *Error {
	return wrapError(TypeTimeout, hook.ErrTaskDeadline, map[string]any{"join": b.join.def.name, "timeout_ms": b.limit.Milliseconds()},
		"the branches of %q exceeded their timeout of %v", b.join.def.name, b.limit)
}
