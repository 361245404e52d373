package protocol

// OnError says what a backfill does when a partition fails.
type OnError string

// The backfill error policies.
const (
	// OnErrorContinue runs the remaining partitions (the default).
	OnErrorContinue OnError = "continue"
	// OnErrorHalt starts no further partitions after a failure.
	OnErrorHalt OnError = "halt"
)

// BackfillRequest runs an asset across many partitions (verb backfill).
type BackfillRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partitions lists the partitions, 1 to MaxBackfillPartitions of them,
	// none empty or repeated.
	Partitions []string `json:"partitions"`
	// Parallel is how many partitions run at once, at most
	// MaxBackfillParallel; 0 means 1.
	Parallel int `json:"parallel,omitempty"`
	// Force recomputes partitions that are materialized.
	Force bool `json:"force,omitempty"`
	// OnError is the failure policy; "" means OnErrorContinue.
	OnError OnError `json:"on_error,omitempty"`
	// Async answers at once, once the backfill is accepted (validated and
	// recorded), with its id in the reply's RunID and zero counts; follow
	// it with VerbBackfillStatus. Without it the reply comes when the
	// backfill ends, with the counts: the coordinator holds the request
	// open meanwhile, and a client loses the reply (not the backfill) if
	// that coordinator stops.
	Async bool `json:"async,omitempty"`
	// WithDeps, when false, fails a partition whose dependencies are not
	// materialized instead of running them. Nil means true.
	WithDeps *bool `json:"with_deps,omitempty"`
	// TimeoutMS bounds each partition's run, in milliseconds; 0 means the
	// default (300000).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Priority is the partitions' task priority, 0 (default) to
	// MaxPriority (served first).
	Priority int `json:"priority,omitempty"`
}

// Verb returns VerbBackfill.
func (BackfillRequest) Verb() string { return VerbBackfill }
func (BackfillRequest) isRequest()   {}

// Validate checks the version, names, every partition, Parallel (0 to
// MaxBackfillParallel) and OnError.
func (r BackfillRequest) Validate() *Error {
	if err := checkTarget(r.V, r.Pipeline, r.Asset, ""); err != nil {
		return err
	}
	if len(r.Partitions) == 0 {
		return fieldErrorf("partitions", "partitions is empty: name at least one partition to backfill")
	}
	if err := checkPartitionList("partitions", r.Partitions, "backfill"); err != nil {
		return err
	}
	if err := checkNonNegative("parallel", r.Parallel); err != nil {
		return err
	}
	if r.Parallel > MaxBackfillParallel {
		return fieldErrorf("parallel", "parallel is %d; the limit is %d", r.Parallel, MaxBackfillParallel)
	}
	if err := checkNonNegative("timeout_ms", r.TimeoutMS); err != nil {
		return err
	}
	if err := checkPriority("priority", r.Priority); err != nil {
		return err
	}
	return checkOnError("on_error", r.OnError)
}

// BackfillReply answers a BackfillRequest. For an async backfill the counts
// are zero and RunID is the backfill's id (see VerbBackfillStatus).
type BackfillReply struct {
	// Succeeded counts the partitions materialized by this backfill.
	Succeeded int `json:"succeeded"`
	// Failed counts the partitions that failed.
	Failed int `json:"failed"`
	// Skipped counts the partitions not run: already materialized, skipped
	// by a router upstream, or not started after a failure with
	// OnErrorHalt.
	Skipped int `json:"skipped"`
	// RunID is the backfill's id: the key of its record
	// (BackfillKey) and what BackfillStatusRequest asks about.
	RunID string `json:"run_id"`
	// NotStarted counts the partitions left out after a failure with
	// OnErrorHalt.
	NotStarted int `json:"not_started,omitempty"`
	// Errors holds the errors of the failed partitions: the first
	// MaxBackfillErrors of them.
	Errors map[string]*Error `json:"errors,omitempty"`
}

func (BackfillReply) isReply() {}

// Validate checks the counts and the run id.
func (r BackfillReply) Validate() *Error {
	if err := checkNonNegative("succeeded", r.Succeeded); err != nil {
		return err
	}
	if err := checkNonNegative("failed", r.Failed); err != nil {
		return err
	}
	if err := checkNonNegative("skipped", r.Skipped); err != nil {
		return err
	}
	return checkID("run_id", r.RunID)
}

// checkPartitionList checks a request's list of partitions: at most
// MaxBackfillPartitions of them, each a partition, none repeated. what
// names the request in the error that says to split it.
func checkPartitionList(field string, parts []string, what string) *Error {
	if n := len(parts); n > MaxBackfillPartitions {
		return fieldErrorf(field, "%s has %d entries; the limit is %d: split the %s", field, n, MaxBackfillPartitions, what)
	}
	seen := make(map[string]int, len(parts))
	for i, p := range parts {
		// Field names are built for errors only: a list has up to
		// MaxBackfillPartitions of them.
		if checkPartition(field, p, false) != nil {
			return checkPartition(indexed(field, i), p, false)
		}
		if j, dup := seen[p]; dup {
			f := indexed(field, i)
			return fieldErrorf(f, "%s repeats %s", f, indexed(field, j))
		}
		seen[p] = i
	}
	return nil
}
