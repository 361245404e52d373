package flowstone

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"

	"time"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
	"github.com/flowstone-go/flowstone/internal/retry"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/rs/zerolog"
)

// task asks an executor to materialize one asset/partition for a run
// (see hook.Task).
type task = hook.Task[Materialization]

// depRef locates a dependency's stored value (see hook.DepRef).
type depRef = hook.DepRef

// refOf is the depRef of a materialized record's value.
func refOf(m *Materialization) depRef {
	v := m.Value
	return depRef{Asset: m.Asset, Partition: m.Partition, RunID: v.RunID, Storage: v.Storage,
		ObjectKey: v.ObjectKey, Encoding: v.Encoding, SHA256: v.SHA256, Size: v.Size, Inline: v.Inline}
}

// executorConfig configures an executor (see hook.ExecutorConfig).
type executorConfig = hook.ExecutorConfig

// executor materializes one asset at a time: it loads the dependencies,
// calls the function, stores the result and records the metadata, emitting
// telemetry events on the way. The embedded engine and the fleet's workers
// run this same code.
//
// An executor is safe for concurrent use.
type executor struct {
	kv             kv.Store
	stores         map[string]objectstore.Store
	defaultStorage string
	codec          Codec
	worker         string
	logger         zerolog.Logger
	events         *eventBus
	records        *records
	leases         leaseKeeper
}

// newExecutor checks cfg and returns an executor.
func newExecutor(cfg executorConfig) (*executor, error) {
	if cfg.KV == nil {
		return nil, newError(TypeConfigError, map[string]any{"missing": "KV"}, "executor needs a kv store: set ExecutorConfig.KV (kv.NewMemory() for one process)")
	}
	if len(cfg.Stores) == 0 {
		return nil, newError(TypeConfigError, map[string]any{"missing": "Stores"}, "executor needs an object store: set ExecutorConfig.Stores (objectstore.NewMemory() for one process)")
	}
	if cfg.DefaultStorage == "" {
		if len(cfg.Stores) == 1 {
			for name := range cfg.Stores {
				cfg.DefaultStorage = name
			}
		} else {
			cfg.DefaultStorage = "memory"
		}
	}
	if _, ok := cfg.Stores[cfg.DefaultStorage]; !ok {
		return nil, newError(TypeConfigError, map[string]any{"storage": cfg.DefaultStorage},
			"default storage %q is not among the configured stores %v", cfg.DefaultStorage, storeNames(cfg.Stores))
	}
	x := &executor{
		kv:             cfg.KV,
		stores:         cfg.Stores,
		defaultStorage: cfg.DefaultStorage,
		codec:          cfg.Codec,
		worker:         cfg.Worker,
		logger:         zerolog.Nop(),
		events:         &eventBus{},
		records:        newRecords(cfg.KV),
		leases:         leaseKeeper{lease: cmp.Or(cfg.Lease, leaseDefault)},
	}
	if x.codec == nil {
		x.codec = JSONCodec{}
	}
	if x.worker == "" {
		x.worker = "embedded"
	}
	if cfg.Logger != nil {
		x.logger = *cfg.Logger
	}
	return x, nil
}

// Subscribe registers fn for every telemetry event this executor emits and
// returns a function that unregisters it. fn runs on the executing goroutine:
// keep it fast and never block.
func (x *executor) Subscribe(fn func(Event)) (unsubscribe func()) { return x.events.subscribe(fn) }

func storeNames(m map[string]objectstore.Store) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// store returns the named object store, or the default for "".
func (x *executor) store(name string) (objectstore.Store, string, error) {
	if name == "" {
		name = x.defaultStorage
	}
	s, ok := x.stores[name]
	if !ok {
		return nil, name, newError(TypeConfigError, map[string]any{"storage": name, "available": storeNames(x.stores)},
			"storage %q is not configured; available: %v", name, storeNames(x.stores))
	}
	return s, name, nil
}

// Execute materializes t.Asset of p for t.Partition and returns the final
// record. It first claims the record (running, with a lease this executor
// renews while the asset runs); it is idempotent: a task whose
// asset/partition is already materialized (by this run, or by any run when
// not forced) or whose run's outcome is recorded returns that record
// without executing again, so redelivered tasks are harmless. While another
// execution's live claim holds the record, Execute waits for it to end or
// lapse.
//
// An execution that loses its claim (another execution took the record
// over) is cancelled and returns an error wrapping hook.ErrSuperseded; one whose
// context was cancelled with the cause hook.ErrHandedBack leaves the record
// pending for the next delivery. A failed, timed-out or cancelled execution
// leaves the record's last good value in place.
func (x *executor) Execute(ctx context.Context, p *Pipeline, t task) (*Materialization, error) {
	n, err := p.lookup(t.Asset)
	if err != nil {
		return nil, err
	}
	key := t.Key
	if key == "" {
		key = materializationKey(p.name, t.Asset, t.Partition)
	}
	id := ident{p.name, t.Asset, t.Partition}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a, done, err := x.claim(actx, key, id, &t, cancel)
	if err != nil || a == nil {
		return done, err
	}
	defer x.leases.remove(a)
	t.Attempt = a.number
	start := a.started

	val, execErr := x.call(actx, p, n, &t, a)
	var value *Value
	if execErr == nil {
		value, execErr = x.storeResult(actx, p, n, &t, val)
	}
	end := time.Now()
	out := id.record(StateCompleted, t.RunID)
	out.Worker, out.Attempt, out.StartedAt, out.CompletedAt = x.worker, a.number, &start, &end
	out.DurationMS = end.Sub(start).Milliseconds()
	out.Scatter = a.scatter
	var fe *Error
	if execErr != nil {
		fe = AsError(execErr)
		cause := context.Cause(actx)
		switch {
		case errors.Is(cause, hook.ErrSuperseded):
			return nil, superseded(t.Asset, t.RunID)
		case errors.Is(cause, hook.ErrHandedBack):
			// Not over: the next delivery of the task runs it again.
			out.State, out.QueuedBy = StatePending, x.worker
			out.CompletedAt, out.DurationMS = nil, 0
			out.Gate = a.gate() // a signal's payload, for the next delivery
			fe = wrapError(TypeCancelled, cause, map[string]any{"asset": t.Asset, "run_id": t.RunID},
				"asset %q of run %s was handed back to its queue: %v", t.Asset, t.RunID, cause)
		default:
			out.State, out.Error = stateOf(fe), fe
		}
	} else {
		value.CompletedAt, value.DurationMS = end, out.DurationMS
		value.Upstream = make([]Lineage, 0, len(t.Deps))
		for _, d := range t.Deps {
			if !d.Missing {
				value.Upstream = append(value.Upstream, Lineage{Asset: d.Asset, Partition: d.Partition, RunID: d.RunID})
			}
		}
		out.Value = value
	}
	// The outcome is written even when the task's context has ended (that
	// is often why it ended), and waits out store faults for as long as the
	// claim lasts: past it, another delivery may take the record over.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), x.leases.lease)
	defer fcancel()
	final, wrote, err := a.finish(fctx, out)
	if wrote && a.afterOutcome != nil {
		a.afterOutcome(fctx)
	}
	if !wrote {
		if err != nil {
			// The outcome could not be recorded while the claim lasted (the
			// store was unreachable, a cluster electing a leader): the task
			// is not over. It is handed back, so that its next delivery
			// finds the outcome or takes the lapsed claim over and runs it
			// again, instead of ending the run on a fault that is waited
			// out elsewhere. The result is kept: a write whose reply was
			// lost lands unseen, and the record may point to it.
			x.logger.Warn().Err(err).Str("key", key).Str("run_id", t.RunID).Msg("record_write_failed")
			return nil, wrapError(TypeStorageError, errors.Join(err, hook.ErrHandedBack), map[string]any{"key": key, "run_id": t.RunID},
				"the outcome of asset %q of run %s could not be recorded before its claim lapsed: %v", t.Asset, t.RunID, err)
		}
		// Another execution holds the record: the result is nobody's.
		x.dropObject(ctx, value, valueOf(final))
		return nil, superseded(t.Asset, t.RunID)
	}
	if fe != nil {
		return out, fe
	}
	// The record no longer points to the value it replaced: drop it.
	x.dropObject(ctx, a.prev, value)
	return out, nil
}

// superseded is the error of an execution whose record another
// execution of the same task holds.
func superseded(asset, runID string) *Error {
	return wrapError(TypeCancelled, hook.ErrSuperseded, map[string]any{"asset": asset, "run_id": runID},
		"asset %q of run %s: another execution of the task holds its record; that one reports the outcome", asset, runID)
}

// dropObject deletes v's object unless keep points to the same one:
// a result no record points to, or one a new value replaced.
func (x *executor) dropObject(ctx context.Context, v, keep *Value) {
	if v == nil || v.ObjectKey == "" || keep != nil && keep.ObjectKey == v.ObjectKey && keep.Storage == v.Storage {
		return
	}
	if s, _, err := x.store(v.Storage); err == nil {
		if err := s.Delete(context.WithoutCancel(ctx), v.ObjectKey); err != nil {
			x.logger.Warn().Err(err).Str("storage", v.Storage).Str("object_key", v.ObjectKey).Msg("object_delete_failed")
		}
	}
}

// busyPoll bounds how long an execution waits between two looks at a
// record another execution's live claim holds.
const busyPoll = time.Second

// claim claims t's record for an execution under the context whose cancel
// is given, and registers the claim's lease. It returns the claim, or the
// record that makes the execution unnecessary (with its outcome's error),
// or the error of a stale task. It waits while another execution's live
// claim holds the record.
func (x *executor) claim(ctx context.Context, key string, id ident, t *task, cancel context.CancelCauseFunc) (*attempt, *Materialization, error) {
	var v view
	switch {
	case t.PrevKnown:
		// Read by the engine moments ago in this process; the write's
		// compare-and-set catches any change since.
		v = view{t.Prev, t.PrevRev, true}
	case t.ExpectedRevision > 0 && t.Attempt <= 1:
		// The record the coordinator queued the task with: pending for
		// this run, no value.
		v = view{id.record(StatePending, t.RunID), t.ExpectedRevision, true}

	}
	req := claimRequest{id: id, task: t, worker: x.worker, lease: x.leases.lease}
	var (
		seenRev uint64
		seenAt  time.Time
	)
	for {
		out, cur, rev, err := x.records.claim(ctx, key, v, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctxError(ctx, id.pipeline, id.asset)
			}
			return nil, nil, err
		}
		switch out {
		case claimed:
			a := x.records.newAttempt(key, cur, rev, x.leases.lease, cancel)
			if !x.leases.add(a) {
				return nil, nil, newError(TypeCancelled, map[string]any{"asset": id.asset}, "the executor is closed")
			}
			return a, nil, nil
		case finished:
			return nil, cur, outcomeError(cur, t)
		case stale:
			return nil, nil, newError(TypeCancelled, map[string]any{"asset": id.asset, "run_id": t.RunID, hook.StaleHolderDetail: cur.RunID},
				"task of run %s for asset %q is stale: run %s has taken its record since it was queued", t.RunID, id.asset, cur.RunID)
		}
		// busy: wait for the holder to end, or for its lease to lapse.
		// A lease that never moves for a whole lease by this clock is a
		// dead holder's, whatever its own clock wrote.
		now := time.Now()
		if rev != seenRev {
			seenRev, seenAt = rev, now
		} else if now.Sub(seenAt) > x.leases.lease+leaseSkew {
			req.stall = rev
		}
		wait := min(busyPoll, max(cur.LeaseUntil.Add(leaseSkew).Sub(now), 10*time.Millisecond))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, nil, ctxError(ctx, id.pipeline, id.asset)
		case <-timer.C:
		}
		v = view{}
	}
}

// outcomeError is the error of a record that ended a task without an
// execution: nil for a value the task can use, else the error its run's
// end recorded.
func outcomeError(m *Materialization, t *task) error {
	if m.Materialized() && (m.Value.RunID == t.RunID || !t.Force) {
		return nil
	}
	if m.Error != nil {
		return m.Error
	}
	return newError(TypeExecutionFailed, map[string]any{"asset": m.Asset, "run_id": m.RunID}, "asset %q ended %s", m.Asset, m.State)
}

// Refuse records that t will not run because of fe (its run was
// cancelled, or reached its deadline, before the task started): a record
// this run queued says so, with the last good value kept. A record another
// run holds or completed is left alone.
func (x *executor) Refuse(ctx context.Context, p *Pipeline, t task, fe *Error) error {
	return x.records.fail(ctx, materializationKey(p.name, t.Asset, t.Partition), ident{p.name, t.Asset, t.Partition}, t.RunID, fe)
}

// Close stops renewing leases and waits for the renewals in flight. The
// executions still running lose their claims when their leases lapse,
// as a dead process's would; close an executor once it executes nothing.
func (x *executor) Close() { x.leases.stop() }

// stateOf maps an error to the record state it leaves.
func stateOf(e *Error) State {
	if e.Type == TypeCancelled {
		return StateCancelled
	}
	return StateFailed
}

// call runs the asset function (or its scatter) with retries, timeout and
// panic recovery.
func (x *executor) call(ctx context.Context, p *Pipeline, n *node, t *task, a *attempt) (any, error) {
	attempts := max(n.def.retry.Attempts, 1)
	backoff := n.def.retry.Backoff
	for i := 1; ; i++ {
		val, err := x.callOnce(ctx, p, n, t, a, i)
		if err == nil || i >= attempts {
			return val, err
		}
		if fe := AsError(err); fe.Type == TypeTimeout || fe.Type == TypeCancelled {
			return nil, err
		}
		if backoff > 0 {
			timer := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil, ctxError(ctx, p.name, n.def.name)
			case <-timer.C:
			}
			backoff *= 2
		}
	}
}

func (x *executor) callOnce(ctx context.Context, p *Pipeline, n *node, t *task, a *attempt, try int) (val any, err error) {
	if n.def.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, n.def.timeout, &timeoutCause{what: "asset", asset: n.def.name, limit: n.def.timeout})
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxError(ctx, p.name, n.def.name)
	}
	c := &Context{ctx: ctx, x: x, p: p, n: n, task: t, try: try}
	defer c.closeReaders()
	fn := x.assetFunc(n, a)
	if fn == nil {
		return nil, newError(TypeConfigError, map[string]any{"pipeline": p.name, "asset": n.def.name},
			"asset %q of pipeline %s has no function in this process: run it on a worker that hosts the pipeline", n.def.name, p.name)
	}
	ev := x.events.active()
	start := time.Now()
	if ev {
		x.events.emit(Event{Kind: EventRunStart, Pipeline: p.name, Asset: n.def.name, Partition: t.Partition, RunID: t.RunID, Time: start})
	}
	if n.def.scatter != nil {
		// A scatter asset is one run too: its item events nest inside it.
		val, err = x.scatter(c, a)
	} else {
		val, err = x.invoke(c, fn)
	}
	if err != nil && ctx.Err() != nil {
		// The function gave up because its context ended: report why.
		err = ctxError(ctx, p.name, n.def.name)
	}
	if ev {
		kind := EventRunStop
		var fe *Error
		if err != nil {
			kind, fe = EventRunException, AsError(err)
		}
		x.events.emit(Event{Kind: kind, Pipeline: p.name, Asset: n.def.name, Partition: t.Partition, RunID: t.RunID, Duration: time.Since(start), Err: fe})
	}
	return val, err
}

// invoke calls fn, turning a panic into an ExecutionFailed error with the
// stack in its details.
func (x *executor) invoke(c *Context, fn AssetFunc) (val any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = newError(TypeExecutionFailed,
				map[string]any{"asset": c.n.def.name, "panic": fmt.Sprint(r), "stack": string(debug.Stack())},
				"asset %q panicked: %v", c.n.def.name, r)
		}
	}()
	val, err = fn(c)
	if err != nil {
		var fe *Error
		if !errors.As(err, &fe) {
			err = &Error{Type: TypeExecutionFailed, Message: fmt.Sprintf("asset %q failed: %v", c.n.def.name, err),
				Details: map[string]any{"asset": c.n.def.name, "error": err.Error()}, cause: err}
		}
	}
	return val, err
}

// ctxError explains why ctx ended as an *Error: its cause when that is one
// (Cancel, an asset timeout), otherwise Timeout or Cancelled.
func ctxError(ctx context.Context, pipeline, asset string) *Error {
	cause := context.Cause(ctx)
	var fe *Error
	if errors.As(cause, &fe) {
		return fe
	}
	if tc, ok := cause.(*timeoutCause); ok {
		return tc.error()
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return wrapError(TypeTimeout, ctx.Err(), map[string]any{"asset": asset}, "asset %q of %s timed out", asset, pipeline)
	}
	return wrapError(TypeCancelled, ctx.Err(), map[string]any{"asset": asset}, "asset %q of %s was cancelled", asset, pipeline)
}

// storeResult encodes val and writes it to the object store (or keeps a
// small one inline) and returns where it is: a Value with its RunID and
// location set (the caller sets the rest).
func (x *executor) storeResult(ctx context.Context, p *Pipeline, n *node, t *task, val any) (*Value, error) {
	storage := t.Storage
	if storage == "" {
		storage = n.def.storage
	}
	s, name, err := x.store(storage)
	if err != nil {
		return nil, err
	}
	var (
		r     io.Reader
		size  int64  = -1
		enc          = EncodingRaw
		whole []byte // the bytes, when in memory
	)
	switch v := val.(type) {
	case []byte:
		r, size, whole = bytes.NewReader(v), int64(len(v)), v
	case io.Reader:
		r = v
		if c, ok := v.(io.Closer); ok {
			defer c.Close()
		}
	case json.RawMessage:
		r, size, enc, whole = bytes.NewReader(v), int64(len(v)), EncodingJSON, v
	default:
		b, err := x.codec.Encode(v)
		if err != nil {
			return nil, newError(TypeExecutionFailed, map[string]any{"asset": n.def.name, "type": fmt.Sprintf("%T", v), "error": err.Error()},
				"the value of asset %q (a %T) cannot be encoded: %v; return encodable data, []byte or an io.Reader", n.def.name, v, err)
		}
		r, size, enc, whole = bytes.NewReader(b), int64(len(b)), EncodingJSON, b
	}
	if storage == "" && len(whole) > 0 && len(whole) <= InlineLimit {
		// Small and no store asked for: keep it in the record.
		return x.storeInline(p, n, t, bytes.Clone(whole), enc), nil
	}
	object := t.Object
	if object == "" {
		object = t.RunID + "-" + strconv.Itoa(max(t.Attempt, 1))
	}
	objKey := objectKey(p.name, n.def.name, t.Partition, object)
	ev := x.events.active()
	start := time.Now()
	if ev {
		x.events.emit(Event{Kind: EventStoreStart, Pipeline: p.name, Asset: n.def.name, Partition: t.Partition, RunID: t.RunID,
			Time: start, Metadata: map[string]any{"storage": name, "key": objKey}})
	}
	var info objectstore.Info
	if whole != nil {
		// In memory, so a Put that failed on a transient fault (the store
		// restarting) can be made again; a failed Put leaves nothing.
		err = x.retrying("store_put", name, objKey).Do(ctx, func(ctx context.Context) error {
			var err error
			info, err = s.Put(ctx, objKey, bytes.NewReader(whole), size)
			return err
		})
	} else {
		info, err = s.Put(ctx, objKey, r, size)
	}
	if ev {
		md := map[string]any{"storage": name, "key": objKey, "bytes": info.Size}
		var fe *Error
		if err != nil {
			fe = wrapError(TypeStorageError, err, nil, "%v", err)
		}
		x.events.emit(Event{Kind: EventStoreStop, Pipeline: p.name, Asset: n.def.name, Partition: t.Partition, RunID: t.RunID,
			Duration: time.Since(start), Metadata: md, Err: fe})
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx, p.name, n.def.name)
		}
		return nil, wrapError(TypeStorageError, err, map[string]any{"storage": name, "key": objKey},
			"store result of %q in %s: %v", n.def.name, name, err)
	}
	return &Value{RunID: t.RunID, Storage: name, ObjectKey: objKey, Encoding: enc, Size: info.Size, SHA256: info.SHA256}, nil
}

// retrying is the retry policy of a result-store call: transient faults
// are retried, and logged at the first retry and every tenth after it, so
// that an operator sees a store that keeps failing.
func (x *executor) retrying(op, storage, key string) retry.Policy {
	return retry.Policy{OnRetry: func(a retry.Attempt) {
		if a.N == 1 || a.N%10 == 0 {
			x.logger.Warn().Err(a.Err).Str("op", op).Str("storage", storage).Str("key", key).Int("attempt", a.N).
				Dur("retry_in", a.Delay).Msg("store_call_retried")
		}
	}}
}

// open opens a dependency's stored value as a stream.
func (x *executor) open(ctx context.Context, t *task, ref *depRef) (io.ReadCloser, error) {
	if len(ref.Inline) > 0 {
		return io.NopCloser(bytes.NewReader(ref.Inline)), nil
	}
	s, name, err := x.store(ref.Storage)
	if err != nil {
		return nil, err
	}
	var rc io.ReadCloser
	err = x.retrying("store_get", name, ref.ObjectKey).Do(ctx, func(ctx context.Context) error {
		var err error
		rc, _, err = s.Get(ctx, ref.ObjectKey)
		return err
	})
	if err != nil {
		return nil, wrapError(TypeStorageError, err, map[string]any{"storage": name, "key": ref.ObjectKey, "dependency": ref.Asset},
			"read dependency %q from %s: %v", ref.Asset, name, err)
	}
	return rc, nil
}

// load reads a dependency's whole stored value.
func (x *executor) load(ctx context.Context, t *task, ref *depRef) ([]byte, error) {
	ev := x.events.active()
	start := time.Now()
	if ev {
		x.events.emit(Event{Kind: EventStorageLoadStart, Asset: ref.Asset, Partition: ref.Partition, RunID: t.RunID, Time: start,
			Metadata: map[string]any{"storage": ref.Storage, "key": ref.ObjectKey}})
	}
	// The whole value is read again if its stream breaks on a transient
	// fault (open retries the opening itself).
	var b []byte
	err := x.retrying("store_read", ref.Storage, ref.ObjectKey).Do(ctx, func(ctx context.Context) error {
		rc, err := x.open(ctx, t, ref)
		if err != nil {
			return err
		}
		defer rc.Close()
		if b, err = io.ReadAll(rc); err != nil {
			return wrapError(TypeStorageError, err, map[string]any{"key": ref.ObjectKey, "dependency": ref.Asset},
				"read dependency %q: %v", ref.Asset, err)
		}
		return nil
	})
	if ev {
		x.events.emit(Event{Kind: EventStorageLoadStop, Asset: ref.Asset, Partition: ref.Partition, RunID: t.RunID, Duration: time.Since(start),
			Metadata: map[string]any{"storage": ref.Storage, "key": ref.ObjectKey, "bytes": len(b)}})
	}
	return b, err
}

// decode decodes a dependency's bytes into target.
func (x *executor) decode(b []byte, ref *depRef, target any) error {
	if err := x.codec.Decode(b, target); err != nil {
		return wrapError(TypeStorageError, err, map[string]any{"dependency": ref.Asset, "type": fmt.Sprintf("%T", target)},
			"dependency %q cannot be decoded into %T: %v", ref.Asset, target, err)
	}
	return nil
}

// timeoutCause is the cause of a context that timed out: the *Error is
// built only if the timeout happens.
type timeoutCause struct {
	what, asset string
	limit       time.Duration
}

func (c *timeoutCause) Error() string { return c.error().Error() }

func (c *timeoutCause) error() *Error {
	return newError(TypeTimeout, map[string]any{"asset": c.asset, "timeout_ms": c.limit.Milliseconds()},
		"%s %q exceeded its timeout of %v", c.what, c.asset, c.limit)
}

// storeInline keeps a small result inside its record.
func (x *executor) storeInline(p *Pipeline, n *node, t *task, b []byte, enc string) *Value {
	start := time.Now()
	sum := sha256.Sum256(b)
	v := &Value{RunID: t.RunID, Storage: InlineStorage, Encoding: enc, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Inline: b}
	if x.events.active() {
		md := map[string]any{"storage": InlineStorage, "bytes": int64(len(b))}
		x.events.emit(Event{Kind: EventStoreStart, Pipeline: p.name, Asset: n.def.name, Partition: t.Partition, RunID: t.RunID, Time: start, Metadata: md})
		x.events.emit(Event{Kind: EventStoreStop, Pipeline: p.name, Asset: n.def.name, Partition: t.Partition, RunID: t.RunID,
			Duration: max(time.Since(start), time.Nanosecond), Metadata: md})
	}
	return v
}
