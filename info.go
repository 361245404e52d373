package flowstone

// Info describes an asset, as the API proposal's asset_info.
type Info struct {
	Name          string   `json:"name"`
	DependsOn     []string `json:"depends_on"`
	OptionalDeps  []string `json:"optional_deps,omitempty"`
	Description   string   `json:"description"`
	PartitionedBy string   `json:"partitioned_by"`
	Scatter       bool     `json:"scatter"`
	Parallel      bool     `json:"parallel"`
	// HasApproval: the asset waits for an approval before it runs
	// (Approval).
	HasApproval bool `json:"has_approval"`
	// HasSignal: the asset waits for a signal before it runs
	// (WaitForSignal).
	HasSignal bool `json:"has_signal,omitempty"`
}

// Assets lists the pipeline's assets in its stable topological order.
func Assets(p *Pipeline) []string { return names(p.nodes) }

// AssetInfo describes one asset.
func AssetInfo(p *Pipeline, asset string) (Info, error) {
	n, err := p.lookup(asset)
	if err != nil {
		return Info{}, err
	}
	info := Info{
		Name:         n.def.name,
		DependsOn:    append([]string{}, n.def.deps...),
		OptionalDeps: n.def.optional,
		Description:  n.def.description,
		Scatter:      n.def.scatter != nil,
		Parallel:     n.def.scatter != nil && n.def.scatter.cfg.Parallel > 1,
	}
	if n.def.partitions != nil {
		info.PartitionedBy = n.def.partitions.Kind()
	}
	if g := n.def.gate; g != nil {
		info.HasApproval, info.HasSignal = g.kind == GateApproval, g.kind == GateSignal
	}
	return info, nil
}
