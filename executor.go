package flowstone

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/rs/zerolog"
)

// Task asks an Executor to materialize one asset/partition for a run. The
// engine builds tasks; on the fleet they travel to workers on JetStream.
type Task struct {
	RunID     string
	Asset     string
	Partition string
	// Force re-runs even if the asset/partition is already materialized.
	Force bool
	// Storage names the object store for the result ("" = the asset's or the
	// executor's default).
	Storage string
	// Attempt counts deliveries of this task, 1 for the first.
	Attempt int
	// Priority is the run's priority, 0..3 (3 first); the fleet publishes
	// the task at this priority.
	Priority int
	// Deadline is when the run times out (zero: none).
	Deadline time.Time
	// ExpectedRevision is the revision of the record when the task was
	// queued (the fleet's pending claim), or 0. An unforced task replaces
	// that revision without reading the record first; if the record
	// changed since, it is read and checked as usual.
	ExpectedRevision uint64

	// Set by the engine for its own executor: the key, and the record (and
	// revision) it read while planning, so execution need not read it again.
	key     string
	planned bool
	prev    *Materialization
	prevRev uint64
	// Deps says where each dependency's value is stored.
	Deps []DepRef
}

// Planned returns the record the engine read for t's asset/partition while
// planning the run (nil if there was none) and its revision; ok is false
// for a task the engine did not plan. A Dispatcher can compare-and-set
// against it instead of reading the record again.
func (t *Task) Planned() (rec *Materialization, rev uint64, ok bool) {
	return t.prev, t.prevRev, t.planned
}

// DepRef locates a dependency's stored value.
type DepRef struct {
	Asset     string `json:"asset"`
	Partition string `json:"partition"`
	RunID     string `json:"run_id,omitempty"`
	Storage   string `json:"storage,omitempty"`
	ObjectKey string `json:"object_key,omitempty"`
	Encoding  string `json:"encoding,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	Size      int64  `json:"size,omitempty"`
	// Inline holds a small result's bytes (Storage is InlineStorage).
	Inline []byte `json:"inline,omitempty"`
	// Missing marks an optional dependency that has no value.
	Missing bool `json:"missing,omitempty"`
}

// refOf is the DepRef of a completed record.
func refOf(m *Materialization) DepRef {
	return DepRef{Asset: m.Asset, Partition: m.Partition, RunID: m.RunID, Storage: m.Storage,
		ObjectKey: m.ObjectKey, Encoding: m.Encoding, SHA256: m.SHA256, Size: m.Size, Inline: m.Inline}
}

// ExecutorConfig configures an Executor.
type ExecutorConfig struct {
	// KV holds the materialization records. Required.
	KV kv.Store
	// Stores are the object stores by name. Required: at least one.
	Stores map[string]objectstore.Store
	// DefaultStorage names the store used when neither the asset nor the
	// run names one. Defaults to the only store, or "memory".
	DefaultStorage string
	// Codec encodes values. Defaults to JSONCodec.
	Codec Codec
	// Worker names this process in records. Defaults to "embedded".
	Worker string
	// Logger receives asset logs (Context.Logger). Defaults to no logging.
	Logger *zerolog.Logger
}

// Executor materializes one asset at a time: it loads the dependencies,
// calls the function, stores the result and records the metadata, emitting
// telemetry events on the way. The embedded engine and the fleet's workers
// run this same code.
//
// An Executor is safe for concurrent use.
type Executor struct {
	kv             kv.Store
	stores         map[string]objectstore.Store
	defaultStorage string
	codec          Codec
	worker         string
	logger         zerolog.Logger
	events         *eventBus
	records        recordCache
	marks          runningMarks
}

// NewExecutor checks cfg and returns an Executor.
func NewExecutor(cfg ExecutorConfig) (*Executor, error) {
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
	x := &Executor{
		kv:             cfg.KV,
		stores:         cfg.Stores,
		defaultStorage: cfg.DefaultStorage,
		codec:          cfg.Codec,
		worker:         cfg.Worker,
		logger:         zerolog.Nop(),
		events:         &eventBus{},
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
func (x *Executor) Subscribe(fn func(Event)) (unsubscribe func()) { return x.events.subscribe(fn) }

func storeNames(m map[string]objectstore.Store) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// store returns the named object store, or the default for "".
func (x *Executor) store(name string) (objectstore.Store, string, error) {
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
// record. It is idempotent: a task whose asset/partition is already
// completed (by this run, or by any run when not forced) returns that record
// without executing again, so redelivered tasks are harmless.
func (x *Executor) Execute(ctx context.Context, p *Pipeline, t Task) (*Materialization, error) {
	n, err := p.lookup(t.Asset)
	if err != nil {
		return nil, err
	}
	key := t.key
	if key == "" {
		key = MaterializationKey(p.name, t.Asset, t.Partition)
	}
	start := time.Now()
	rec := &Materialization{
		Pipeline: p.name, Asset: t.Asset, Partition: t.Partition, State: StateRunning,
		RunID: t.RunID, Worker: x.worker, Attempt: max(t.Attempt, 1), StartedAt: &start,
	}
	// When the current revision is known and nothing can have been done
	// yet (the first delivery of a task its coordinator claimed, whose
	// pending record already shows it queued), the running record is written only
	// if the asset is still running after RunningRecordDelay: most assets
	// end sooner, and their one record write is the completed one.
	// Otherwise try to create the running record first, which is one round
	// trip on the fleet. Only when a record exists is it read, to skip work
	// already done (a redelivered task, a concurrent run) and to replace it
	// by revision.
	var (
		prev *Materialization
		rev  uint64
		mark *runningMark
	)
	switch {
	case t.planned && t.prev != nil:
		err = kv.ErrConflict // claim uses the record the engine read
	case t.ExpectedRevision > 0 && !t.Force && t.Attempt <= 1:
		mark = x.markRunningLater(ctx, key, rec, t.ExpectedRevision)
	case t.ExpectedRevision > 0 && !t.Force:
		rev, err = x.replaceRecord(ctx, key, rec, t.ExpectedRevision)
	default:
		prev, rev, err = x.createRecord(ctx, key, rec)
	}
	if errors.Is(err, kv.ErrConflict) {
		var done bool
		if prev, rev, done, err = x.claim(ctx, key, &t); err != nil || done {
			return prev, err
		}
		rev, err = x.write(ctx, key, rec, rev)
	}
	if err != nil {
		return nil, err
	}

	val, execErr := x.call(ctx, p, n, &t, key, rec)
	if execErr == nil {
		execErr = x.storeResult(ctx, p, n, &t, rec, val)
	}
	if mark != nil {
		rev = mark.stop()
	}
	end := time.Now()
	rec.CompletedAt = &end
	rec.DurationMS = end.Sub(start).Milliseconds()
	if execErr != nil {
		fe := AsError(execErr)
		rec.State = stateOf(fe)
		rec.Error = fe
		if errors.Is(context.Cause(ctx), ErrHandedBack) {
			// Not over: another process runs the task again.
			rec.State, rec.Error = StatePending, nil
		}
		x.write(context.WithoutCancel(ctx), key, rec, rev)
		return rec, fe
	}
	rec.State = StateCompleted
	rec.Upstream = make([]Lineage, 0, len(t.Deps))
	for _, d := range t.Deps {
		if !d.Missing {
			rec.Upstream = append(rec.Upstream, Lineage{Asset: d.Asset, Partition: d.Partition, RunID: d.RunID})
		}
	}
	if _, err := x.write(context.WithoutCancel(ctx), key, rec, rev); err != nil {
		return rec, err
	}
	if prev != nil && prev.ObjectKey != "" && prev.ObjectKey != rec.ObjectKey {
		// The record no longer points to the old result: drop it.
		if s, _, err := x.store(prev.Storage); err == nil {
			s.Delete(context.WithoutCancel(ctx), prev.ObjectKey)
		}
	}
	return rec, nil
}

// claim reads the current record. done is true when there is nothing to do:
// the asset/partition is completed by this run (a redelivered task) or by
// any run when the task is not forced. Otherwise it returns the previous
// record (nil if none) and its revision for the compare-and-set.
func (x *Executor) claim(ctx context.Context, key string, t *Task) (prev *Materialization, rev uint64, done bool, err error) {
	if t.planned && t.prev != nil {
		// Read by the engine moments ago in this process; the write's
		// compare-and-set catches any change since.
		prev, rev = t.prev, t.prevRev
	} else if prev, rev, err = x.readRecord(ctx, key); err != nil || prev == nil {
		return nil, 0, false, err
	}
	done = prev.State == StateCompleted && (prev.RunID == t.RunID || !t.Force)
	return prev, rev, done, nil
}

// replaceRecord writes rec over revision rev of key; kv.ErrConflict if the
// record changed since.
func (x *Executor) replaceRecord(ctx context.Context, key string, rec *Materialization, rev uint64) (uint64, error) {
	b, err := MarshalRecord(rec)
	if err != nil {
		return 0, wrapError(TypeStorageError, err, nil, "encode record: %v", err)
	}
	nrev, err := x.kv.Update(ctx, key, b, rev)
	if err != nil && !errors.Is(err, kv.ErrConflict) {
		if ctx.Err() != nil {
			return 0, ctxError(ctx, rec.Pipeline, rec.Asset)
		}
		return 0, wrapError(TypeStorageError, err, map[string]any{"key": key}, "write record %s: %v", key, err)
	}
	return nrev, err
}

// createRecord writes rec if key has no record; kv.ErrConflict if it has.
func (x *Executor) createRecord(ctx context.Context, key string, rec *Materialization) (*Materialization, uint64, error) {
	b, err := MarshalRecord(rec)
	if err != nil {
		return nil, 0, wrapError(TypeStorageError, err, nil, "encode record: %v", err)
	}
	rev, err := x.kv.Create(ctx, key, b)
	if err != nil && !errors.Is(err, kv.ErrConflict) {
		if ctx.Err() != nil {
			return nil, 0, ctxError(ctx, rec.Pipeline, rec.Asset)
		}
		return nil, 0, wrapError(TypeStorageError, err, map[string]any{"key": key}, "write record %s: %v", key, err)
	}
	return nil, rev, err
}

// write stores rec with compare-and-set on rev (0: create) and returns the
// new revision. A conflict means another writer got there first (a second
// delivery of the task, an Invalidate): the record is then written
// unconditionally, because this execution's outcome is the newest fact.
func (x *Executor) write(ctx context.Context, key string, rec *Materialization, rev uint64) (uint64, error) {
	b, err := MarshalRecord(rec)
	if err != nil {
		return 0, wrapError(TypeStorageError, err, nil, "encode record: %v", err)
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = x.kv.Create(ctx, key, b)
	} else {
		nrev, err = x.kv.Update(ctx, key, b, rev)
	}
	if errors.Is(err, kv.ErrConflict) {
		nrev, err = x.kv.Put(ctx, key, b)
	}
	if err != nil {
		return 0, wrapError(TypeStorageError, err, map[string]any{"key": key}, "write record %s: %v", key, err)
	}
	if rec.State.Terminal() {
		// Finished records are read back most (every cache hit of a run):
		// keep a key already cached fresh. Keys read before are the ones
		// read again; caching every key written would fill the cache with
		// records nobody here reads (a fleet worker's, a backfill's).
		x.records.refresh(key, nrev, rec)
	}
	return nrev, nil
}

// RunningRecordDelay is how long an asset runs before its running record
// is written, when the executor can defer it (see Execute): the record of
// an asset that ends sooner goes straight from pending to its outcome.
var RunningRecordDelay = 200 * time.Millisecond

// runningMark writes an execution's running record once RunningRecordDelay
// has passed, unless stopped first.
type runningMark struct {
	x       *Executor
	ctx     context.Context
	key     string
	running Materialization
	due     time.Time

	mu   sync.Mutex
	rev  uint64
	done bool
}

// runningMarks are the executions whose running record waits for
// RunningRecordDelay. One goroutine, running while any wait, writes the
// due ones: a timer per execution cost more than most executions.
type runningMarks struct {
	mu       sync.Mutex
	waiting  map[*runningMark]struct{}
	sweeping bool
}

// markRunningLater schedules the running record rec (a copy is taken) over
// revision rev of key (0: create).
func (x *Executor) markRunningLater(ctx context.Context, key string, rec *Materialization, rev uint64) *runningMark {
	m := &runningMark{x: x, ctx: ctx, key: key, running: *rec, rev: rev, due: time.Now().Add(RunningRecordDelay)}
	q := &x.marks
	q.mu.Lock()
	if q.waiting == nil {
		q.waiting = make(map[*runningMark]struct{})
	}
	q.waiting[m] = struct{}{}
	if !q.sweeping {
		q.sweeping = true
		go q.sweep(max(RunningRecordDelay/4, time.Millisecond))
	}
	q.mu.Unlock()
	return m
}

// sweep writes the running records that are due, every tick, until none
// waits.
func (q *runningMarks) sweep(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for now := range t.C {
		q.mu.Lock()
		for m := range q.waiting {
			if !now.Before(m.due) {
				delete(q.waiting, m)
				go m.write()
			}
		}
		idle := len(q.waiting) == 0
		if idle {
			q.sweeping = false
		}
		q.mu.Unlock()
		if idle {
			return
		}
	}
}

// write writes the running record unless the execution ended first.
func (m *runningMark) write() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return
	}
	var (
		nrev uint64
		err  error
	)
	if m.rev == 0 {
		_, nrev, err = m.x.createRecord(m.ctx, m.key, &m.running)
	} else {
		nrev, err = m.x.replaceRecord(m.ctx, m.key, &m.running, m.rev)
	}
	if err == nil {
		m.rev = nrev
	}
}

// stop cancels the running record if not yet written (waiting for a write
// in progress) and returns the revision to replace.
func (m *runningMark) stop() uint64 {
	q := &m.x.marks
	q.mu.Lock()
	delete(q.waiting, m)
	q.mu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done = true
	return m.rev
}

// ErrHandedBack, as the cause of the context an execution runs under, says
// that the process gives the task back to its queue (a fleet worker that
// stops before the task ends): the execution is not over, so Execute records
// the asset/partition pending, not cancelled, and returns a Cancelled error.
var ErrHandedBack = errors.New("flowstone: task handed back to its queue")

// stateOf maps an error to the record state it leaves.
func stateOf(e *Error) State {
	if e.Type == TypeCancelled {
		return StateCancelled
	}
	return StateFailed
}

// call runs the asset function (or its scatter) with retries, timeout and
// panic recovery.
func (x *Executor) call(ctx context.Context, p *Pipeline, n *node, t *Task, key string, rec *Materialization) (any, error) {
	attempts := max(n.def.retry.Attempts, 1)
	backoff := n.def.retry.Backoff
	for i := 1; ; i++ {
		val, err := x.callOnce(ctx, p, n, t, key, rec)
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

func (x *Executor) callOnce(ctx context.Context, p *Pipeline, n *node, t *Task, key string, rec *Materialization) (val any, err error) {
	if n.def.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, n.def.timeout, &timeoutCause{what: "asset", asset: n.def.name, limit: n.def.timeout})
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxError(ctx, p.name, n.def.name)
	}
	c := &Context{ctx: ctx, x: x, p: p, n: n, task: t}
	defer c.closeReaders()
	if n.def.fn == nil {
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
		val, err = x.scatter(c, key, rec)
	} else {
		val, err = x.invoke(c, n.def.fn)
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
func (x *Executor) invoke(c *Context, fn AssetFunc) (val any, err error) {
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

// storeResult encodes val and writes it to the object store, filling rec's
// object fields.
func (x *Executor) storeResult(ctx context.Context, p *Pipeline, n *node, t *Task, rec *Materialization, val any) error {
	storage := t.Storage
	if storage == "" {
		storage = n.def.storage
	}
	s, name, err := x.store(storage)
	if err != nil {
		return err
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
			return newError(TypeExecutionFailed, map[string]any{"asset": n.def.name, "type": fmt.Sprintf("%T", v), "error": err.Error()},
				"the value of asset %q (a %T) cannot be encoded: %v; return encodable data, []byte or an io.Reader", n.def.name, v, err)
		}
		r, size, enc, whole = bytes.NewReader(b), int64(len(b)), EncodingJSON, b
	}
	rec.RunID = t.RunID
	if storage == "" && len(whole) > 0 && len(whole) <= InlineLimit {
		// Small and no store asked for: keep it in the record.
		x.storeInline(p, n, t, rec, bytes.Clone(whole), enc)
		return nil
	}
	objKey := ObjectKey(p.name, n.def.name, t.Partition, t.RunID+"-"+strconv.Itoa(max(t.Attempt, 1)))
	ev := x.events.active()
	start := time.Now()
	if ev {
		x.events.emit(Event{Kind: EventStoreStart, Pipeline: p.name, Asset: n.def.name, Partition: t.Partition, RunID: t.RunID,
			Time: start, Metadata: map[string]any{"storage": name, "key": objKey}})
	}
	info, err := s.Put(ctx, objKey, r, size)
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
			return ctxError(ctx, p.name, n.def.name)
		}
		return wrapError(TypeStorageError, err, map[string]any{"storage": name, "key": objKey},
			"store result of %q in %s: %v", n.def.name, name, err)
	}
	rec.Storage, rec.ObjectKey, rec.Encoding, rec.Size, rec.SHA256 = name, objKey, enc, info.Size, info.SHA256
	return nil
}

// open opens a dependency's stored value as a stream.
func (x *Executor) open(ctx context.Context, t *Task, ref *DepRef) (io.ReadCloser, error) {
	if len(ref.Inline) > 0 {
		return io.NopCloser(bytes.NewReader(ref.Inline)), nil
	}
	s, name, err := x.store(ref.Storage)
	if err != nil {
		return nil, err
	}
	rc, _, err := s.Get(ctx, ref.ObjectKey)
	if err != nil {
		return nil, wrapError(TypeStorageError, err, map[string]any{"storage": name, "key": ref.ObjectKey, "dependency": ref.Asset},
			"read dependency %q from %s: %v", ref.Asset, name, err)
	}
	return rc, nil
}

// load reads a dependency's whole stored value.
func (x *Executor) load(ctx context.Context, t *Task, ref *DepRef) ([]byte, error) {
	ev := x.events.active()
	start := time.Now()
	if ev {
		x.events.emit(Event{Kind: EventStorageLoadStart, Asset: ref.Asset, Partition: ref.Partition, RunID: t.RunID, Time: start,
			Metadata: map[string]any{"storage": ref.Storage, "key": ref.ObjectKey}})
	}
	rc, err := x.open(ctx, t, ref)
	var b []byte
	if err == nil {
		b, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			err = wrapError(TypeStorageError, err, map[string]any{"key": ref.ObjectKey, "dependency": ref.Asset},
				"read dependency %q: %v", ref.Asset, err)
		}
	}
	if ev {
		x.events.emit(Event{Kind: EventStorageLoadStop, Asset: ref.Asset, Partition: ref.Partition, RunID: t.RunID, Duration: time.Since(start),
			Metadata: map[string]any{"storage": ref.Storage, "key": ref.ObjectKey, "bytes": len(b)}})
	}
	return b, err
}

// decode decodes a dependency's bytes into target.
func (x *Executor) decode(b []byte, ref *DepRef, target any) error {
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
func (x *Executor) storeInline(p *Pipeline, n *node, t *Task, rec *Materialization, b []byte, enc string) {
	start := time.Now()
	sum := sha256.Sum256(b)
	rec.Storage, rec.ObjectKey, rec.Encoding, rec.Size, rec.SHA256, rec.Inline = InlineStorage, "", enc, int64(len(b)), hex.EncodeToString(sum[:]), b
	if x.events.active() {
		md := map[string]any{"storage": InlineStorage, "bytes": int64(len(b))}
		x.events.emit(Event{Kind: EventStoreStart, Pipeline: p.name, Asset: n.def.name, Partition: t.Partition, RunID: t.RunID, Time: start, Metadata: md})
		x.events.emit(Event{Kind: EventStoreStop, Pipeline: p.name, Asset: n.def.name, Partition: t.Partition, RunID: t.RunID,
			Duration: max(time.Since(start), time.Nanosecond), Metadata: md})
	}
}
