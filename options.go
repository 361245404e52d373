package flowstone

import (
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

// The option interfaces. One option value can serve several verbs (Partition
// works for Run, Get, Status, Invalidate, ...), so each verb takes its own
// interface and each option implements the ones it makes sense for.
type (
	// RunOption configures Run.
	RunOption interface{ applyRun(*runConfig) }
	// GetOption configures Get, Exists, Status and Cancel.
	GetOption interface{ applyGet(*getConfig) }
	// InvalidateOption configures Invalidate.
	InvalidateOption interface{ applyInvalidate(*invalidateConfig) }
	// BackfillOption configures Backfill.
	BackfillOption interface{ applyBackfill(*backfillConfig) }
	// GraphOption configures Graph.
	GraphOption interface{ applyGraph(*graphConfig) }

	// PartitionOption is Partition: it serves Run, the Get family,
	// Invalidate, and Approve and Reject.
	PartitionOption interface {
		RunOption
		GetOption
		InvalidateOption
		ApproveOption
	}
	// PartitionsOption is Partitions and DateRange: they serve Backfill
	// and Invalidate.
	PartitionsOption interface {
		BackfillOption
		InvalidateOption
	}
	// StorageOption is Storage: it serves Run and the Get family.
	StorageOption interface {
		RunOption
		GetOption
	}
	// RunBackfillOption serves Run and Backfill (Force, WithDeps, Async,
	// Priority).
	RunBackfillOption interface {
		RunOption
		BackfillOption
	}
	// TimeoutOption is Timeout: it serves assets, Run, Backfill and
	// sensors (bounding an evaluation).
	TimeoutOption interface {
		AssetOption
		RunOption
		BackfillOption
		SensorOption
	}
)

// DefaultPartition is the partition of calls that name none.
const DefaultPartition = "default"

// DefaultRunTimeout bounds a run that sets no Timeout, as in the API
// proposal (300 000 ms).
const DefaultRunTimeout = 5 * time.Minute

type runConfig struct {
	runID       string
	partition   string
	force       bool
	async       bool
	withDeps    bool
	storage     string
	timeout     time.Duration
	priority    int
	scheduledAt time.Time
	err         error
	// absent: the target had no record when its backfill listed the
	// asset's keys, so planning need not read it (the dispatch's
	// compare-and-set catches a record created since).
	absent bool
}

func newRunConfig(opts []RunOption) runConfig {
	c := runConfig{partition: DefaultPartition, withDeps: true, timeout: DefaultRunTimeout}
	for _, o := range opts {
		o.applyRun(&c)
	}
	return c
}

type getConfig struct {
	partition string
	storage   string
}

func newGetConfig(opts []GetOption) getConfig {
	c := getConfig{partition: DefaultPartition}
	for _, o := range opts {
		o.applyGet(&c)
	}
	return c
}

type invalidateConfig struct {
	partition    string // Partition's key, if partitionSet
	partitionSet bool
	partitions   []string // Partitions and DateRange, in order
	ranged       bool     // Partitions or DateRange was given
	all          bool     // AllPartitions
	cascade      bool
	err          error
}

func newInvalidateConfig(opts []InvalidateOption) invalidateConfig {
	var c invalidateConfig
	for _, o := range opts {
		o.applyInvalidate(&c)
	}
	return c
}

// named reports whether the options name partitions (Partition,
// Partitions, DateRange or AllPartitions): without, Invalidate targets
// DefaultPartition.
func (c *invalidateConfig) named() bool { return c.partitionSet || c.ranged || c.all }

// keys returns the partitions the options name, each once, in the order
// given (DefaultPartition when none is named), or the BadRequest error of
// a bad combination or of a key that is no partition text. With AllPartitions it returns none: the store knows
// them.
func (c *invalidateConfig) keys() ([]string, error) {
	if c.err != nil {
		return nil, c.err
	}
	if c.all {
		if c.partitionSet || c.ranged {
			return nil, newError(TypeBadRequest, map[string]any{"option": "all_partitions"},
				"AllPartitions names every partition: do not combine it with Partition, Partitions or DateRange")
		}
		return nil, nil
	}
	if c.ranged && len(c.partitions) == 0 && !c.partitionSet {
		return nil, newError(TypeBadRequest, map[string]any{"option": "partitions"},
			"Partitions names no partition: name at least one, or use AllPartitions")
	}
	if !c.named() {
		return []string{DefaultPartition}, nil
	}
	keys := c.partitions
	if c.partitionSet {
		keys = append([]string{c.partition}, keys...)
	}
	seen := make(map[string]struct{}, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		// The empty key first of all: on the wire it would mean the
		// default partition.
		if err := validPartitionText(k); err != nil {
			return nil, err
		}
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out, nil
}

type backfillConfig struct {
	id         string // BackfillID
	partitions []string
	parallel   int
	force      bool
	withDeps   bool
	async      bool
	halt       bool
	timeout    time.Duration
	priority   int
	progress   func(BackfillProgress)
	err        error
}

type graphConfig struct {
	format GraphFormat
}

// partitionOption serves Run, Get/Exists/Status/Cancel and Invalidate.
type partitionOption string

func (o partitionOption) applyRun(c *runConfig) { c.partition = string(o) }
func (o partitionOption) applyGet(c *getConfig) { c.partition = string(o) }
func (o partitionOption) applyInvalidate(c *invalidateConfig) {
	c.partition, c.partitionSet = string(o), true
}

// Partition selects the partition key (a date "2025-01-15", a region "us",
// any text the asset's partitioning accepts: see PartitionedBy). Without it
// calls use DefaultPartition, the one partition of an unpartitioned asset.
// An empty key, or one the asset does not take, is a BadRequest error.
func Partition(key string) PartitionOption { return partitionOption(key) }

type forceOption struct{}

func (forceOption) applyRun(c *runConfig)           { c.force = true }
func (forceOption) applyBackfill(c *backfillConfig) { c.force = true }

// Force re-runs the target asset even if it is materialized. Its
// dependencies are not re-run: a materialized dependency is reused, a missing
// one is materialized as usual. To recompute a dependency too, Invalidate it
// (with Cascade) first.
func Force() RunBackfillOption { return forceOption{} }

type withDepsOption bool

func (o withDepsOption) applyRun(c *runConfig)           { c.withDeps = bool(o) }
func (o withDepsOption) applyBackfill(c *backfillConfig) { c.withDeps = bool(o) }

// WithDeps(false) runs only the target: if a dependency is not materialized
// for the partition, the run fails with a DependencyFailed error naming it.
// The default, WithDeps(true), materializes missing dependencies first.
func WithDeps(on bool) RunBackfillOption { return withDepsOption(on) }

type asyncOption struct{}

func (asyncOption) applyRun(c *runConfig)           { c.async = true }
func (asyncOption) applyBackfill(c *backfillConfig) { c.async = true }

// Async enqueues the run (each partition of a Backfill) on the fleet and
// returns at once with Result.Job set; fetch the value later with Get. It
// needs an engine with an AsyncRunner (a fleet client); the embedded
// engine answers Run and Backfill alike with a ConfigError that says how
// to connect one, before anything is enqueued.
func Async() RunBackfillOption { return asyncOption{} }

type storageOption string

func (o storageOption) applyRun(c *runConfig) { c.storage = string(o) }
func (o storageOption) applyGet(c *getConfig) { c.storage = string(o) }

// Storage names the object store to write results to (Run) or to read them
// from (Get): a key of EngineConfig.Stores.
func Storage(name string) StorageOption { return storageOption(name) }

type timeoutOption time.Duration

func (o timeoutOption) applyAsset(a *AssetDef)          { a.timeout = time.Duration(o) }
func (o timeoutOption) applyRun(c *runConfig)           { c.timeout = time.Duration(o) }
func (o timeoutOption) applyBackfill(c *backfillConfig) { c.timeout = time.Duration(o) }

// Timeout bounds time. On an asset it limits one execution of its function;
// on Run and Backfill it limits each whole run (dependencies included;
// DefaultRunTimeout when unset); on a Sensor it limits one evaluation.
// When it passes, the running functions' contexts are cancelled and the call fails with a Timeout error.
func Timeout(d time.Duration) TimeoutOption { return timeoutOption(d) }

type priorityOption int

func (o priorityOption) applyRun(c *runConfig) {
	if o < 0 || o > 3 {
		c.err = newError(TypeBadRequest, map[string]any{"priority": int(o)}, "priority %d is out of range: use 0 (default) to 3 (highest)", int(o))
	}
	c.priority = int(o)
}
func (o priorityOption) applyBackfill(c *backfillConfig) {
	var rc runConfig
	o.applyRun(&rc)
	c.priority, c.err = rc.priority, rc.err
}

// Priority ranks async runs, 0 (default) to 3 (highest): when the fleet's
// queue is saturated, higher priorities are served first.
func Priority(p int) RunBackfillOption { return priorityOption(p) }

type runIDOption string

func (o runIDOption) applyRun(c *runConfig) { c.runID = string(o) }

// WithRunID gives the run its id instead of a generated one: the fleet's
// coordinator uses it so the id it replied with is the one in the records,
// and the fleet client sends it with the run. The id must be unique; on
// the fleet it is 1 to protocol.MaxIDBytes letters, digits, '_' or '-', and
// an id another run has is a BadRequest error. A run whose target is
// already materialized runs nothing and returns the id of the run that
// materialized it, as without the option.
func WithRunID(id string) RunOption { return runIDOption(id) }

type scheduledAtOption time.Time

func (o scheduledAtOption) applyRun(c *runConfig) { c.scheduledAt = time.Time(o) }

// ScheduledAt starts an async run no earlier than t.
func ScheduledAt(t time.Time) RunOption { return scheduledAtOption(t) }

type partitionsOption []string

func (o partitionsOption) applyBackfill(c *backfillConfig) {
	c.partitions = append(c.partitions, o...)
}

func (o partitionsOption) applyInvalidate(c *invalidateConfig) {
	c.partitions, c.ranged = append(c.partitions, o...), true
}

// Partitions lists the partitions a Backfill runs over, or that
// Invalidate deletes.
func Partitions(keys ...string) PartitionsOption { return partitionsOption(keys) }

type dateRangeOption struct{ from, to time.Time }

// days returns the range's day keys, or the BadRequest error of a range
// that ends before it starts or has more than MaxDateRangeDays days,
// counted before any key is built.
func (o dateRangeOption) days() ([]string, error) {
	return dateKeys(o.from, o.to)
}

func (o dateRangeOption) applyBackfill(c *backfillConfig) {
	days, err := o.days()
	if err != nil {
		c.err = err
		return
	}
	c.partitions = append(c.partitions, days...)
}

func (o dateRangeOption) applyInvalidate(c *invalidateConfig) {
	c.ranged = true
	days, err := o.days()
	if err != nil {
		c.err = err
		return
	}
	c.partitions = append(c.partitions, days...)
}

// DateRange names every day from from to to, both included, as
// "2006-01-02" partitions: those a Backfill runs over, or that Invalidate
// deletes. A range that ends before it starts, or spans more than
// MaxDateRangeDays days, is a BadRequest error (refused before a key is
// built).
func DateRange(from, to time.Time) PartitionsOption { return dateRangeOption{from, to} }

type allPartitionsOption struct{}

func (allPartitionsOption) applyInvalidate(c *invalidateConfig) { c.all = true }

// AllPartitions makes Invalidate delete every partition of the asset that
// has a record (with Cascade, of the asset or of any asset downstream of
// it), as the store lists them when the call runs. It cannot be combined
// with Partition, Partitions or DateRange.
func AllPartitions() InvalidateOption { return allPartitionsOption{} }

type parallelOption int

func (o parallelOption) applyBackfill(c *backfillConfig) {
	switch {
	case o < 1:
		c.err = newError(TypeBadRequest, map[string]any{"parallel": int(o)}, "parallel must be at least 1, got %d", int(o))
	case o > MaxParallel:
		c.err = newError(TypeBadRequest, map[string]any{"parallel": int(o), "limit": MaxParallel},
			"parallel %d is over the limit of %d partitions at once", int(o), MaxParallel)
	}
	c.parallel = int(o)
}

// MaxParallel is the highest Parallel: protocol.MaxBackfillParallel, far
// more than a fleet has slots for.
const MaxParallel = protocol.MaxBackfillParallel

// Parallel sets how many partitions a Backfill runs at once, 1 to
// MaxParallel. Defaults to 1.
func Parallel(n int) BackfillOption { return parallelOption(n) }

// ErrorPolicy says what a Backfill does when a partition fails.
type ErrorPolicy int

const (
	// Continue runs every partition whatever fails (the default).
	Continue ErrorPolicy = iota
	// Halt starts no further partition after the first failure.
	Halt
)

// String returns "continue" or "halt".
func (p ErrorPolicy) String() string {
	if p == Halt {
		return "halt"
	}
	return "continue"
}

type onErrorOption ErrorPolicy

func (o onErrorOption) applyBackfill(c *backfillConfig) { c.halt = ErrorPolicy(o) == Halt }

// OnError sets the Backfill's ErrorPolicy: Continue (default) or Halt.
func OnError(p ErrorPolicy) BackfillOption { return onErrorOption(p) }

type progressOption func(BackfillProgress)

func (o progressOption) applyBackfill(c *backfillConfig) { c.progress = o }

// OnProgress calls fn after each partition of a Backfill finishes, from one
// goroutine at a time.
func OnProgress(fn func(BackfillProgress)) BackfillOption { return progressOption(fn) }

type cascadeOption struct{}

func (cascadeOption) applyInvalidate(c *invalidateConfig) { c.cascade = true }

// Cascade makes Invalidate also delete every downstream asset of each
// partition it deletes.
func Cascade() InvalidateOption { return cascadeOption{} }

// GraphFormat selects Graph's output.
type GraphFormat int

const (
	// ASCII is a tree drawn with ├── └── │ (the default).
	ASCII GraphFormat = iota
	// Mermaid is a "graph TD" flowchart.
	Mermaid
	// DOT is a Graphviz digraph.
	DOT
)

// String returns "ascii", "mermaid" or "dot".
func (f GraphFormat) String() string {
	switch f {
	case Mermaid:
		return "mermaid"
	case DOT:
		return "dot"
	}
	return "ascii"
}

// ParseGraphFormat reads "ascii", "mermaid" or "dot".
func ParseGraphFormat(s string) (GraphFormat, error) {
	for _, f := range []GraphFormat{ASCII, Mermaid, DOT} {
		if f.String() == s {
			return f, nil
		}
	}
	return ASCII, newError(TypeBadRequest, map[string]any{"format": s}, "unknown graph format %q: use ascii, mermaid or dot", s)
}

type formatOption GraphFormat

func (o formatOption) applyGraph(c *graphConfig) { c.format = GraphFormat(o) }

// Format selects Graph's output format.
func Format(f GraphFormat) GraphOption { return formatOption(f) }

// checkPartition rejects keys that cannot be a partition.
func checkPartition(key string) error {
	if key == "" {
		return newError(TypeBadRequest, nil, "empty partition key: omit Partition for the default partition, or give a key")
	}
	if len(key) > MaxPartitionLen {
		return newError(TypeBadRequest, map[string]any{"length": len(key)}, "partition key is %d bytes; the limit is %d", len(key), MaxPartitionLen)
	}
	return nil
}
