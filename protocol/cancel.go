package protocol

// CancelRequest cancels the running and scheduled executions of an asset's
// partition (verb cancel): running tasks have their context cancelled
// (broadcast on CancelSubject), pending and scheduled ones never start.
type CancelRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partition is the partition; "" means DefaultPartition.
	Partition string `json:"partition,omitempty"`
}

// Verb returns VerbCancel.
func (CancelRequest) Verb() string { return VerbCancel }
func (CancelRequest) isRequest()   {}

// Validate checks the version, names and partition.
func (r CancelRequest) Validate() *Error {
	return checkTarget(r.V, r.Pipeline, r.Asset, r.Partition)
}

// CancelReply answers a CancelRequest.
type CancelReply struct {
	// Cancelled is the number of executions cancelled (0 when nothing was
	// running or scheduled).
	Cancelled int `json:"cancelled"`
}

func (CancelReply) isReply() {}

// Validate checks that the count is not negative.
func (r CancelReply) Validate() *Error { return checkNonNegative("cancelled", r.Cancelled) }

// InvalidateRequest deletes materialized results, and with Cascade the
// results of everything downstream of them (verb invalidate), for one
// partition (Partition), several (Partitions) or every partition that has
// a record (All). At most one of the three is set.
//
// Partitions and All were added after the first release of Version 1: a
// coordinator that predates them refuses a request that sets them as
// malformed (unknown field), never misreads it, so they need no new
// version.
type InvalidateRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partition is the partition; "" means DefaultPartition, unless
	// Partitions or All is set.
	Partition string `json:"partition,omitempty"`
	// Partitions lists the partitions, 1 to MaxBackfillPartitions of
	// them, none empty or repeated.
	Partitions []string `json:"partitions,omitempty"`
	// All invalidates every partition of the asset that has a record
	// (with Cascade, of the asset or of any asset downstream of it).
	All bool `json:"all,omitempty"`
	// Cascade also invalidates the assets that depend on this one, for
	// each partition invalidated.
	Cascade bool `json:"cascade,omitempty"`
}

// Verb returns VerbInvalidate.
func (InvalidateRequest) Verb() string { return VerbInvalidate }
func (InvalidateRequest) isRequest()   {}

// Validate checks the version, names and partitions, and that at most one
// of Partition, Partitions and All is set.
func (r InvalidateRequest) Validate() *Error {
	if err := checkTarget(r.V, r.Pipeline, r.Asset, r.Partition); err != nil {
		return err
	}
	set := 0
	for _, on := range []bool{r.Partition != "", r.Partitions != nil, r.All} {
		if on {
			set++
		}
	}
	if set > 1 {
		return fieldErrorf("partitions", "partition, partitions and all are exclusive: set at most one")
	}
	if r.Partitions != nil {
		if len(r.Partitions) == 0 {
			return fieldErrorf("partitions", "partitions is empty: name at least one partition, or leave it out")
		}
		return checkPartitionList("partitions", r.Partitions, "invalidate")
	}
	return nil
}

// InvalidateReply answers an InvalidateRequest.
type InvalidateReply struct {
	// Count is the number of records deleted: one per asset and
	// partition that had a record, whatever it held.
	Count int `json:"count"`
}

func (InvalidateReply) isReply() {}

// Validate checks that the count is not negative.
func (r InvalidateReply) Validate() *Error { return checkNonNegative("count", r.Count) }
