package flowstone

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	// Gate is the asset's gate in the latest attempt, while it waits
	// (State is StateWaitingApproval or StateWaitingSignal) and once it
	// was decided, until the asset has run; nil otherwise. A signal's
	// payload is left out.
	Gate *Gate `json:"gate,omitempty"`
	// ScheduledAt is when the earliest run of it scheduled on the fleet
	// (Async with ScheduledAt) starts; nil when none is. Unless an attempt
	// is pending or running, State is then StateScheduled and RunID the
	// scheduled run's; the embedded engine schedules nothing.
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
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
	return n, cfg, e.checkPartitionFor(p, n, cfg.partition)
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
	if g := rec.Gate.clone(); g != nil {
		g.Payload = nil
		st.Gate = g
	}
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
// functions' contexts are cancelled, their pending steps never start, and
// a step of the asset waiting at its gate stops waiting; they fail with a
// Cancelled error. It returns a NotFound error if nothing
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
	n += e.cancelGates(key, cause)
	if n == 0 {
		return newError(TypeNotFound, map[string]any{"asset": asset, "partition": cfg.partition},
			"cannot cancel %q (partition %q): %s", asset, cfg.partition, errNothingToCancel)
	}
	return nil
}

// Invalidate deletes the records and results of asset for a set of
// partitions so the next Run recomputes them: the partition of Partition
// (DefaultPartition when no partition option is given), the partitions of
// Partitions and DateRange, or, with AllPartitions, every partition that
// has a record. With Cascade it deletes, for each of those partitions, the
// records of every asset downstream of asset too.
//
// Every named partition is checked against the asset's partitioning
// before anything is deleted: one bad key, or no partition option for a
// partitioned asset, is a BadRequest error and deletes nothing.
//
// It returns how many records it deleted: one per asset and partition
// that had a record, whatever the record held (a value, or a failed or
// running attempt); a partition without a record counts nothing, so
// invalidating the same set twice returns 0 the second time. On a store
// error it returns the count so far with the error.
func (e *Engine) Invalidate(ctx context.Context, p *Pipeline, asset string, opts ...InvalidateOption) (int, error) {
	cfg := newInvalidateConfig(opts)
	target, err := p.lookup(asset)
	if err != nil {
		return 0, err
	}
	keys, err := cfg.keys()
	if err != nil {
		return 0, err
	}
	for _, key := range keys {
		if err := e.checkPartitionFor(p, target, key); err != nil {
			if !cfg.named() {
				return 0, unnamedPartitionError(p, target, err)
			}
			return 0, err
		}
	}
	nodes := []*node{target}
	if cfg.cascade {
		nodes = append(nodes, p.downstream(target)...)
	}
	var tokens []string
	if cfg.all {
		if tokens, err = e.recordTokens(ctx, p, nodes); err != nil {
			return 0, err
		}
	} else {
		tokens = make([]string, len(keys))
		for i, key := range keys {
			tokens[i] = PartitionToken(key)
		}
	}
	return e.invalidateTokens(ctx, p, nodes, tokens)
}

// unnamedPartitionError explains a partitioned asset's refusal of the
// default partition to an Invalidate that named no partition.
func unnamedPartitionError(p *Pipeline, target *node, err error) error {
	fe := AsError(err)
	d := map[string]any{"pipeline": p.name, "asset": target.def.name, "partition": DefaultPartition, "missing": "partitions"}
	if kind, ok := fe.Details["partitioned_by"]; ok {
		d["partitioned_by"] = kind
	}
	return wrapError(TypeBadRequest, err, d,
		"asset %q is partitioned, so invalidate needs its partitions: pass Partition, Partitions, DateRange or AllPartitions (%s)",
		target.def.name, fe.Message)
}

// recordTokens lists the partition tokens of every record of the nodes,
// each once, in order.
func (e *Engine) recordTokens(ctx context.Context, p *Pipeline, nodes []*node) ([]string, error) {
	seen := map[string]struct{}{}
	var out []string
	for _, n := range nodes {
		prefix := recordPrefix(p.name, n.def.name)
		keys, err := e.kv.Keys(ctx, prefix)
		if err != nil {
			return nil, wrapError(TypeStorageError, err, map[string]any{"asset": n.def.name, "prefix": prefix},
				"list the records of %q: %v", n.def.name, err)
		}
		for _, k := range keys {
			tok := strings.TrimPrefix(k, prefix)
			if tok == "" || strings.Contains(tok, ".") {
				continue // not a record of this asset
			}
			if _, dup := seen[tok]; !dup {
				seen[tok] = struct{}{}
				out = append(out, tok)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// invalidateParallel is how many partitions an Invalidate deletes at
// once: a set of many partitions on the fleet's store costs round trips,
// not work.
const invalidateParallel = 16

// invalidateTokens deletes the records (and objects) of the nodes for the
// partitions of the tokens, partitions in parallel, each partition's nodes
// in order, and returns how many records it deleted. The first error stops
// it from starting more partitions.
func (e *Engine) invalidateTokens(ctx context.Context, p *Pipeline, nodes []*node, tokens []string) (int, error) {
	if len(tokens) == 0 {
		return 0, nil
	}
	var (
		count    atomic.Int64
		mu       sync.Mutex
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	work := func() {
		defer wg.Done()
		for {
			i := int(next.Add(1)) - 1
			if i >= len(tokens) || failed() {
				return
			}
			for _, n := range nodes {
				deleted, err := e.invalidateRecord(ctx, p, n, recordPrefix(p.name, n.def.name)+tokens[i])
				if deleted {
					count.Add(1)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}
	}
	workers := min(invalidateParallel, len(tokens))
	wg.Add(workers)
	for range workers - 1 {
		go work()
	}
	work()
	wg.Wait()
	return int(count.Load()), firstErr
}

// invalidateRecord deletes the record under key and the object its value
// points to, and reports whether there was a record.
func (e *Engine) invalidateRecord(ctx context.Context, p *Pipeline, n *node, key string) (bool, error) {
	rec, err := e.x.records.invalidate(ctx, key)
	if err != nil || rec == nil {
		return false, err
	}
	if v := rec.Value; v != nil && v.ObjectKey != "" {
		if s, _, err := e.x.store(v.Storage); err == nil {
			if err := s.Delete(ctx, v.ObjectKey); err != nil {
				return true, wrapError(TypeStorageError, err, map[string]any{"asset": n.def.name, "key": v.ObjectKey}, "delete result of %q: %v", n.def.name, err)
			}
		}
	}
	return true, nil
}

// Validate checks a run before it is accepted: the asset exists, the
// partition suits every asset it touches, the options are valid, a
// Storage option names a store the executors have (if the engine can
// tell: the embedded one can, and so can the fleet's coordinator), and
// the engine has a signal secret if the run may reach a signal gate. It is
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
	if err := e.checkStorage(p, cfg.storage); err != nil {
		return err
	}
	return e.checkGates(target, cfg.withDeps)
}
