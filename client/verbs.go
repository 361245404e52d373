package client

import (
	"context"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
)

// Status tells where asset stands for the partition: StateNotFound when it
// never ran, StateScheduled (with ScheduledAt, the time, and RunID, the
// run) for a run waiting for its time, unless an attempt is under way.
func (c *Client) Status(ctx context.Context, pipeline, asset string, opts ...flowstone.GetOption) (flowstone.StatusInfo, error) {
	g := bridge.ResolveGet(opts...)
	if err := checkPartition(g.Partition); err != nil {
		return flowstone.StatusInfo{}, err
	}
	r, err := call[protocol.StatusReply](ctx, c, protocol.StatusRequest{V: protocol.Version, Pipeline: pipeline, Asset: asset, Partition: g.Partition})
	if err != nil {
		return flowstone.StatusInfo{}, err
	}
	info := flowstone.StatusInfo{State: flowstone.State(r.State), Partition: r.Partition, CompletedAt: r.CompletedAt,
		DurationMS: r.DurationMS, Storage: r.Storage, Error: bridge.FromWire(r.Error), RunID: r.RunID, ScheduledAt: r.ScheduledAt,
		Gate: gateOf(r.Gate)}
	if r.Scatter != nil {
		info.Scatter = &flowstone.ScatterStatus{Total: r.Scatter.Total, Completed: r.Scatter.Completed, Failed: r.Scatter.Failed, Cancelled: r.Scatter.Cancelled, Pending: r.Scatter.Pending}
		for _, f := range r.Scatter.FailedItems {
			info.Scatter.FailedItems = append(info.Scatter.FailedItems, flowstone.ScatterFailure{Item: f.Item, Error: bridge.FromWire(f.Error)})
		}
	}
	if v := r.Value; v != nil {
		info.Value = &flowstone.ValueInfo{RunID: v.RunID, CompletedAt: v.CompletedAt, Storage: v.Storage, Size: v.Size}
	}
	return info, nil
}

// Cancel stops the runs of asset for the partition on the fleet: running
// executions have their context cancelled, pending and scheduled ones never
// start. It returns a NotFound error if nothing was running or scheduled.
func (c *Client) Cancel(ctx context.Context, pipeline, asset string, opts ...flowstone.GetOption) error {
	g := bridge.ResolveGet(opts...)
	if err := checkPartition(g.Partition); err != nil {
		return err
	}
	r, err := call[protocol.CancelReply](ctx, c, protocol.CancelRequest{V: protocol.Version, Pipeline: pipeline, Asset: asset, Partition: g.Partition})
	if err != nil {
		return err
	}
	if r.Cancelled == 0 {
		return &flowstone.Error{Type: flowstone.TypeNotFound, Details: map[string]any{"pipeline": pipeline, "asset": asset, "partition": g.Partition},
			Message: "cannot cancel " + asset + " (partition " + g.Partition + "): nothing is running, pending or scheduled"}
	}
	return nil
}

// Invalidate deletes the records and results of asset on the fleet so
// the next Run recomputes them, with the options of flowstone.Invalidate:
// one partition (flowstone.Partition; the default partition when none is
// named), several (flowstone.Partitions, flowstone.DateRange) or every
// partition that has a record (flowstone.AllPartitions), and with
// flowstone.Cascade everything downstream of each. It returns how many
// records it deleted, counted as flowstone.Engine.Invalidate counts them.
// A large set takes the coordinator a round trip to its store per record:
// allow it time (a context deadline or WithTimeout).
func (c *Client) Invalidate(ctx context.Context, pipeline, asset string, opts ...flowstone.InvalidateOption) (int, error) {
	i, err := bridge.ResolveInvalidate(opts...)
	if err != nil {
		return 0, err
	}
	req := protocol.InvalidateRequest{V: protocol.Version, Pipeline: pipeline, Asset: asset,
		Partition: i.Partition, Partitions: i.Partitions, All: i.All, Cascade: i.Cascade}
	r, err := call[protocol.InvalidateReply](ctx, c, req)
	return r.Count, err
}

// Graph draws the pipeline's DAG (flowstone.Format: ASCII, Mermaid or DOT).
func (c *Client) Graph(ctx context.Context, pipeline string, opts ...flowstone.GraphOption) (string, error) {
	format := protocol.GraphFormat(bridge.ResolveGraph(opts...).String())
	r, err := call[protocol.GraphReply](ctx, c, protocol.GraphRequest{V: protocol.Version, Pipeline: pipeline, Format: format})
	return r.Graph, err
}

// Assets lists the pipeline's assets in its order.
func (c *Client) Assets(ctx context.Context, pipeline string) ([]string, error) {
	r, err := call[protocol.AssetsReply](ctx, c, protocol.AssetsRequest{V: protocol.Version, Pipeline: pipeline})
	if err != nil {
		return nil, err
	}
	return r.Assets, nil
}

// AssetInfo describes one asset, as the workers hosting it declare it.
func (c *Client) AssetInfo(ctx context.Context, pipeline, asset string) (flowstone.Info, error) {
	r, err := call[protocol.InfoReply](ctx, c, protocol.InfoRequest{V: protocol.Version, Pipeline: pipeline, Asset: asset})
	if err != nil {
		return flowstone.Info{}, err
	}
	info := flowstone.Info{Name: r.Name, DependsOn: r.DependsOn, OptionalDeps: r.OptionalDeps, Description: r.Description,
		PartitionedBy: r.PartitionedBy, Scatter: r.Scatter, Parallel: r.Parallel, HasApproval: r.HasApproval, HasSignal: r.HasSignal}
	if info.DependsOn == nil {
		info.DependsOn = []string{}
	}
	return info, nil
}

// Pipelines lists the pipelines the fleet's workers host.
func (c *Client) Pipelines(ctx context.Context) ([]protocol.PipelineSummary, error) {
	r, err := call[protocol.PipelinesReply](ctx, c, protocol.PipelinesRequest{V: protocol.Version})
	if err != nil {
		return nil, err
	}
	return r.Pipelines, nil
}
