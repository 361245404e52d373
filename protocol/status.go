package protocol

import "time"

// State is where an asset's partition, a run or a job stands.
type State string

// The states. A partition is StateNotFound until first requested.
const (
	StateScheduled State = "scheduled" // waiting for its ScheduledAt
	StatePending   State = "pending"   // accepted, waiting for a worker or its dependencies
	StateRunning   State = "running"   // executing on a worker
	StateCompleted State = "completed" // materialized; the result can be fetched
	StateFailed    State = "failed"    // failed; Error says why
	StateCancelled State = "cancelled" // cancelled before it completed
	StateNotFound  State = "not_found" // never run, or invalidated
	// StateWaitingApproval and StateWaitingSignal are an asset's gate
	// waiting, before the asset runs, for an approval or a signal (see
	// ApproveRequest, SignalRequest). (Added within Version 1.)
	StateWaitingApproval State = "waiting_approval"
	StateWaitingSignal   State = "waiting_signal"
)

func (s State) check(field string) *Error {
	switch s {
	case StateScheduled, StatePending, StateRunning, StateCompleted, StateFailed, StateCancelled, StateNotFound,
		StateWaitingApproval, StateWaitingSignal:
		return nil
	}
	return fieldErrorf(field, "%s %s is not a known state", field, quote(string(s)))
}

// StatusRequest asks where an asset's partition stands (verb status).
type StatusRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partition is the partition; "" means DefaultPartition.
	Partition string `json:"partition,omitempty"`
}

// Verb returns VerbStatus.
func (StatusRequest) Verb() string { return VerbStatus }
func (StatusRequest) isRequest()   {}

// Validate checks the version, names and partition.
func (r StatusRequest) Validate() *Error {
	return checkTarget(r.V, r.Pipeline, r.Asset, r.Partition)
}

// StatusReply answers a StatusRequest; it mirrors the library's status.
type StatusReply struct {
	// State is where the partition stands.
	State State `json:"state"`
	// Partition is the resolved partition.
	Partition string `json:"partition"`
	// RunID is the run of the latest attempt (ended or not).
	RunID string `json:"run_id,omitempty"`
	// CompletedAt is when the latest attempt ended.
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	// DurationMS is how long the latest attempt took, in milliseconds.
	DurationMS int64 `json:"duration_ms,omitempty"`
	// Storage names the backend holding the value.
	Storage string `json:"storage,omitempty"`
	// Error is why the latest attempt failed, for StateFailed and
	// StateCancelled.
	Error *Error `json:"error,omitempty"`
	// Scatter counts the items of a scatter asset.
	Scatter *ScatterStatus `json:"scatter,omitempty"`
	// Value describes the value get returns, which a failed later
	// attempt leaves in place; absent when there is none.
	Value *ValueStatus `json:"value,omitempty"`
	// Gate is the asset's gate in the latest attempt, while it waits and
	// once decided until the asset has run. (Added within Version 1.)
	Gate *GateStatus `json:"gate,omitempty"`
	// ScheduledAt is when the earliest scheduled run of the partition
	// starts, if one is scheduled. State is then StateScheduled and RunID
	// that run's, unless an attempt is pending or running. (Added within
	// Version 1: a client that predates it refuses a reply that has it.)
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
}

// ValueStatus describes a materialized value in a StatusReply.
type ValueStatus struct {
	// RunID is the run that computed it.
	RunID string `json:"run_id"`
	// CompletedAt is when that run's attempt ended.
	CompletedAt time.Time `json:"completed_at"`
	// Storage names the backend holding it.
	Storage string `json:"storage"`
	// Size is its length in bytes.
	Size int64 `json:"size"`
}

func (v *ValueStatus) validate(prefix string) *Error {
	if err := checkID(prefix+"run_id", v.RunID); err != nil {
		return err
	}
	if err := checkTime(prefix+"completed_at", v.CompletedAt); err != nil {
		return err
	}
	if err := checkName(prefix+"storage", v.Storage); err != nil {
		return err
	}
	return checkNonNegative(prefix+"size", v.Size)
}

func (StatusReply) isReply() {}

// Validate checks the reply.
func (r StatusReply) Validate() *Error {
	if err := r.State.check("state"); err != nil {
		return err
	}
	if err := checkPartition("partition", r.Partition, false); err != nil {
		return err
	}
	if r.RunID != "" {
		if err := checkID("run_id", r.RunID); err != nil {
			return err
		}
	}
	if r.CompletedAt != nil {
		if err := checkTime("completed_at", *r.CompletedAt); err != nil {
			return err
		}
	}
	if r.ScheduledAt != nil {
		if err := checkTime("scheduled_at", *r.ScheduledAt); err != nil {
			return err
		}
	}
	if err := checkNonNegative("duration_ms", r.DurationMS); err != nil {
		return err
	}
	if err := checkOptionalName("storage", r.Storage); err != nil {
		return err
	}
	if r.Error != nil {
		if err := r.Error.validate("error"); err != nil {
			return err
		}
	}
	if r.Scatter != nil {
		if err := r.Scatter.validate("scatter"); err != nil {
			return err
		}
	}
	if r.Gate != nil {
		if err := r.Gate.validate("gate."); err != nil {
			return err
		}
	}
	if r.Value != nil {
		return r.Value.validate("value.")
	}
	return nil
}

// ScatterStatus counts the items of a scatter asset.
type ScatterStatus struct {
	// Total is the number of items.
	Total int `json:"total"`
	// Completed is the number of items that succeeded.
	Completed int `json:"completed"`
	// Failed is the number of items that failed.
	Failed int `json:"failed"`
	// Cancelled is the number of items stopped, or never started, because
	// the run ended (a cancel, a timeout).
	Cancelled int `json:"cancelled"`
	// Pending is the number of items not yet finished.
	Pending int `json:"pending"`
	// FailedItems lists the first failed items, in item order, once the
	// asset has ended: at most MaxListedFailures.
	FailedItems []ScatterFailure `json:"failed_items,omitempty"`
}

// MaxListedFailures is the most failed items a ScatterStatus lists.
const MaxListedFailures = 100

// ScatterFailure is a failed item of a scatter and its error.
type ScatterFailure struct {
	Item  string `json:"item"`
	Error *Error `json:"error"`
}

func (s *ScatterStatus) validate(field string) *Error {
	for _, c := range []struct {
		name string
		n    int
	}{{"total", s.Total}, {"completed", s.Completed}, {"failed", s.Failed}, {"cancelled", s.Cancelled}, {"pending", s.Pending}} {
		if err := checkNonNegative(field+"."+c.name, c.n); err != nil {
			return err
		}
	}
	if len(s.FailedItems) > MaxListedFailures {
		return fieldErrorf(field+".failed_items", "%s.failed_items lists %d items; at most %d", field, len(s.FailedItems), MaxListedFailures)
	}
	for i, f := range s.FailedItems {
		if f.Item == "" || f.Error == nil {
			return fieldErrorf(indexed(field+".failed_items", i), "%s needs an item and its error", indexed(field+".failed_items", i))
		}
	}
	return nil
}
