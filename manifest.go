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
			Parallel:     d.scatter != nil && d.scatter.cfg.Parallel > 1,
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
			cfg := ScatterConfig{Parallel: 1}
			if a.Parallel {
				cfg.Parallel = 2
			}
			d.scatter = &scatterSpec{cfg: cfg}
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
