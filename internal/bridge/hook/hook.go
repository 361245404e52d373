// Package hook is the half of package bridge that the root package
// (flowstone) imports: the types that the engine and the fleet's packages
// both name, and the slot through which the root package hands package
// bridge the functions it keeps unexported.
//
// The root package cannot import package bridge, which names its types;
// this package names none of them, so both can import it. A type here that
// holds one of the root package's types takes it as a type parameter
// (Task[M] is Task of flowstone.Materialization). Only the root package and
// package bridge import this one: the fleet's packages use bridge's names
// for these types. See docs/ARCHITECTURE.md, "The API and the bridge".
package hook

import (
	"context"
	"errors"
	"time"

	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/rs/zerolog"
)

// Root is set by the root package when it is initialized, which is before
// package bridge is: a value with the methods bridge's root interface
// lists. Its type is any because this package cannot name the root
// package's types.
var Root any

// Task asks an executor to materialize one asset/partition for a run. The
// engine builds tasks; on the fleet they travel to workers on JetStream.
// M is flowstone.Materialization.
type Task[M any] struct {
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
	// ExpectedRevision is the revision of the record the fleet's
	// coordinator wrote when it queued the task, or 0. It is set only when
	// that record held no value, so that the execution can claim the record
	// by compare-and-set without reading it first; if the record changed
	// since, it is read and the claim decided from what it holds. A task
	// whose record another run has written since it was queued is stale and
	// does not run.
	ExpectedRevision uint64

	// Set by the engine for its own executor: the key, and the record (and
	// revision) it read while planning, so execution need not read it again.
	// Only the engine sets them.
	Key       string
	PrevKnown bool
	Prev      *M
	PrevRev   uint64
	// Object, when set, names the result's object instead of the run
	// and attempt (a seed's: every seed is run flowstone.SeedRunID,
	// attempt 1). Only the engine sets it.
	Object string
	// Deps says where each dependency's value is stored.
	Deps []DepRef
	// Items, for a scatter asset, carries its item batches to where they
	// run; nil runs them in this process.
	Items ItemQueue
}

// Planned returns the record the engine read for t's asset/partition while
// planning the run (nil if there was none) and its revision; ok is false
// for a task the engine did not plan. A dispatcher can compare-and-set
// against it instead of reading the record again.
func (t *Task[M]) Planned() (rec *M, rev uint64, ok bool) {
	return t.Prev, t.PrevRev, t.PrevKnown
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
	// Inline holds a small result's bytes (Storage is
	// flowstone.InlineStorage).
	Inline []byte `json:"inline,omitempty"`
	// Missing marks an optional dependency that has no value.
	Missing bool `json:"missing,omitempty"`
	// Skipped says why a Missing one has none: the run skipped it (a
	// router chose another branch).
	Skipped bool `json:"skipped,omitempty"`
	// Err says why a Missing one has none: its error (a
	// *flowstone.Error), when it failed in the run.
	Err error `json:"-"`
}

// Codec is flowstone.Codec, which this package cannot name: any
// flowstone.Codec is one.
type Codec interface {
	Encode(v any) ([]byte, error)
	Decode(data []byte, v any) error
}

// ExecutorConfig configures an executor.
type ExecutorConfig struct {
	// KV holds the materialization records. Required.
	KV kv.Store
	// Stores are the object stores by name. Required: at least one.
	Stores map[string]objectstore.Store
	// DefaultStorage names the store used when neither the asset nor the
	// run names one. Defaults to the only store, or "memory".
	DefaultStorage string
	// Codec encodes values. Defaults to flowstone.JSONCodec.
	Codec Codec
	// Worker names this process in records. Defaults to "embedded".
	Worker string
	// Logger receives asset logs (Context.Logger). Defaults to no logging.
	Logger *zerolog.Logger
	// Lease is how long an execution's claim on its record lasts without
	// a renewal; the executor renews it every third of that while the
	// asset runs. Fleet workers pass their AckWait. Defaults to 30 seconds.
	Lease time.Duration
}

// ErrHandedBack, as the cause of the context an execution runs under, says
// that the process gives the task back to its queue (a fleet worker that
// stops before the task ends): the execution is not over, so the executor
// records the asset/partition pending, not cancelled, and returns a
// Cancelled error.
var ErrHandedBack = errors.New("flowstone: task handed back to its queue")

// ErrSuperseded means another execution of the same task holds the
// record, or took it over: the execution that gets it must neither record
// an outcome nor report one (the other execution will), and leaves the
// task's message to the other delivery.
var ErrSuperseded = errors.New("flowstone: another execution of this task holds its record")

// ErrTaskDeadline, wrapped by the cause of the context a dispatch runs
// under, says that the context ended at a deadline the task carries
// (Task.Deadline) other than its run's: the end of a join's branch
// timeout. The executor stops the task there on its own, so a dispatcher
// stops waiting for it without cancelling the run's other tasks.
var ErrTaskDeadline = errors.New("flowstone: the task reached its deadline")

// StaleHolderDetail is the detail of the error of a stale task (one whose
// record another run took after the task was queued) that names that run:
// a dispatcher waits for its execution instead.
const StaleHolderDetail = "holder"

// QueueOutcome says what the record writer's Queue found.
type QueueOutcome int

// The outcomes of Queue.
const (
	// Queued: the record now says the task is queued by this run; publish
	// it.
	Queued QueueOutcome = iota
	// Requeued: this run had queued (or is running) the task already, a
	// run resumed after its coordinator stopped; publish it again with its
	// dedupe id.
	Requeued
	// HeldBy: another live run holds the record; wait for that run's
	// execution instead (single flight across coordinators).
	HeldBy
	// Materialized: the record has a value the task may use; nothing to
	// run.
	Materialized
)

// QueueRequest is a task a coordinator is about to publish.
type QueueRequest struct {
	Pipeline, Asset, Partition string
	RunID                      string
	Force                      bool
	// By names the coordinator (Materialization.QueuedBy).
	By string
	// Alive reports whether the run that holds a record is still going;
	// a record held by a run that ended may be taken over.
	Alive func(runID string) bool
}

// The resolvers of package bridge spell out what a list of options means,
// for code that sends the call elsewhere (the fleet client) instead of
// running it: these are what they return (a run's is flowstone.RunRequest).

// GetRequest is what the Get-family options describe.
type GetRequest struct {
	Partition string
	Storage   string
}

// InvalidateRequest is what Invalidate's options describe. At most one of
// Partition, Partitions and All is set; none means the default partition.
type InvalidateRequest struct {
	// Partition is the one partition named ("" when none or several are).
	Partition string
	// Partitions lists the partitions named when there are several, each
	// once, in order.
	Partitions []string
	// All is AllPartitions.
	All bool
	// Cascade is Cascade.
	Cascade bool
}

// BackfillRequest is what Backfill's options describe. E is
// flowstone.ErrorPolicy, P flowstone.BackfillProgress.
type BackfillRequest[E, P any] struct {
	Partitions []string
	Parallel   int
	Force      bool
	WithDeps   bool
	Async      bool
	OnError    E
	Timeout    time.Duration
	Priority   int
	Progress   func(P)
}

// Clock tells the time to the scheduler of schedules and sensors, and
// wakes it: the real clock in production, a fake one in tests
// (internal/fakeclock), so that a test moves time instead of sleeping.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// Launcher starts runs for the scheduler: the engine's own (embedded),
// or a fleet coordinator's. P is flowstone.Pipeline.
type Launcher[P any] interface {
	// Launch starts run runID of asset for partition in p, with its
	// missing dependencies, unless a run with that id was started
	// before: started is false then. An error that is a
	// flowstone.Error of type bad_request, asset_not_found or
	// config_error is the request's fault (it will not start later
	// either); others may pass.
	Launch(ctx context.Context, p *P, runID, asset, partition string) (started bool, err error)
}
