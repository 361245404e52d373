package flowstone

import (
	"slices"
	"strings"
	"time"
)

// Pipeline is a validated set of assets: a DAG with a name. Build it with
// NewPipeline; it is immutable afterwards and safe for concurrent use.
type Pipeline struct {
	name   string
	nodes  []*node          // stable topological order
	byName map[string]*node // name -> node
	// timedJoins: an asset joins branches with a Timeout, which runs
	// time with branch clocks.
	timedJoins bool
	// schedules and sensors are its automations (Automate), in
	// declaration order.
	schedules []*scheduleSpec
	sensors   []*sensorSpec
}

// node is one asset inside a validated pipeline.
type node struct {
	def        AssetDef
	index      int     // position in topological order
	inputs     []*node // required then optional deps, as declared
	required   []bool  // parallel to inputs: is the dep required
	dependents []*node // direct downstream assets, in topological order
	// partitioned: the asset, or an asset upstream or downstream of it,
	// declares a partitioning. An asset that is not has one partition,
	// DefaultPartition.
	partitioned bool
	// router is the router this asset is a branch of (Route), if any.
	router *node
	// conditional: a run may skip this asset, because it is a branch of a
	// router, or needs (DependsOn) an asset that is conditional.
	conditional bool
	// members names the branches of joins with a Timeout this asset
	// belongs to (see linkJoins).
	members []branchRef
	// upGates is the wait of every gate upstream of the asset (itself
	// left out), added up; signalUp is one of those gates' assets that
	// waits for a signal, if any (see runLimit, Engine.checkGates).
	upGates  time.Duration
	signalUp *node
}

// Name returns the pipeline's name.
func (p *Pipeline) Name() string { return p.name }

// MustPipeline is NewPipeline that panics on an invalid definition, for
// package-level pipeline variables.
func MustPipeline(name string, assets ...AssetDef) *Pipeline {
	p, err := NewPipeline(name, assets...)
	if err != nil {
		panic(err)
	}
	return p
}

// NewPipeline validates the assets and returns the pipeline. It reports, as a
// ConfigError naming the culprit: a bad pipeline or asset name, a duplicate
// asset, a missing function, a dependency that is not in the pipeline (an
// AssetNotFound error), a dependency cycle (with its path), and a Join or
// Route that does not hold together (see each).
//
// Names are identifiers: a letter, then letters, digits, '_' or '-', at most
// 128 characters, so they are safe in subjects, keys and paths.
func NewPipeline(name string, assets ...AssetDef) (*Pipeline, error) {
	if err := validName("pipeline", name); err != nil {
		return nil, err
	}
	if len(assets) == 0 {
		return nil, newError(TypeConfigError, map[string]any{"pipeline": name},
			"pipeline %s has no assets; pass at least one flowstone.Asset", name)
	}
	p := &Pipeline{name: name, byName: make(map[string]*node, len(assets))}
	declared := make([]*node, 0, len(assets))
	for _, a := range assets {
		if err := validName("asset", a.name); err != nil {
			return nil, err
		}
		if _, dup := p.byName[a.name]; dup {
			return nil, newError(TypeConfigError, map[string]any{"pipeline": name, "asset": a.name},
				"asset %q is defined twice in pipeline %s", a.name, name)
		}
		if a.gate != nil {
			if err := a.gate.check(name, a); err != nil {
				return nil, err
			}
		}
		if a.fn == nil && a.route == nil && (a.gate == nil || a.gate.kind != GateSignal) {
			return nil, newError(TypeConfigError, map[string]any{"pipeline": name, "asset": a.name},
				"asset %q in pipeline %s has no function", a.name, name)
		}
		if a.join != nil {
			if err := a.join.check(name, a.name); err != nil {
				return nil, err
			}
		}
		n := &node{def: a}
		p.byName[a.name] = n
		declared = append(declared, n)
	}
	for _, n := range declared {
		seen := map[string]bool{}
		add := func(dep string, required bool, branch string) error {
			d, ok := p.byName[dep]
			if !ok && branch != "" {
				return newError(TypeAssetNotFound,
					map[string]any{"pipeline": name, "asset": n.def.name, "dependency": dep, "branch": branch, "available": names(declared)},
					"branch %q of %q ends in %q, which is not in pipeline %s. Available: [%s]",
					branch, n.def.name, dep, name, strings.Join(names(declared), " "))
			}
			if !ok {
				return newError(TypeAssetNotFound,
					map[string]any{"pipeline": name, "asset": n.def.name, "dependency": dep, "available": names(declared)},
					"asset %q depends on %q, which is not in pipeline %s. Available: [%s]",
					n.def.name, dep, name, strings.Join(names(declared), " "))
			}
			if seen[dep] {
				if branch != "" {
					return newError(TypeConfigError, map[string]any{"pipeline": name, "asset": n.def.name, "dependency": dep, "branch": branch},
						"branch %q of %q ends in %q, which it lists as a dependency too: a branch's end asset is a dependency of its join already",
						branch, n.def.name, dep)
				}
				return newError(TypeConfigError, map[string]any{"pipeline": name, "asset": n.def.name, "dependency": dep},
					"asset %q lists dependency %q twice", n.def.name, dep)
			}
			seen[dep] = true
			n.inputs = append(n.inputs, d)
			n.required = append(n.required, required)
			return nil
		}
		for _, dep := range n.def.deps {
			if err := add(dep, true, ""); err != nil {
				return nil, err
			}
		}
		for _, dep := range n.def.optional {
			if err := add(dep, false, ""); err != nil {
				return nil, err
			}
		}
		if j := n.def.join; j != nil {
			for _, b := range j.names {
				if err := add(j.branches[b], j.required(b), b); err != nil {
					return nil, err
				}
			}
		}
	}
	order, err := topoSort(name, declared)
	if err != nil {
		return nil, err
	}
	p.nodes = order
	for i, n := range order {
		n.index = i
	}
	for _, n := range order {
		for _, in := range n.inputs {
			in.dependents = append(in.dependents, n)
		}
	}
	markPartitioned(order)
	markGates(order)
	if err := linkRoutes(p); err != nil {
		return nil, err
	}
	for _, n := range order {
		n.conditional = n.router != nil
		for i, in := range n.inputs {
			n.conditional = n.conditional || n.required[i] && in.conditional
		}
	}
	p.timedJoins = linkJoins(order)
	return p, nil
}

// markGates sets node.upGates and node.signalUp, for pipelines with gates.
func markGates(order []*node) {
	gated := false
	for _, n := range order {
		gated = gated || n.def.gate != nil
	}
	if !gated {
		return
	}
	seen := make([]int, len(order)) // by index: the last node whose upstream counted it
	for _, n := range order {
		var walk func(m *node)
		walk = func(m *node) {
			for _, in := range m.inputs {
				if seen[in.index] == n.index+1 {
					continue
				}
				seen[in.index] = n.index + 1
				if g := in.def.gate; g != nil {
					n.upGates += g.wait()
					if g.kind == GateSignal && n.signalUp == nil {
						n.signalUp = in
					}
				}
				walk(in)
			}
		}
		walk(n)
	}
}

// runLimit is how long a run of target may take: its Timeout, and the
// wait of every gate it may pass (the target's, and with its dependencies
// those upstream of it), so that a run is never cut short by a gate
// waiting within its own Timeout.
func runLimit(target *node, withDeps bool, timeout time.Duration) time.Duration {
	if g := target.def.gate; g != nil {
		timeout += g.wait()
	}
	if withDeps {
		timeout += target.upGates
	}
	return timeout
}

// markPartitioned sets node.partitioned: a scheme reaches an asset from
// upstream (itself included) or from downstream.
func markPartitioned(order []*node) {
	up := make([]bool, len(order))
	for _, n := range order {
		up[n.index] = n.def.partitions != nil
		for _, in := range n.inputs {
			up[n.index] = up[n.index] || up[in.index]
		}
	}
	down := make([]bool, len(order))
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		for _, d := range n.dependents {
			down[n.index] = down[n.index] || down[d.index] || d.def.partitions != nil
		}
		n.partitioned = up[n.index] || down[n.index]
	}
}

// topoSort orders nodes so every dependency comes before its dependents;
// among ready nodes the declaration order wins, so the order is stable.
// A cycle is reported with its path ("a -> b -> a").
func topoSort(pipeline string, declared []*node) ([]*node, error) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := make(map[*node]int, len(declared))
	order := make([]*node, 0, len(declared))
	var stack []*node
	var visit func(n *node) error
	visit = func(n *node) error {
		switch state[n] {
		case done:
			return nil
		case visiting:
			i := slices.Index(stack, n)
			path := append(names(stack[i:]), n.def.name)
			return newError(TypeConfigError, map[string]any{"pipeline": pipeline, "cycle": path},
				"pipeline %s has a dependency cycle: %s", pipeline, strings.Join(path, " -> "))
		}
		state[n] = visiting
		stack = append(stack, n)
		for _, in := range n.inputs {
			if err := visit(in); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		order = append(order, n)
		return nil
	}
	for _, n := range declared {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// validName checks a pipeline or asset name.
func validName(kind, s string) error {
	ok := len(s) > 0 && len(s) <= 128
	for i, r := range s {
		if !ok {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_' || r == '-'):
		default:
			ok = false
		}
	}
	if !ok {
		return newError(TypeConfigError, map[string]any{kind: s},
			"invalid %s name %q: use a letter, then letters, digits, '_' or '-' (at most 128)", kind, s)
	}
	return nil
}

func names(ns []*node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.def.name
	}
	return out
}

// lookup returns the node for asset, or an AssetNotFound error listing the
// available assets.
func (p *Pipeline) lookup(asset string) (*node, error) {
	if n, ok := p.byName[asset]; ok {
		return n, nil
	}
	avail := names(p.nodes)
	return nil, newError(TypeAssetNotFound,
		map[string]any{"asset": asset, "pipeline": p.name, "available": avail},
		"Asset %q not found in %s. Available: [%s]", asset, p.name, strings.Join(avail, " "))
}

// downstream returns everything that depends on target (transitively),
// target excluded, in topological order.
func (p *Pipeline) downstream(target *node) []*node {
	in := make([]bool, len(p.nodes))
	var mark func(n *node)
	mark = func(n *node) {
		for _, d := range n.dependents {
			if !in[d.index] {
				in[d.index] = true
				mark(d)
			}
		}
	}
	mark(target)
	var out []*node
	for _, n := range p.nodes[target.index+1:] {
		if in[n.index] {
			out = append(out, n)
		}
	}
	return out
}
