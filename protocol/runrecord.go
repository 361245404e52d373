package protocol

import "time"

// RunRecord is a run as the coordinator keeps it in RunsBucket under
// RunKey(runID): what was asked, where it stands and how it ended. Clients
// watch it to learn when a run finishes; a restarted coordinator resumes the
// runs whose State is not terminal.
type RunRecord struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// RunID identifies the run.
	RunID string `json:"run_id"`
	// Request is the accepted request.
	Request RunRequest `json:"request"`
	// State is StateScheduled, StatePending, StateRunning, or a terminal
	// state (StateCompleted, StateFailed, StateCancelled).
	State State `json:"state"`
	// Cached is true when the target was already materialized.
	Cached bool `json:"cached,omitempty"`
	// Error is why the run failed or was cancelled.
	Error *Error `json:"error,omitempty"`
	// CreatedAt is when the coordinator accepted the run.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when the record last changed.
	UpdatedAt time.Time `json:"updated_at"`
	// Coordinator is the id of the coordinator driving the run.
	Coordinator string `json:"coordinator,omitempty"`
	// TraceParent is the W3C trace context of the request that made the
	// run, so that whichever coordinator drives it continues its trace.
	TraceParent string `json:"traceparent,omitempty"`
}

// RunKey is a run's key in RunsBucket.
func RunKey(runID string) string { return "run." + runID }

// LiveRunPrefix begins the keys of the live-run index in RunsBucket: a
// key LiveRunKey(runID) exists (value: when it was written, RFC 3339)
// from before a run's record is first written until after it is terminal,
// so coordinators find the runs to resume without reading every run
// record the bucket keeps.
const LiveRunPrefix = "live."

// LiveRunKey is a run's key in the live-run index.
func LiveRunKey(runID string) string { return LiveRunPrefix + runID }

// Terminal reports whether s is final.
func (s State) Terminal() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
}

// Validate checks the record.
func (r RunRecord) Validate() *Error {
	if r.V != Version {
		return Errorf(CodeUnsupportedVersion, "run record version %d, want %d", r.V, Version)
	}
	if err := ValidID(r.RunID); err != nil {
		return Errorf(CodeBadRequest, "run record: %v", err)
	}
	return checkTraceParent("traceparent", r.TraceParent)
}

// EncodeRunRecord validates and encodes a run record.
func EncodeRunRecord(r RunRecord) ([]byte, *Error) { return encodeValid(r, MaxMessageBytes) }

// DecodeRunRecord decodes and validates a run record.
func DecodeRunRecord(data []byte) (RunRecord, *Error) {
	return decodeValid[RunRecord](data, MaxMessageBytes)
}
