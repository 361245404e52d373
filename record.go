package flowstone

import (
	"encoding/json"
	"time"
)

// State is where an asset/partition stands. Its text form is the API
// proposal's name ("completed", "running", ...).
type State string

// The states of a materialization.
const (
	StateNotFound  State = "not_found"
	StatePending   State = "pending"
	StateRunning   State = "running"
	StateCompleted State = "completed"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

// String returns the state's name.
func (s State) String() string { return string(s) }

// Terminal reports whether the state is final for its run.
func (s State) Terminal() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
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
// the kv store under MaterializationKey. It is written before and after every
// execution; the object it points to is written before the record that
// points to it.
type Materialization struct {
	Pipeline    string         `json:"pipeline"`
	Asset       string         `json:"asset"`
	Partition   string         `json:"partition"`
	State       State          `json:"state"`
	RunID       string         `json:"run_id"`
	Storage     string         `json:"storage,omitempty"`
	ObjectKey   string         `json:"object_key,omitempty"`
	Encoding    string         `json:"encoding,omitempty"`
	Size        int64          `json:"size,omitempty"`
	SHA256      string         `json:"sha256,omitempty"`
	Inline      []byte         `json:"inline,omitempty"`
	Worker      string         `json:"worker,omitempty"`
	Attempt     int            `json:"attempt,omitempty"`
	StartedAt   *time.Time     `json:"started_at,omitempty"`
	CompletedAt *time.Time     `json:"completed_at,omitempty"`
	DurationMS  int64          `json:"duration_ms,omitempty"`
	Error       *Error         `json:"error,omitempty"`
	Upstream    []Lineage      `json:"upstream,omitempty"`
	Scatter     *ScatterStatus `json:"scatter,omitempty"`
}

// Lineage names the exact upstream result a materialization was computed
// from.
type Lineage struct {
	Asset     string `json:"asset"`
	Partition string `json:"partition"`
	RunID     string `json:"run_id"`
}

// MaterializationKey is the kv key of an asset/partition's record:
// "mat.<pipeline>.<asset>.<PartitionToken(partition)>".
func MaterializationKey(pipeline, asset, partition string) string {
	return "mat." + pipeline + "." + asset + "." + PartitionToken(partition)
}

// ObjectKey is where a run's result is stored:
// "<pipeline>/<asset>/<PartitionToken(partition)>/<runID>".
func ObjectKey(pipeline, asset, partition, runID string) string {
	return pipeline + "/" + asset + "/" + PartitionToken(partition) + "/" + runID
}

// MarshalRecord encodes a record for the kv store. Its output, and its
// errors, are json.Marshal's: appendRecord writes the common case without
// reflection and anything it is unsure of goes to json.Marshal.
func MarshalRecord(m *Materialization) ([]byte, error) {
	if m != nil {
		if b, ok := appendRecord(make([]byte, 0, recordSizeHint(m)), m); ok {
			return b, nil
		}
	}
	return json.Marshal(m)
}

// UnmarshalRecord decodes a record read from the kv store.
func UnmarshalRecord(b []byte) (*Materialization, error) {
	var m Materialization
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, wrapError(TypeStorageError, err, nil, "corrupt materialization record: %v", err)
	}
	return &m, nil
}
