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

// InvalidateRequest deletes a materialized result, and with Cascade the
// results of everything downstream of it (verb invalidate).
type InvalidateRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partition is the partition; "" means DefaultPartition.
	Partition string `json:"partition,omitempty"`
	// Cascade also invalidates the assets that depend on this one.
	Cascade bool `json:"cascade,omitempty"`
}

// Verb returns VerbInvalidate.
func (InvalidateRequest) Verb() string { return VerbInvalidate }
func (InvalidateRequest) isRequest()   {}

// Validate checks the version, names and partition.
func (r InvalidateRequest) Validate() *Error {
	return checkTarget(r.V, r.Pipeline, r.Asset, r.Partition)
}

// InvalidateReply answers an InvalidateRequest.
type InvalidateReply struct {
	// Count is the number of results invalidated.
	Count int `json:"count"`
}

func (InvalidateReply) isReply() {}

// Validate checks that the count is not negative.
func (r InvalidateReply) Validate() *Error { return checkNonNegative("count", r.Count) }
