package flowstone

import "time"

// AssetFunc computes an asset's value. It reads its dependencies with Dep and
// returns the value to store: any value the codec can encode (JSON by
// default), a []byte (stored as is) or an io.Reader (streamed to the object
// store, never held in memory whole).
type AssetFunc func(c *Context) (any, error)

// AssetDef is an asset's definition: its name, its function and its options.
// Build one with Asset and hand it to NewPipeline.
type AssetDef struct {
	name        string
	fn          AssetFunc
	deps        []string
	optional    []string
	description string
	partitions  Partitioning
	timeout     time.Duration
	retry       RetryPolicy
	storage     string
	scatter     *scatterSpec
	gate        *gateSpec
}

// Name returns the asset's name.
func (a AssetDef) Name() string { return a.name }

// AssetOption configures an asset (DependsOn, Description, Timeout, ...).
type AssetOption interface{ applyAsset(*AssetDef) }

type assetOptionFunc func(*AssetDef)

func (f assetOptionFunc) applyAsset(a *AssetDef) { f(a) }

// Asset defines an asset: a named value computed by fn from the assets it
// depends on.
func Asset(name string, fn AssetFunc, opts ...AssetOption) AssetDef {
	a := AssetDef{name: name, fn: fn}
	for _, o := range opts {
		o.applyAsset(&a)
	}
	return a
}

// DependsOn names the assets this one needs. They are materialized first, for
// the same partition, and their values are read with Dep.
func DependsOn(names ...string) AssetOption {
	return assetOptionFunc(func(a *AssetDef) { a.deps = append(a.deps, names...) })
}

// OptionalDeps names assets this one uses when they succeed. They run first
// like DependsOn, but their failure does not fail this asset: Dep returns a
// NotFound error for them and Context.HasDep reports false.
func OptionalDeps(names ...string) AssetOption {
	return assetOptionFunc(func(a *AssetDef) { a.optional = append(a.optional, names...) })
}

// Description documents the asset; AssetInfo returns it.
func Description(s string) AssetOption {
	return assetOptionFunc(func(a *AssetDef) { a.description = s })
}

// PartitionedBy declares how the asset is partitioned (Daily, Hourly,
// Static(...), AnyKey): every verb given a partition key the scheme
// rejects fails with a BadRequest error before anything executes or is
// read. An asset without it takes the partitions of the partitioned
// assets upstream of it (their schemes all apply); an asset with no
// partitioned asset upstream or downstream is unpartitioned: it has the
// one partition DefaultPartition, which calls that name no partition use,
// and any other key is a BadRequest error.
func PartitionedBy(p Partitioning) AssetOption {
	return assetOptionFunc(func(a *AssetDef) { a.partitions = p })
}

// RetryPolicy says how often a failing asset function is tried again.
type RetryPolicy struct {
	// Attempts is the number of executions in all, first included. Zero or
	// one means no retry.
	Attempts int
	// Backoff is the wait before the second attempt; it doubles after each
	// further failure.
	Backoff time.Duration
}

// Retry makes a failing asset function run again, up to attempts times in all,
// waiting backoff (doubled each time) in between. Timeouts and cancellation
// are not retried.
func Retry(attempts int, backoff time.Duration) AssetOption {
	return assetOptionFunc(func(a *AssetDef) { a.retry = RetryPolicy{Attempts: attempts, Backoff: backoff} })
}

// StorageOf names the object store that holds this asset's results
// (EngineConfig.Stores key). The default is the engine's default store.
func StorageOf(name string) AssetOption {
	return assetOptionFunc(func(a *AssetDef) { a.storage = name })
}
