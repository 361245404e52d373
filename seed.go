package flowstone

import (
	"context"
	"slices"
	"time"
)

// SeedRunID is the run id of the records Seed writes.
const SeedRunID = "seed"

// Seed stores value as the materialized result of asset for the partition
// (Partition; DefaultPartition without it), in the store Storage names (or
// the asset's, or the default), without running anything. The value crosses
// the engine's codec like a computed one ([]byte and io.Reader are stored
// raw), and the record it writes is completed with run id SeedRunID, so
// later runs reuse it as they would a computed result: a WithDeps(false) run
// of a dependent reads it, Get returns it, Invalidate deletes it.
//
// Seed is for tests (package flowstonetest builds on it) and for importing
// results computed elsewhere. Options other than Partition and Storage are
// ignored. It replaces whatever was materialized before, and emits the
// storage.store events of its write (no run events: nothing runs). A
// router's value is its decision: seed it with the name of one of its
// branches (a string), and runs take that branch without evaluating its
// conditions.
func (e *Engine) Seed(ctx context.Context, p *Pipeline, asset string, value any, opts ...RunOption) error {
	cfg := newRunConfig(opts)
	if cfg.err != nil {
		return cfg.err
	}
	n, err := p.lookup(asset)
	if err != nil {
		return err
	}
	if err := e.checkPartitionFor(p, n, cfg.partition); err != nil {
		return err
	}
	if r := n.def.route; r != nil {
		// A router's value is its decision: the name of one of its
		// branches, kept raw in its record.
		var chosen string
		switch v := value.(type) {
		case string:
			chosen = v
		case []byte:
			chosen = string(v)
		}
		if !slices.Contains(r.names(), chosen) {
			return newError(TypeBadRequest, map[string]any{"pipeline": p.name, "asset": asset, "branches": r.names()},
				"the value of router %q is its decision: seed it with the name of one of its branches %v", asset, r.names())
		}
		value = []byte(chosen)
	}
	// An object of its own: a seed that fails must not touch the object
	// of the value it was to replace.
	t := &task{RunID: SeedRunID, Asset: asset, Partition: cfg.partition, Storage: cfg.storage, Attempt: 1, Object: SeedRunID + "-" + newRunID()}
	v, err := e.x.storeResult(ctx, p, n, t, value)
	if err != nil {
		return err
	}
	v.CompletedAt = time.Now()
	old, tried, err := e.x.records.seed(ctx, materializationKey(p.name, asset, cfg.partition), ident{p.name, asset, cfg.partition}, v)
	if err != nil {
		if !tried {
			// Nothing was written: no record points to the result.
			e.x.dropObject(ctx, v, nil)
		}
		// Else a write whose reply was lost may have landed, and the
		// record point to the result: it is kept (unreferenced, at worst).
		return err
	}
	// The record no longer points to the old result: drop it.
	e.x.dropObject(ctx, old, v)
	return nil
}
