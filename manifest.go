package flowstone

import (
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

// manifest describes the pipeline for the fleet: the asset specs a
// coordinator plans from without the Go functions. worker names the process
// that hosts it.
func (p *Pipeline) manifest(worker string) protocol.Manifest {
	m := protocol.Manifest{V: protocol.Version, Pipeline: p.name, Worker: worker, UpdatedAt: time.Now().UTC()}
	for _, n := range p.nodes {
		d := n.def
		spec := protocol.AssetSpec{
			Name:         d.name,
			DependsOn:    d.deps,
			OptionalDeps: d.optional,
			Description:  d.description,
			TimeoutMS:    d.timeout.Milliseconds(),
			Retries:      max(d.retry.Attempts-1, 0),
			Storage:      d.storage,
			Scatter:      d.scatter != nil,
		}
		if j := d.join; j != nil {
			spec.Parallel, spec.JoinMode, spec.JoinTimeoutMS = true, string(j.cfg.Mode), j.cfg.Timeout.Milliseconds()
			for _, b := range j.names {
				spec.Branches = append(spec.Branches, protocol.BranchSpec{Name: b, Asset: j.branches[b], Optional: j.optional[b]})
			}
		}
		if r := d.route; r != nil {
			spec.Route = r.names()
		}
		if d.partitions != nil {
			spec.PartitionedBy = d.partitions.Kind()
		}
		if g := d.gate; g != nil {
			spec.GateTimeoutMS = g.wait().Milliseconds()
			switch g.kind {
			case GateApproval:
				spec.HasApproval, spec.ApprovalMessage, spec.ApprovalContext = true, g.message, g.context
			case GateSignal:
				spec.HasSignal, spec.SignalOnTimeout = true, g.hasOnTimeout
			}
		}
		m.Assets = append(m.Assets, spec)
	}
	p.manifestAutomation(&m)
	return m
}

// pipelineFromManifest rebuilds a pipeline's shape from its manifest, with
// no functions: the coordinator plans and answers graph, assets and info from
// it, and its executions happen on workers. It validates like NewPipeline.
func pipelineFromManifest(m protocol.Manifest) (*Pipeline, error) {
	defs := make([]AssetDef, 0, len(m.Assets))
	for _, a := range m.Assets {
		d := AssetDef{name: a.Name, fn: remoteOnly, deps: a.DependsOn, optional: a.OptionalDeps, description: a.Description,
			timeout: time.Duration(a.TimeoutMS) * time.Millisecond, storage: a.Storage}
		if a.Retries > 0 {
			d.retry = RetryPolicy{Attempts: a.Retries + 1}
		}
		switch a.PartitionedBy {
		case "":
		case "date":
			d.partitions = Daily
		case "hour":
			d.partitions = Hourly
		case "any":
			d.partitions = AnyKey
		default:
			// The key set lives with the workers; they validate.
			d.partitions = anyPartitioning(a.PartitionedBy)
		}
		switch {
		case a.HasApproval:
			d.gate = &gateSpec{kind: GateApproval, message: a.ApprovalMessage, context: a.ApprovalContext,
				timeout: time.Duration(a.GateTimeoutMS) * time.Millisecond}
		case a.HasSignal:
			// The handlers live with the workers; the coordinator only
			// needs to know whether expiry runs one.
			d.gate = &gateSpec{kind: GateSignal, timeout: time.Duration(a.GateTimeoutMS) * time.Millisecond, hasOnTimeout: a.SignalOnTimeout}
			d.fn = nil
		}
		if a.Scatter {
			d.scatter = &scatterSpec{cfg: ScatterConfig{Parallel: 1}}
		}
		if len(a.Branches) > 0 {
			branches, cfg := Branches{}, JoinConfig{Mode: JoinMode(a.JoinMode), Timeout: time.Duration(a.JoinTimeoutMS) * time.Millisecond}
			for _, b := range a.Branches {
				branches[b.Name] = b.Asset
				if b.Optional {
					cfg.Optional = append(cfg.Optional, b.Name)
				}
			}
			Join(branches, cfg).applyAsset(&d)
		}
		if len(a.Route) > 0 {
			// The conditions live with the workers: the coordinator plans
			// from the branches, and reads the decisions from the records.
			r := &routeSpec{remote: true}
			for i, name := range a.Route {
				r.cases = append(r.cases, RouteCase{asset: name, otherwise: i == len(a.Route)-1})
			}
			d.route, d.fn = r, nil
		}
		defs = append(defs, d)
	}
	p, err := NewPipeline(m.Pipeline, defs...)
	if err != nil {
		return nil, err
	}
	return automationFromManifest(p, m)
}

// remoteOnly stands for a function that lives on the workers.
func remoteOnly(c *Context) (any, error) {
	return nil, newError(TypeConfigError, map[string]any{"pipeline": c.p.name, "asset": c.n.def.name},
		"asset %q of pipeline %s runs on workers, not in this process", c.n.def.name, c.p.name)
}

type anyPartitioning string

func (p anyPartitioning) Kind() string          { return string(p) }
func (p anyPartitioning) Validate(string) error { return nil }
