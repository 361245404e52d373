// Package bridge is what the fleet's packages (coordinator, worker,
// client, and the internal ones) use of the root package flowstone beyond
// its API: the resolvers of options, the wire form of errors, the
// materialization records and their writer, the executor, manifests. The
// root package keeps all of it unexported, so that its documentation and
// its compatibility promise are the user's API only, and hands it to this
// package when it is initialized, through package hook. See
// docs/ARCHITECTURE.md, "The API and the bridge".
//
// Everything here is internal to the module: it may change with the root
// package, in the same commit.
package bridge

import (
	"context"
	"io"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge/hook"
	"github.com/flowstone-go/flowstone/protocol"
)

// root lists what the root package's hook.Root has: its unexported
// functions, one method each.
type root interface {
	ResolveRun(pipeline, asset string, opts ...flowstone.RunOption) (flowstone.RunRequest, error)
	ResolveGet(opts ...flowstone.GetOption) GetRequest
	ResolveInvalidate(opts ...flowstone.InvalidateOption) (InvalidateRequest, error)
	ResolveBackfill(opts ...flowstone.BackfillOption) (BackfillRequest, error)
	ResolveGraph(opts ...flowstone.GraphOption) flowstone.GraphFormat
	WireError(e *flowstone.Error) *protocol.Error
	FromWire(w *protocol.Error) *flowstone.Error
	NewResult(rec *flowstone.Materialization, cached bool, codec flowstone.Codec, open func(ctx context.Context) (io.ReadCloser, error)) *flowstone.Result
	Manifest(p *flowstone.Pipeline, worker string) protocol.Manifest
	PipelineFromManifest(m protocol.Manifest) (*flowstone.Pipeline, error)
	MarshalRecord(m *flowstone.Materialization) ([]byte, error)
	UnmarshalRecord(b []byte) (*flowstone.Materialization, error)
	MaterializationKey(pipeline, asset, partition string) string
	ObjectKey(pipeline, asset, partition, runID string) string
	NewEngine(cfg flowstone.EngineConfig, d any) (*flowstone.Engine, error)
	NewExecutor(cfg ExecutorConfig) (any, error)
	EngineExecutor(e *flowstone.Engine) any
	ExecutorRecords(x any) any
}

// r is the root package's hooks. The root package is initialized before
// this one, which imports it; a method missing from hook.Root panics here,
// at the start of every program and test that uses the bridge.
var r = hook.Root.(root)

// The types the engine and the fleet share, defined in package hook.
type (
	// Task asks an executor to materialize one asset/partition for a run.
	Task = hook.Task[flowstone.Materialization]
	// DepRef locates a dependency's stored value.
	DepRef = hook.DepRef
	// ExecutorConfig configures an Executor.
	ExecutorConfig = hook.ExecutorConfig
	// QueueOutcome says what Records.Queue found.
	QueueOutcome = hook.QueueOutcome
	// QueueRequest is a task a coordinator is about to publish.
	QueueRequest = hook.QueueRequest
	// GetRequest is what the Get-family options describe.
	GetRequest = hook.GetRequest
	// InvalidateRequest is what Invalidate's options describe.
	InvalidateRequest = hook.InvalidateRequest
	// ItemQueue carries a scatter's item batches (see hook.ItemQueue).
	ItemQueue = hook.ItemQueue
	// ItemSession is one execution's view of a scatter's batches.
	ItemSession = hook.ItemSession
	// ItemBatch is a run of consecutive items of a scatter.
	ItemBatch = hook.ItemBatch
	// BatchOutcome is what became of a batch's items.
	BatchOutcome = hook.BatchOutcome
	// ItemOutcome is one item's end.
	ItemOutcome = hook.ItemOutcome
	// BackfillRequest is what Backfill's options describe.
	BackfillRequest = hook.BackfillRequest[flowstone.ErrorPolicy, flowstone.BackfillProgress]
)

// The outcomes of Records.Queue (see hook.QueueOutcome).
const (
	Queued       = hook.Queued
	Requeued     = hook.Requeued
	HeldBy       = hook.HeldBy
	Materialized = hook.Materialized
)

// StaleHolderDetail is the detail of the error of a stale task that names
// the run that took its record (see hook.StaleHolderDetail).
const StaleHolderDetail = hook.StaleHolderDetail

var (
	// ErrHandedBack, as the cause of an execution's context, hands its
	// task back to the queue (see hook.ErrHandedBack).
	ErrHandedBack = hook.ErrHandedBack
	// ErrSuperseded: another execution of the task holds its record (see
	// hook.ErrSuperseded).
	ErrSuperseded = hook.ErrSuperseded
)

// ResolveRun returns the RunRequest the options describe, with Pipeline and
// Asset set, or the BadRequest error an option carries.
func ResolveRun(pipeline, asset string, opts ...flowstone.RunOption) (flowstone.RunRequest, error) {
	return r.ResolveRun(pipeline, asset, opts...)
}

// ResolveGet returns what the options of Get, Exists, Status or Cancel
// describe.
func ResolveGet(opts ...flowstone.GetOption) GetRequest { return r.ResolveGet(opts...) }

// ResolveInvalidate returns what Invalidate's options describe, or the
// BadRequest error of a bad option or combination.
func ResolveInvalidate(opts ...flowstone.InvalidateOption) (InvalidateRequest, error) {
	return r.ResolveInvalidate(opts...)
}

// ResolveBackfill returns what Backfill's options describe, or the
// BadRequest error an option carries.
func ResolveBackfill(opts ...flowstone.BackfillOption) (BackfillRequest, error) {
	return r.ResolveBackfill(opts...)
}

// ResolveGraph returns the format Graph's options select.
func ResolveGraph(opts ...flowstone.GraphOption) flowstone.GraphFormat {
	return r.ResolveGraph(opts...)
}

// WireError converts e for the fleet's wire (nil for nil).
func WireError(e *flowstone.Error) *protocol.Error { return r.WireError(e) }

// FromWire converts a wire error into an *Error of the same type and
// details, so callers branch the same way on both sides of the fleet.
func FromWire(w *protocol.Error) *flowstone.Error { return r.FromWire(w) }

// NewResult builds a Result whose value is read through open and decoded
// with codec (JSONCodec if nil). The fleet client uses it to give its
// results the same shape as the embedded engine's.
func NewResult(rec *flowstone.Materialization, cached bool, codec flowstone.Codec, open func(ctx context.Context) (io.ReadCloser, error)) *flowstone.Result {
	return r.NewResult(rec, cached, codec, open)
}

// Manifest describes p for the fleet: the asset specs a coordinator plans
// from without the Go functions. worker names the process that hosts it.
func Manifest(p *flowstone.Pipeline, worker string) protocol.Manifest { return r.Manifest(p, worker) }

// PipelineFromManifest rebuilds a pipeline's shape from its manifest, with
// no functions: the coordinator plans and answers graph, assets and info from
// it, and its executions happen on workers. It validates like NewPipeline.
func PipelineFromManifest(m protocol.Manifest) (*flowstone.Pipeline, error) {
	return r.PipelineFromManifest(m)
}

// MarshalRecord encodes a record for the kv store.
func MarshalRecord(m *flowstone.Materialization) ([]byte, error) { return r.MarshalRecord(m) }

// UnmarshalRecord decodes a record read from the kv store.
func UnmarshalRecord(b []byte) (*flowstone.Materialization, error) { return r.UnmarshalRecord(b) }

// MaterializationKey is the kv key of an asset/partition's record:
// "mat.<pipeline>.<asset>.<PartitionToken(partition)>".
func MaterializationKey(pipeline, asset, partition string) string {
	return r.MaterializationKey(pipeline, asset, partition)
}

// ObjectKey is where a run's result is stored:
// "<pipeline>/<asset>/<PartitionToken(partition)>/<runID>".
func ObjectKey(pipeline, asset, partition, runID string) string {
	return r.ObjectKey(pipeline, asset, partition, runID)
}

// Dispatcher runs a materialization task somewhere and returns its final
// record: the fleet's coordinator publishes the task on JetStream and waits
// for a worker's completion. A Dispatcher that also has the method
//
//	CheckStorage(p *flowstone.Pipeline, name string) error
//
// is asked, before a run starts, whether the executors of p's tasks have a
// store of that name, and returns a TypeConfigError naming the stores there
// are if not: a misspelt Storage option is refused up front.
type Dispatcher interface {
	// Dispatch materializes t.Asset of p and returns the record the executor
	// left. It must return when ctx is done, with ctx's cause.
	Dispatch(ctx context.Context, p *flowstone.Pipeline, t Task) (*flowstone.Materialization, error)
}

// NewEngine returns an engine for cfg whose tasks d runs, instead of the
// engine's own executor.
func NewEngine(cfg flowstone.EngineConfig, d Dispatcher) (*flowstone.Engine, error) {
	return r.NewEngine(cfg, d)
}

// executor is the root package's executor, by its methods.
type executor interface {
	Execute(ctx context.Context, p *flowstone.Pipeline, t Task) (*flowstone.Materialization, error)
	Refuse(ctx context.Context, p *flowstone.Pipeline, t Task, fe *flowstone.Error) error
	RunItems(ctx context.Context, p *flowstone.Pipeline, t Task, b ItemBatch) (BatchOutcome, error)
	Subscribe(fn func(flowstone.Event)) (unsubscribe func())
	Close()
}

// Executor materializes one asset at a time: it loads the dependencies,
// calls the function, stores the result and records the metadata, emitting
// telemetry events on the way. The embedded engine and the fleet's workers
// run this same code.
//
// An Executor is safe for concurrent use.
type Executor struct{ x executor }

// NewExecutor checks cfg and returns an Executor.
func NewExecutor(cfg ExecutorConfig) (*Executor, error) {
	x, err := r.NewExecutor(cfg)
	if err != nil {
		return nil, err
	}
	return &Executor{x.(executor)}, nil
}

// EngineExecutor returns e's own executor.
func EngineExecutor(e *flowstone.Engine) *Executor {
	return &Executor{r.EngineExecutor(e).(executor)}
}

// Execute materializes t.Asset of p for t.Partition and returns the final
// record; it is idempotent, so redelivered tasks are harmless. An
// execution that loses its claim returns an error wrapping ErrSuperseded;
// one whose context was cancelled with the cause ErrHandedBack leaves the
// record pending for the next delivery. The whole contract is on the root
// package's executor.Execute (executor.go).
func (x *Executor) Execute(ctx context.Context, p *flowstone.Pipeline, t Task) (*flowstone.Materialization, error) {
	return x.x.Execute(ctx, p, t)
}

// Refuse records that t will not run because of fe (its run was
// cancelled, or reached its deadline, before the task started): a record
// this run queued says so, with the last good value kept. A record another
// run holds or completed is left alone.
func (x *Executor) Refuse(ctx context.Context, p *flowstone.Pipeline, t Task, fe *flowstone.Error) error {
	return x.x.Refuse(ctx, p, t, fe)
}

// RunItems runs the items of batch b of the scatter asset t.Asset and
// returns their outcomes in the batch's order: a worker's side of a
// distributed scatter. Items the context's end stops are cancelled.
func (x *Executor) RunItems(ctx context.Context, p *flowstone.Pipeline, t Task, b ItemBatch) (BatchOutcome, error) {
	return x.x.RunItems(ctx, p, t, b)
}

// Subscribe registers fn for every telemetry event this executor emits and
// returns a function that unregisters it. fn runs on the executing goroutine:
// keep it fast and never block.
func (x *Executor) Subscribe(fn func(flowstone.Event)) (unsubscribe func()) { return x.x.Subscribe(fn) }

// Records returns the executor's record writer.
func (x *Executor) Records() *Records { return &Records{r.ExecutorRecords(x.x).(records)} }

// Close stops renewing leases and waits for the renewals in flight. The
// executions still running lose their claims when their leases lapse,
// as a dead process's would; close an executor once it executes nothing.
func (x *Executor) Close() { x.x.Close() }

// records is the root package's record writer, by its methods.
type records interface {
	Read(ctx context.Context, key string) (*flowstone.Materialization, uint64, error)
	Queue(ctx context.Context, key string, rec *flowstone.Materialization, rev uint64, req QueueRequest) (QueueOutcome, *flowstone.Materialization, uint64, error)
	GiveUp(ctx context.Context, pipeline, asset, partition, runID string, attempts int, fe *flowstone.Error) (*flowstone.Materialization, bool, error)
}

// Records is the one writer of materialization records. Every change of a
// record is one of its transitions (see the root package's documentation,
// "Records"), made by compare-and-set on the revision the writer last saw;
// on a conflict the record is read again and the transition decided again
// from what it holds now, so that a stale attempt never replaces a newer
// outcome, and a failure never replaces a value.
//
// Records is safe for concurrent use.
type Records struct{ r records }

// Read returns the record under key and its revision; nil if there is
// none. The record is the caller's to change. Transient store errors are
// retried with backoff until ctx ends, here and in every transition.
func (rs *Records) Read(ctx context.Context, key string) (*flowstone.Materialization, uint64, error) {
	return rs.r.Read(ctx, key)
}

// Queue marks the asset/partition queued by req's run before its task is
// published. It starts from the record and revision read while planning
// (rec nil and rev 0: there was none) and reads again only on a conflict.
// It returns the outcome, the record as it stands, and its revision.
func (rs *Records) Queue(ctx context.Context, key string, rec *flowstone.Materialization, rev uint64, req QueueRequest) (QueueOutcome, *flowstone.Materialization, uint64, error) {
	return rs.r.Queue(ctx, key, rec, rev, req)
}

// GiveUp fails runID's task of the asset/partition for good (its
// deliveries are exhausted) unless the run's outcome is recorded already or
// another run has moved the record on. The last good value is kept.
// attempts is how many deliveries the task had. It returns the record as
// it stands and whether GiveUp wrote it.
func (rs *Records) GiveUp(ctx context.Context, pipeline, asset, partition, runID string, attempts int, fe *flowstone.Error) (*flowstone.Materialization, bool, error) {
	return rs.r.GiveUp(ctx, pipeline, asset, partition, runID, attempts, fe)
}
