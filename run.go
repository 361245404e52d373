package flowstone

import (
	"context"
	"errors"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
)

// activeRun is a Run in progress, registered so Cancel can reach it.
type activeRun struct {
	key    string // the target's materializationKey
	cancel context.CancelCauseFunc
}

// flight is one execution of an asset/partition shared by every run that
// needs it at the same time (single-flight). It runs on a context of its
// own, cancelled when the last waiting run gives up or on Cancel.
type flight struct {
	done    chan struct{}
	rec     *Materialization
	err     error
	waiters int
	cancel  context.CancelCauseFunc
}

// step is one asset of a run's plan.
type step struct {
	n       *node
	key     string           // materializationKey
	prev    *Materialization // the record when the run was planned (nil: none)
	prevRev uint64
	done    chan struct{}
	rec     *Materialization // completed record (cached or fresh)
	err     *Error
	// fresh is true when this run executed the asset (not a cache hit).
	fresh bool
}

// Run materializes asset of p for the partition (DefaultPartition unless
// Partition is given) and returns its result. Missing dependencies are
// materialized first, independent branches in parallel; materialized ones
// are reused (Result.Cached tells whether the target itself was). Concurrent
// runs of the same asset/partition execute it once and share the result.
func (e *Engine) Run(ctx context.Context, p *Pipeline, asset string, opts ...RunOption) (*Result, error) {
	cfg := newRunConfig(opts)
	if cfg.err != nil {
		return nil, cfg.err
	}
	target, err := p.lookup(asset)
	if err != nil {
		return nil, err
	}
	if err := e.checkPartitionFor(p, target, cfg.partition); err != nil {
		return nil, err
	}
	if err := e.checkStorage(p, cfg.storage); err != nil {
		return nil, err
	}
	if err := e.checkGates(target, cfg.withDeps); err != nil && !cfg.async {
		return nil, err
	}
	if cfg.async {
		return e.enqueue(ctx, p, asset, cfg)
	}
	if !cfg.scheduledAt.IsZero() {
		return nil, newError(TypeBadRequest, map[string]any{"option": "scheduled_at"}, "ScheduledAt needs Async(): a synchronous run starts now")
	}
	return e.run(ctx, p, target, cfg)
}

// noFleet is the ConfigError of an Async call on an engine without an
// AsyncRunner; verb is the client's method that does it ("Run").
func noFleet(p *Pipeline, asset, verb string) error {
	return newError(TypeConfigError, map[string]any{"missing": "fleet", "required_for": "async"},
		"Async execution requires a fleet. Connect one:\n\n  c, err := client.Connect(\"nats://127.0.0.1:4222\")\n  c.%s(ctx, %q, %q, flowstone.Async())\n\nor start one with `fsctl dev`. Or run synchronously (the default).", verb, p.name, asset)
}

func (e *Engine) enqueue(ctx context.Context, p *Pipeline, asset string, cfg runConfig) (*Result, error) {
	if e.async == nil {
		return nil, noFleet(p, asset, "Run")
	}
	job, err := e.async.Enqueue(ctx, RunRequest{RunID: cfg.runID, Pipeline: p.name, Asset: asset, Partition: cfg.partition, Force: cfg.force,
		WithDeps: cfg.withDeps, Async: true, Storage: cfg.storage, Timeout: cfg.timeout, Priority: cfg.priority, ScheduledAt: cfg.scheduledAt})
	if err != nil {
		return nil, err
	}
	return &Result{Asset: asset, Partition: cfg.partition, RunID: job.ID, Job: job}, nil
}

// checkPartitionFor is the one check of a partition every verb makes,
// embedded and on the fleet's coordinator alike: the key must be partition
// text; an unpartitioned asset (see node.partitioned) takes
// DefaultPartition only; a partitioned one takes the keys every partition
// scheme of its upstream closure accepts.
func (e *Engine) checkPartitionFor(p *Pipeline, target *node, partition string) error {
	if err := validPartitionText(partition); err != nil {
		return err
	}
	if !target.partitioned {
		if partition == DefaultPartition {
			return nil
		}
		return newError(TypeBadRequest, map[string]any{"pipeline": p.name, "asset": target.def.name, "partition": partition, "partitioned_by": ""},
			"asset %q is not partitioned: leave the partition out (its one partition is %q), or declare PartitionedBy on it (Daily, Hourly, Static, AnyKey)",
			target.def.name, DefaultPartition)
	}
	return checkSchemes(target, partition)
}

// checkSchemes validates the key against every partition scheme of the
// target's upstream closure.
func checkSchemes(target *node, partition string) error {
	if target.def.partitions != nil {
		if err := target.def.partitions.Validate(partition); err != nil {
			return err
		}
	}
	for _, in := range target.inputs {
		if err := checkSchemes(in, partition); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) run(ctx context.Context, p *Pipeline, target *node, cfg runConfig) (*Result, error) {
	targetKey := materializationKey(p.name, target.def.name, cfg.partition)
	limit := runLimit(target, cfg.withDeps, cfg.timeout)
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, limit, &timeoutCause{what: "run of", asset: target.def.name, limit: limit})
	defer cancelTimeout()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	runID := cfg.runID
	if runID == "" {
		runID = newRunID()
	}
	e.register(runID, activeRun{key: targetKey, cancel: cancel})
	defer e.unregister(runID)

	// One step per asset up to the target in topological order (the
	// target's upstream is among them); step.n is set when the plan
	// reaches it. Indexing by position avoids a map per run, at the cost
	// of a slot for every earlier asset, used or not (about 80 bytes each).
	steps := make([]step, target.index+1)
	var deps []depRef
	if !cfg.withDeps {
		var err error
		if deps, err = e.materializedInputs(ctx, p, target, cfg.partition); err != nil {
			return nil, err
		}
	}

	// Plan from the target down: a materialized asset is reused and its
	// own dependencies are not needed; anything else runs after its inputs.
	toRun := 0
	var plan func(n *node) error
	plan = func(n *node) error {
		s := &steps[n.index]
		if s.n != nil {
			return nil // already planned
		}
		s.n = n
		if n == target {
			s.key = targetKey
		} else {
			s.key = materializationKey(p.name, n.def.name, cfg.partition)
		}
		var (
			rec *Materialization
			rev uint64
		)
		if !(cfg.absent && n == target) {
			var err error
			if rec, rev, err = e.x.records.Read(ctx, s.key); err != nil {
				return err
			}
		}
		s.prev, s.prevRev = rec, rev
		if rec.Materialized() && !(cfg.force && n == target) {
			s.rec = rec
			return nil
		}
		s.done = make(chan struct{})
		toRun++
		if !cfg.withDeps {
			return nil
		}
		for _, in := range n.inputs {
			if err := plan(in); err != nil {
				return err
			}
		}
		return nil
	}
	if err := plan(target); err != nil {
		return nil, err
	}
	if toRun == 0 {
		return e.result(steps[target.index].rec, true), nil
	}
	if st := &steps[target.index]; st.done != nil && cfg.withDeps && len(target.inputs) > 0 {
		e.markPending(ctx, targetKey, p, target, cfg.partition, runID)
	}
	if toRun == 1 && steps[target.index].done != nil {
		// Only the target runs: no need for a goroutine.
		ts := &steps[target.index]
		ts.rec, ts.err = e.runStep(ctx, p, ts, steps, deps, runID, cfg, true)
		close(ts.done)
	}
	for i := range steps {
		s := &steps[i]
		if s.n == nil || s.done == nil || toRun == 1 {
			continue
		}
		e.pool.Go(func() {
			defer close(s.done)
			s.rec, s.err = e.runStep(ctx, p, s, steps, deps, runID, cfg, s.n == target)
		})
	}
	ts := &steps[target.index]
	<-ts.done
	if ts.err != nil {
		return nil, ts.err
	}
	return e.result(ts.rec, !ts.fresh), nil
}

// runStep waits for the step's inputs, then materializes it (or fails it
// because an input failed or the run ended).
func (e *Engine) runStep(ctx context.Context, p *Pipeline, s *step, steps []step, deps []depRef, runID string, cfg runConfig, isTarget bool) (*Materialization, *Error) {
	if deps == nil {
		deps = make([]depRef, 0, len(s.n.inputs))
		for i, in := range s.n.inputs {
			is := &steps[in.index]
			if is.done != nil {
				select {
				case <-is.done:
				case <-ctx.Done():
					return e.stepEnded(ctx, p, s.n, cfg.partition, runID)
				}
			}
			if is.err != nil {
				if !s.n.required[i] {
					deps = append(deps, depRef{Asset: in.def.name, Partition: cfg.partition, Missing: true})
					continue
				}
				return e.failStep(p, s.n, cfg.partition, runID, dependencyError(p, s.n, in, is.err))
			}
			deps = append(deps, refOf(is.rec))
		}
	}
	select {
	case <-ctx.Done():
		return e.stepEnded(ctx, p, s.n, cfg.partition, runID)
	default:
	}
	if s.n.def.gate != nil {
		// Runs waiting for this one's gate look again once its step ends.
		defer e.wakeGate(s.key)
		pass, fe := e.awaitGate(ctx, p, s, cfg.partition, runID, cfg.force && isTarget)
		if fe != nil {
			return nil, fe
		}
		if pass.value != nil {
			s.fresh = pass.value.Value.RunID == runID
			return pass.value, nil
		}
		s.prev, s.prevRev = pass.rec, pass.rev
	}
	t := task{RunID: runID, Asset: s.n.def.name, Partition: cfg.partition, Force: cfg.force && isTarget, Storage: cfg.storage, Attempt: 1, Priority: cfg.priority, Deps: deps,
		Key: s.key, Prev: s.prev, PrevRev: s.prevRev, PrevKnown: true}
	t.Deadline, _ = ctx.Deadline()
	rec, fresh, err := e.materialize(ctx, p, t)
	s.fresh = fresh
	if err != nil {
		return nil, AsError(err)
	}
	return rec, nil
}

// dependencyError is the error of an asset whose required input failed: it
// names the root cause, the asset where the failure started.
func dependencyError(p *Pipeline, n, input *node, inErr *Error) *Error {
	root, rootErr := input.def.name, inErr
	if inErr.Type == TypeDependencyFailed {
		if r, ok := inErr.Details["root_asset"].(string); ok {
			root = r
		}
		if re, ok := inErr.Details["root_error"].(*Error); ok {
			rootErr = re
		}
	}
	return &Error{Type: TypeDependencyFailed,
		Message: "asset \"" + n.def.name + "\" was not run: dependency \"" + root + "\" failed: " + rootErr.Error(),
		Details: map[string]any{"asset": n.def.name, "pipeline": p.name, "dependency": input.def.name, "root_asset": root, "root_error": rootErr},
		cause:   rootErr}
}

// stepEnded fails a step whose run ended before it started, unless the run
// was handed back (its process stops and another resumes it): the step is
// not over then, and its record must not say it is.
func (e *Engine) stepEnded(ctx context.Context, p *Pipeline, n *node, partition, runID string) (*Materialization, *Error) {
	fe := ctxError(ctx, p.name, n.def.name)
	if errors.Is(context.Cause(ctx), hook.ErrHandedBack) {
		return nil, fe
	}
	return e.failStep(p, n, partition, runID, fe)
}

// failStep records that a step did not run and why (see Records.fail: a
// record another run holds or completed is left alone). A record that
// cannot be written is logged: the run's error is what the caller needs.
func (e *Engine) failStep(p *Pipeline, n *node, partition, runID string, fe *Error) (*Materialization, *Error) {
	key := materializationKey(p.name, n.def.name, partition)
	if err := e.x.records.fail(context.Background(), key, ident{p.name, n.def.name, partition}, runID, fe); err != nil {
		e.x.logger.Warn().Err(err).Str("key", key).Str("run_id", runID).Msg("record_write_failed")
	}
	return nil, fe
}

// markPending records the target as pending while its dependencies run.
func (e *Engine) markPending(ctx context.Context, key string, p *Pipeline, n *node, partition, runID string) {
	if err := e.x.records.Pend(ctx, key, ident{p.name, n.def.name, partition}, runID); err != nil && ctx.Err() == nil {
		e.x.logger.Warn().Err(err).Str("key", key).Str("run_id", runID).Msg("record_write_failed")
	}
}

// materializedInputs returns the refs of the target's inputs for a
// WithDeps(false) run, failing if a required one is not materialized.
func (e *Engine) materializedInputs(ctx context.Context, p *Pipeline, target *node, partition string) ([]depRef, error) {
	deps := make([]depRef, 0, len(target.inputs))
	for i, in := range target.inputs {
		rec, _, err := e.record(ctx, p.name, in.def.name, partition)
		if err != nil {
			return nil, err
		}
		if !rec.Materialized() {
			if !target.required[i] {
				deps = append(deps, depRef{Asset: in.def.name, Partition: partition, Missing: true})
				continue
			}
			return nil, newError(TypeDependencyFailed,
				map[string]any{"asset": target.def.name, "missing": in.def.name, "partition": partition, "pipeline": p.name},
				"dependency %q of %q is not materialized for partition %q: run it first, or drop WithDeps(false) to materialize it now",
				in.def.name, target.def.name, partition)
		}
		deps = append(deps, refOf(rec))
	}
	return deps, nil
}

// record reads an asset/partition's record; nil if there is none.
func (e *Engine) record(ctx context.Context, pipeline, asset, partition string) (*Materialization, uint64, error) {
	return e.x.records.Read(ctx, materializationKey(pipeline, asset, partition))
}

// materialize executes t through the single-flight table: if the same
// asset/partition is already executing in this engine, it waits for that
// execution instead. fresh reports whether the record came from an execution
// (this run's or a concurrent one's) rather than an earlier cache.
func (e *Engine) materialize(ctx context.Context, p *Pipeline, t task) (rec *Materialization, fresh bool, err error) {
	key := t.Key
	e.mu.Lock()
	f := e.flights[key]
	if f == nil {
		// The flight outlives any one run: it ends when the last run waiting
		// for it leaves (on its timeout or cancel, passing on the cause).
		fctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		e.flights[key] = f
		e.pool.Go(func() { e.fly(fctx, p, t, key, f) })
	}
	f.waiters++
	e.mu.Unlock()

	select {
	case <-f.done:
		if f.err != nil {
			return nil, true, f.err
		}
		return f.rec, f.rec.Value.RunID == t.RunID, nil
	case <-ctx.Done():
		e.mu.Lock()
		f.waiters--
		last := f.waiters == 0
		if last {
			f.cancel(context.Cause(ctx))
		}
		e.mu.Unlock()
		if last {
			// Nobody else waits: see the cancelled execution out, so its
			// record says cancelled (or timed out) once Run has returned.
			<-f.done
		}
		return nil, true, ctxError(ctx, p.name, t.Asset)
	}
}

// fly executes a flight under the engine's concurrency bound.
func (e *Engine) fly(ctx context.Context, p *Pipeline, t task, key string, f *flight) {
	defer func() {
		e.mu.Lock()
		delete(e.flights, key)
		e.mu.Unlock()
		f.cancel(nil)
		close(f.done)
	}()
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		f.err = ctxError(ctx, p.name, t.Asset)
		return
	}
	defer func() { <-e.sem }()
	f.rec, f.err = e.dispatch.Dispatch(ctx, p, t)
	if f.err == nil && !f.rec.Materialized() {
		f.err = newError(TypeStorageError, map[string]any{"asset": t.Asset}, "dispatcher returned no value for %q", t.Asset)
	}
}

func (e *Engine) register(runID string, ar activeRun) {
	e.mu.Lock()
	e.runs[runID] = ar
	e.mu.Unlock()
}

func (e *Engine) unregister(runID string) {
	e.mu.Lock()
	delete(e.runs, runID)
	e.mu.Unlock()
}
