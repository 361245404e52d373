package flowstone

import (
	"encoding/json"
	"time"
)

// State is where an asset/partition stands. Its text form is the API
// proposal's name ("completed", "running", ...).
type State string

// The states of a materialization. StateScheduled is Status's only: a
// run of the asset waits for its time on the fleet (ScheduledAt); no
// record holds it. StateWaitingApproval and StateWaitingSignal are an
// asset's gate (Approval, WaitForSignal) waiting before the asset runs:
// nothing executes meanwhile.
const (
	StateNotFound        State = "not_found"
	StateScheduled       State = "scheduled"
	StatePending         State = "pending"
	StateWaitingApproval State = "waiting_approval"
	StateWaitingSignal   State = "waiting_signal"
	StateRunning         State = "running"
	StateCompleted       State = "completed"
	StateFailed          State = "failed"
	StateCancelled       State = "cancelled"
)

// String returns the state's name.
func (s State) String() string { return string(s) }

// Terminal reports whether the state is final for its run.
func (s State) Terminal() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
}

// Waiting reports whether the state is a gate waiting for an approval or
// a signal.
func (s State) Waiting() bool {
	return s == StateWaitingApproval || s == StateWaitingSignal
}

// InlineLimit is the largest result, in bytes, kept inside its record
// instead of the object store (Storage is then InlineStorage): a small
// result costs no object write and is read with the record.
const InlineLimit = 4096

// InlineStorage is the Storage of a result kept inside its record.
const InlineStorage = "inline"

// Encodings of a stored result.
const (
	EncodingJSON = "json" // the codec's output
	EncodingRaw  = "raw"  // bytes the asset returned as []byte or io.Reader
)

// Materialization is the metadata record of one asset/partition, kept in
// the kv store by pipeline, asset and partition. It tells two things apart: the
// latest attempt to materialize it (State, RunID, Attempt, Error, ...) and
// the last good value (Value), which a failed, timed-out or cancelled
// attempt leaves in place. Records change only through the transitions of
// one writer (see the package documentation, "Records"), by compare-and-set;
// the object a value points to is written before the record that points to
// it.
type Materialization struct {
	Pipeline  string `json:"pipeline"`
	Asset     string `json:"asset"`
	Partition string `json:"partition"`
	// State is the latest attempt's: pending (queued or waiting for its
	// dependencies), waiting at its gate, running, or how it ended.
	State State `json:"state"`
	// RunID is the run of the latest attempt.
	RunID string `json:"run_id"`
	// QueuedBy names the coordinator that queued the attempt's task on the
	// fleet ("" embedded, or while a run only waits for dependencies).
	QueuedBy string `json:"queued_by,omitempty"`
	// Worker names the process that ran (or runs) the attempt.
	Worker string `json:"worker,omitempty"`
	// Attempt counts the executions of RunID's task that claimed the
	// record, 1 for the first: a later claim always has a higher number,
	// so an execution that finds another number in the record knows it
	// has been taken over.
	Attempt int `json:"attempt,omitempty"`
	// LeaseUntil is when a running attempt's claim lapses unless its
	// executor renews it; past it (and a margin for clock skew) another
	// execution may take the record over.
	LeaseUntil *time.Time `json:"lease_until,omitempty"`
	// StartedAt and CompletedAt bound the latest attempt (CompletedAt is
	// when it ended, however it ended); DurationMS is their difference.
	StartedAt   *time.Time `json:"started_at,omitempty"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	DurationMS  int64      `json:"duration_ms,omitempty"`
	// Error says why the latest attempt failed or was cancelled.
	Error *Error `json:"error,omitempty"`
	// Scatter counts a scatter asset's items in the latest attempt.
	Scatter *ScatterStatus `json:"scatter,omitempty"`
	// Gate is the asset's gate (Approval, WaitForSignal) in the latest
	// attempt: set while it waits, and once it is decided until the asset
	// has run (a rejected or expired gate keeps it, with the decision).
	Gate *Gate `json:"gate,omitempty"`
	// Value is the last good result: the latest completed attempt's, nil
	// if none completed (or the record was invalidated since).
	Value *Value `json:"value,omitempty"`
}

// Value is a materialized result: where its bytes are, and what it was
// computed from.
type Value struct {
	// RunID is the run that computed it.
	RunID     string `json:"run_id"`
	Storage   string `json:"storage"`
	ObjectKey string `json:"object_key,omitempty"`
	Encoding  string `json:"encoding,omitempty"`
	Size      int64  `json:"size,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	// Inline holds a small result's bytes (Storage is InlineStorage).
	Inline []byte `json:"inline,omitempty"`
	// CompletedAt is when the attempt that computed it ended.
	CompletedAt time.Time `json:"completed_at"`
	// DurationMS is how long that attempt ran.
	DurationMS int64 `json:"duration_ms,omitempty"`
	// Upstream names the exact dependency values it was computed from.
	Upstream []Lineage `json:"upstream,omitempty"`
}

// Materialized reports whether the record holds a readable value.
func (m *Materialization) Materialized() bool { return m != nil && m.Value != nil }

// Lineage names the exact upstream result a materialization was computed
// from.
type Lineage struct {
	Asset     string `json:"asset"`
	Partition string `json:"partition"`
	RunID     string `json:"run_id"`
}

// materializationKey is the kv key of an asset/partition's record:
// "mat.<pipeline>.<asset>.<PartitionToken(partition)>".
func materializationKey(pipeline, asset, partition string) string {
	return recordPrefix(pipeline, asset) + PartitionToken(partition)
}

// recordPrefix begins the key of every record of an asset: its
// materializationKey without the partition's token. Names have no dots and
// tokens none either, so the prefix lists that asset's records only.
func recordPrefix(pipeline, asset string) string {
	return "mat." + pipeline + "." + asset + "."
}

// objectKey is where a run's result is stored:
// "<pipeline>/<asset>/<PartitionToken(partition)>/<runID>".
func objectKey(pipeline, asset, partition, runID string) string {
	return pipeline + "/" + asset + "/" + PartitionToken(partition) + "/" + runID
}

// marshalRecord encodes a record for the kv store. Its output, and its
// errors, are json.Marshal's: appendRecord writes the common case without
// reflection and anything it is unsure of goes to json.Marshal.
func marshalRecord(m *Materialization) ([]byte, error) {
	if m != nil {
		if b, ok := appendRecord(make([]byte, 0, recordSizeHint(m)), m); ok {
			return b, nil
		}
	}
	return json.Marshal(m)
}

// unmarshalRecord decodes a record read from the kv store.
func unmarshalRecord(b []byte) (*Materialization, error) {
	var m Materialization
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, wrapError(TypeStorageError, err, nil, "corrupt materialization record: %v", err)
	}
	return &m, nil
}
