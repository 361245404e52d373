package flowstone

import "context"

// Run materializes asset on the Default engine; see Engine.Run.
func Run(ctx context.Context, p *Pipeline, asset string, opts ...RunOption) (*Result, error) {
	return Default().Run(ctx, p, asset, opts...)
}

// Get returns a materialized result from the Default engine; see Engine.Get.
func Get(ctx context.Context, p *Pipeline, asset string, opts ...GetOption) (*Result, error) {
	return Default().Get(ctx, p, asset, opts...)
}

// Exists reports whether asset is materialized on the Default engine.
func Exists(ctx context.Context, p *Pipeline, asset string, opts ...GetOption) (bool, error) {
	return Default().Exists(ctx, p, asset, opts...)
}

// Status tells where asset stands on the Default engine.
func Status(ctx context.Context, p *Pipeline, asset string, opts ...GetOption) (StatusInfo, error) {
	return Default().Status(ctx, p, asset, opts...)
}

// Cancel stops runs of asset on the Default engine; see Engine.Cancel.
func Cancel(ctx context.Context, p *Pipeline, asset string, opts ...GetOption) error {
	return Default().Cancel(ctx, p, asset, opts...)
}

// Invalidate deletes results on the Default engine; see Engine.Invalidate.
func Invalidate(ctx context.Context, p *Pipeline, asset string, opts ...InvalidateOption) (int, error) {
	return Default().Invalidate(ctx, p, asset, opts...)
}

// Backfill runs asset over partitions on the Default engine; see
// Engine.Backfill.
func Backfill(ctx context.Context, p *Pipeline, asset string, opts ...BackfillOption) (BackfillStats, error) {
	return Default().Backfill(ctx, p, asset, opts...)
}

// The pipeline module API: the same verbs as methods, on the Default engine.

// Run is flowstone.Run(ctx, p, asset, opts...).
func (p *Pipeline) Run(ctx context.Context, asset string, opts ...RunOption) (*Result, error) {
	return Run(ctx, p, asset, opts...)
}

// Get is flowstone.Get(ctx, p, asset, opts...).
func (p *Pipeline) Get(ctx context.Context, asset string, opts ...GetOption) (*Result, error) {
	return Get(ctx, p, asset, opts...)
}

// Exists is flowstone.Exists(ctx, p, asset, opts...).
func (p *Pipeline) Exists(ctx context.Context, asset string, opts ...GetOption) (bool, error) {
	return Exists(ctx, p, asset, opts...)
}

// Status is flowstone.Status(ctx, p, asset, opts...).
func (p *Pipeline) Status(ctx context.Context, asset string, opts ...GetOption) (StatusInfo, error) {
	return Status(ctx, p, asset, opts...)
}

// Cancel is flowstone.Cancel(ctx, p, asset, opts...).
func (p *Pipeline) Cancel(ctx context.Context, asset string, opts ...GetOption) error {
	return Cancel(ctx, p, asset, opts...)
}

// Invalidate is flowstone.Invalidate(ctx, p, asset, opts...).
func (p *Pipeline) Invalidate(ctx context.Context, asset string, opts ...InvalidateOption) (int, error) {
	return Invalidate(ctx, p, asset, opts...)
}

// Backfill is flowstone.Backfill(ctx, p, asset, opts...).
func (p *Pipeline) Backfill(ctx context.Context, asset string, opts ...BackfillOption) (BackfillStats, error) {
	return Backfill(ctx, p, asset, opts...)
}

// Graph is flowstone.Graph(p, opts...).
func (p *Pipeline) Graph(opts ...GraphOption) (string, error) { return Graph(p, opts...) }

// Assets is flowstone.Assets(p).
func (p *Pipeline) Assets() []string { return Assets(p) }

// AssetInfo is flowstone.AssetInfo(p, asset).
func (p *Pipeline) AssetInfo(asset string) (Info, error) { return AssetInfo(p, asset) }
