package flowstone

import (
	"context"
	"errors"
	"time"

	"github.com/flowstone-go/flowstone/objectstore"
)

// StatusInfo is where an asset/partition stands; the JSON keys are the API
// proposal's. State, CompletedAt, DurationMS, Error, Scatter and RunID are
// the latest attempt's; Storage and Value describe the last good value,
// which a later failed, timed-out or cancelled attempt leaves readable.
type StatusInfo struct {
	State     State  `json:"state"`
	Partition string `json:"partition"`
	// CompletedAt is when the latest attempt ended (nil while it runs).
	CompletedAt *time.Time     `json:"completed_at"`
	DurationMS  int64          `json:"duration_ms"`
	Storage     string         `json:"storage"`
	Error       *Error         `json:"error,omitempty"`
	Scatter     *ScatterStatus `json:"scatter"`
	RunID       string         `json:"run_id,omitempty"`
	// Value describes the value Get returns; nil when there is none.
	Value *ValueInfo `json:"value,omitempty"`
}

// ValueInfo describes a materialized value in a StatusInfo.
type ValueInfo struct {
	// RunID is the run that computed the value.
	RunID string `json:"run_id"`
	// CompletedAt is when that run's attempt ended.
	CompletedAt time.Time `json:"completed_at"`
	Storage     string    `json:"storage"`
	Size        int64     `json:"size"`
}

// Get returns the materialized result of asset for the partition, or a
// NotFound error if there is none (it never runs anything).
func (e *Engine) Get(ctx context.Context, p *Pipeline, asset string, opts ...GetOption) (*Result, error) {
	_, cfg, err := e.getArgs(p, asset, opts)
	if err != nil {
		return nil, err
	}
	rec, _, err := e.record(ctx, p.name, asset, cfg.partition)
	if err != nil {
		return nil, err
	}
	if !rec.Materialized() {
		return nil, notMaterialized(p, asset, cfg.partition, rec)
	}
	if v := rec.Value; cfg.storage != "" && cfg.storage != v.Storage {
		s, _, err := e.x.store(cfg.storage)
		if err != nil {
			return nil, err
		}
		if v.Storage == InlineStorage {
			// Kept in the record: readable whichever store was named.
			return e.result(rec, true), nil
		}
		if _, err := s.Stat(ctx, v.ObjectKey); errors.Is(err, objectstore.ErrNotFound) {
			return nil, newError(TypeNotFound, map[string]any{"asset": asset, "partition": cfg.partition, "storage": cfg.storage, "stored_in": v.Storage},
				"asset %q (partition %q) is stored in %s, not in %s", asset, cfg.partition, v.Storage, cfg.storage)
		} else if err != nil {
			return nil, wrapError(TypeStorageError, err, nil, "stat %s in %s: %v", v.ObjectKey, cfg.storage, err)
		}
		nv := *v
		nv.Storage = cfg.storage
		rec.Value = &nv
	}
	return e.result(rec, true), nil
}

func notMaterialized(p *Pipeline, asset, partition string, rec *Materialization) *Error {
	state := StateNotFound
	if rec != nil {
		state = rec.State
	}
	return newError(TypeNotFound, map[string]any{"asset": asset, "partition": partition, "pipeline": p.name, "state": state},
		"asset %q has no result for partition %q (state: %s); materialize it with Run", asset, partition, state)
}

func (e *Engine) getArgs(p *Pipeline, asset string, opts []GetOption) (*node, getConfig, error) {
	cfg := newGetConfig(opts)
	n, err := p.lookup(asset)
	if err != nil {
		return nil, cfg, err
	}
	return n, cfg, validPartitionText(cfg.partition)
}

// Exists reports whether asset is materialized for the partition, without
// loading the value.
func (e *Engine) Exists(ctx context.Context, p *Pipeline, asset string, opts ...GetOption) (bool, error) {
	_, cfg, err := e.getArgs(p, asset, opts)
	if err != nil {
		return false, err
	}
	rec, _, err := e.record(ctx, p.name, asset, cfg.partition)
	if err != nil {
		return false, err
	}
	return rec.Materialized(), nil
}

// Status tells where asset stands for the partition: StateNotFound when
// it never ran.
func (e *Engine) Status(ctx context.Context, p *Pipeline, asset string, opts ...GetOption) (StatusInfo, error) {
	_, cfg, err := e.getArgs(p, asset, opts)
	if err != nil {
		return StatusInfo{}, err
	}
	rec, _, err := e.record(ctx, p.name, asset, cfg.partition)
	if err != nil {
		return StatusInfo{}, err
	}
	return statusOf(rec, cfg.partition), nil
}

// statusOf turns a record (nil: none) into a StatusInfo.
func statusOf(rec *Materialization, partition string) StatusInfo {
	if rec == nil {
		return StatusInfo{State: StateNotFound, Partition: partition}
	}
	st := StatusInfo{State: rec.State, Partition: rec.Partition, CompletedAt: rec.CompletedAt, DurationMS: rec.DurationMS,
		Error: rec.Error, Scatter: rec.Scatter, RunID: rec.RunID}
	if v := rec.Value; v != nil {
		st.Storage = v.Storage
		st.Value = &ValueInfo{RunID: v.RunID, CompletedAt: v.CompletedAt, Storage: v.Storage, Size: v.Size}
	}
	return st
}

// ErrNothingToCancel is the cause of the NotFound error Cancel returns
// when nothing of that asset/partition is running or pending.
var errNothingToCancel = "nothing is running or pending"

// Cancel stops the runs of asset for the partition: their running
// functions' contexts are cancelled and their pending steps never start;
// they fail with a Cancelled error. It returns a NotFound error if nothing
// was running or pending.
func (e *Engine) Cancel(ctx context.Context, p *Pipeline, asset string, opts ...GetOption) error {
	_, cfg, err := e.getArgs(p, asset, opts)
	if err != nil {
		return err
	}
	key := materializationKey(p.name, asset, cfg.partition)
	cause := newError(TypeCancelled, map[string]any{"asset": asset, "partition": cfg.partition},
		"run of %q (partition %q) was cancelled", asset, cfg.partition)
	e.mu.Lock()
	n := 0
	for _, ar := range e.runs {
		if ar.key == key {
			ar.cancel(cause)
			n++
		}
	}
	if f := e.flights[key]; f != nil {
		f.cancel(cause)
		n++
	}
	e.mu.Unlock()
	if n == 0 {
		return newError(TypeNotFound, map[string]any{"asset": asset, "partition": cfg.partition},
			"cannot cancel %q (partition %q): %s", asset, cfg.partition, errNothingToCancel)
	}
	return nil
}

// Invalidate deletes the result and metadata of asset for the partition (and,
// with Cascade, of every downstream asset of that partition) so the next Run
// recomputes them. It returns how many materializations it deleted.
func (e *Engine) Invalidate(ctx context.Context, p *Pipeline, asset string, opts ...InvalidateOption) (int, error) {
	cfg := invalidateConfig{partition: DefaultPartition}
	for _, o := range opts {
		o.applyInvalidate(&cfg)
	}
	n, err := p.lookup(asset)
	if err != nil {
		return 0, err
	}
	if err := validPartitionText(cfg.partition); err != nil {
		return 0, err
	}
	nodes := []*node{n}
	if cfg.cascade {
		nodes = append(nodes, p.downstream(n)...)
	}
	count := 0
	for _, n := range nodes {
		rec, err := e.x.records.invalidate(ctx, materializationKey(p.name, n.def.name, cfg.partition))
		if err != nil {
			return count, err
		}
		if rec == nil {
			continue
		}
		if v := rec.Value; v != nil && v.ObjectKey != "" {
			if s, _, err := e.x.store(v.Storage); err == nil {
				if err := s.Delete(ctx, v.ObjectKey); err != nil {
					return count, wrapError(TypeStorageError, err, map[string]any{"asset": n.def.name, "key": v.ObjectKey}, "delete result of %q: %v", n.def.name, err)
				}
			}
		}
		count++
	}
	return count, nil
}

// Validate checks a run before it is accepted: the asset exists, the
// partition suits every asset it touches, the options are valid, and a
// Storage option names a store the executors have (if the engine can
// tell: the embedded one can, and so can the fleet's coordinator). It is
// what Run checks first; the fleet's coordinator calls it before replying.
func (e *Engine) Validate(p *Pipeline, asset string, opts ...RunOption) error {
	cfg := newRunConfig(opts)
	if cfg.err != nil {
		return cfg.err
	}
	target, err := p.lookup(asset)
	if err != nil {
		return err
	}
	if err := e.checkPartitionFor(p, target, cfg.partition); err != nil {
		return err
	}
	return e.checkStorage(p, cfg.storage)
}
