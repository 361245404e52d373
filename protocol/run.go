package protocol

import "time"

// RunRequest asks for an asset's partition to be materialized (verb run).
//
// A coordinator never holds the request open for the run: it persists the
// run, dispatches its tasks and replies at once with the run id (or
// Cached). A caller that wants the result waits for the run's state in
// RunsBucket (or its events) and then sends a GetRequest.
type RunRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset to materialize.
	Asset string `json:"asset"`
	// Partition is the partition to materialize; "" means DefaultPartition.
	Partition string `json:"partition,omitempty"`
	// Force recomputes the asset even if it is materialized.
	Force bool `json:"force,omitempty"`
	// WithDeps, when false, fails the run with dependency_failed if a
	// dependency is not materialized instead of running it. Nil means true.
	WithDeps *bool `json:"with_deps,omitempty"`
	// Async asks for a Job in the reply: the caller will not wait and
	// fetches the result later with get.
	Async bool `json:"async,omitempty"`
	// Storage names the storage backend for the result; "" means the
	// fleet's default.
	Storage string `json:"storage,omitempty"`
	// TimeoutMS bounds the whole run, dependencies included, in
	// milliseconds; 0 means
	// the default (300000).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Priority orders the run's tasks: 0 (the default) is the lowest,
	// MaxPriority the highest: served first when workers are saturated.
	Priority int `json:"priority,omitempty"`
	// ScheduledAt delays the run until then; it needs Async. A time in the
	// past runs at once.
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	// RunID is the id the caller gives the run (a ValidID, not one of the
	// shape BackfillRunID builds); "" lets the coordinator pick one. An id
	// another run has is refused with CodeBadRequest. (Added within
	// Version 1: a coordinator that predates it refuses it as unknown.)
	RunID string `json:"run_id,omitempty"`
}

// Verb returns VerbRun.
func (RunRequest) Verb() string { return VerbRun }
func (RunRequest) isRequest()   {}

// Validate checks the request: the version, names, partition, storage,
// TimeoutMS >= 0, Priority in 0..MaxPriority, and ScheduledAt only with
// Async.
func (r RunRequest) Validate() *Error {
	if err := checkTarget(r.V, r.Pipeline, r.Asset, r.Partition); err != nil {
		return err
	}
	if err := checkOptionalName("storage", r.Storage); err != nil {
		return err
	}
	if err := checkNonNegative("timeout_ms", r.TimeoutMS); err != nil {
		return err
	}
	if err := checkPriority("priority", r.Priority); err != nil {
		return err
	}
	if r.RunID != "" {
		if err := checkID("run_id", r.RunID); err != nil {
			return err
		}
		if _, ok := BackfillOfRun(r.RunID); ok {
			return fieldErrorf("run_id", "run_id %s has the shape of a backfill partition's run id (an id, a dash and 32 hex digits): choose another", quote(r.RunID))
		}
	}
	if r.ScheduledAt != nil {
		if !r.Async {
			return fieldErrorf("scheduled_at", "scheduled_at needs async: true (a scheduled run cannot be waited for in one request)")
		}
		if err := checkTime("scheduled_at", *r.ScheduledAt); err != nil {
			return err
		}
	}
	return nil
}

// RunsDeps reports whether missing dependencies are to be run first
// (WithDeps, defaulting to true).
func (r RunRequest) RunsDeps() bool { return r.WithDeps == nil || *r.WithDeps }

// RunReply answers a RunRequest.
type RunReply struct {
	// RunID identifies the run, for status, cancel and the run's record in
	// RunsBucket.
	RunID string `json:"run_id"`
	// Asset is the asset asked for.
	Asset string `json:"asset"`
	// Partition is the resolved partition (never "").
	Partition string `json:"partition"`
	// Cached is true when the asset was already materialized and nothing
	// was run: the result can be fetched at once.
	Cached bool `json:"cached,omitempty"`
	// Job describes the enqueued run, for async requests.
	Job *Job `json:"job,omitempty"`
	// LimitMS is how long the run may take, in milliseconds, when it is
	// longer than the request's timeout: the wait of the gates it may
	// pass (approvals, signals) is added to it. A caller waiting for the
	// run waits that long. (Added within Version 1, and set only for runs
	// that may reach a gate.)
	LimitMS int64 `json:"limit_ms,omitempty"`
}

func (RunReply) isReply() {}

// Validate checks the reply.
func (r RunReply) Validate() *Error {
	if err := checkID("run_id", r.RunID); err != nil {
		return err
	}
	if err := checkName("asset", r.Asset); err != nil {
		return err
	}
	if err := checkPartition("partition", r.Partition, false); err != nil {
		return err
	}
	if err := checkNonNegative("limit_ms", r.LimitMS); err != nil {
		return err
	}
	if r.Job != nil {
		return r.Job.validate("job")
	}
	return nil
}

// Job is an enqueued run, the fleet's answer to an async run (the API
// proposal's Oban job).
type Job struct {
	// ID is the run id, the handle for status and cancel.
	ID string `json:"id"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partition is the resolved partition.
	Partition string `json:"partition"`
	// Priority is the run's priority.
	Priority int `json:"priority,omitempty"`
	// ScheduledAt is when the run starts, if delayed.
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	// State is the run's state when the reply was sent: StateScheduled,
	// StatePending or later.
	State State `json:"state"`
}

func (j *Job) validate(field string) *Error {
	if err := checkID(field+".id", j.ID); err != nil {
		return err
	}
	if err := checkName(field+".pipeline", j.Pipeline); err != nil {
		return err
	}
	if err := checkName(field+".asset", j.Asset); err != nil {
		return err
	}
	if err := checkPartition(field+".partition", j.Partition, false); err != nil {
		return err
	}
	if err := checkPriority(field+".priority", j.Priority); err != nil {
		return err
	}
	if j.ScheduledAt != nil {
		if err := checkTime(field+".scheduled_at", *j.ScheduledAt); err != nil {
			return err
		}
	}
	return j.State.check(field + ".state")
}
