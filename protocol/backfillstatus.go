package protocol

import "time"

// MaxBackfillWaitMS is the longest a BackfillStatusRequest may ask to wait
// for a change, in milliseconds: well within a coordinator's request
// timeout, so a waiting request is answered, not abandoned.
const MaxBackfillWaitMS = 15_000

// BackfillStatusRequest asks where a backfill stands (verb
// backfill_status). Any coordinator answers it, from the backfill's
// record, so a client follows a backfill whichever coordinator drives it
// and across its driver's death.
//
// With AfterRevision set, the reply waits (up to WaitMS) until the record
// has a revision past it, so a follower learns of progress as it is
// recorded without asking over and over: a long poll.
type BackfillStatusRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// ID is the backfill's id, as the backfill reply gave it (RunID).
	ID string `json:"id"`
	// AfterRevision, when not 0, asks for the record once its revision is
	// past this one (a BackfillStatusReply's Revision).
	AfterRevision uint64 `json:"after_revision,omitempty"`
	// WaitMS bounds how long the reply waits for such a revision, 0 to
	// MaxBackfillWaitMS milliseconds; then the record is sent as it is.
	WaitMS int64 `json:"wait_ms,omitempty"`
}

// Verb returns VerbBackfillStatus.
func (BackfillStatusRequest) Verb() string { return VerbBackfillStatus }
func (BackfillStatusRequest) isRequest()   {}

// Validate checks the version, the id and the wait.
func (r BackfillStatusRequest) Validate() *Error {
	if err := checkVersion(r.V); err != nil {
		return err
	}
	if err := checkBackfillID("id", r.ID); err != nil {
		return err
	}
	if r.WaitMS < 0 || r.WaitMS > MaxBackfillWaitMS {
		return fieldErrorf("wait_ms", "wait_ms %d is outside 0..%d", r.WaitMS, MaxBackfillWaitMS)
	}
	return nil
}

// BackfillStatusReply answers a BackfillStatusRequest: the backfill's
// record, but for its partition list and which partitions were counted.
type BackfillStatusReply struct {
	// ID is the backfill's id.
	ID string `json:"id"`
	// Request is what was asked, partitions aside.
	Request BackfillSpec `json:"request"`
	// Total is the number of partitions.
	Total int `json:"total"`
	// State is StateRunning, or the terminal state it ended in (see
	// BackfillRecord).
	State State `json:"state"`
	// Coordinator is the coordinator driving it.
	Coordinator string `json:"coordinator"`
	// BackfillCounts are the partitions counted so far: all of them once
	// State is terminal.
	BackfillCounts
	// Halted is set once a partition failed with OnErrorHalt.
	Halted bool `json:"halted,omitempty"`
	// Errors holds the errors of the first failed partitions (at most
	// MaxBackfillErrors), by partition.
	Errors map[string]*Error `json:"errors,omitempty"`
	// ErrorsOmitted counts the failed partitions whose errors were not kept.
	ErrorsOmitted int `json:"errors_omitted,omitempty"`
	// Error is why the backfill as a whole failed or was cancelled.
	Error *Error `json:"error,omitempty"`
	// CreatedAt is when the backfill was accepted.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when its record was last written.
	UpdatedAt time.Time `json:"updated_at"`
	// Revision is the record's revision: ask for the next change with
	// AfterRevision.
	Revision uint64 `json:"revision"`
}

func (BackfillStatusReply) isReply() {}

// Validate checks the reply.
func (r BackfillStatusReply) Validate() *Error {
	if err := checkBackfillID("id", r.ID); err != nil {
		return err
	}
	if err := r.Request.validate("request"); err != nil {
		return err
	}
	if r.Total < 1 || r.Total > MaxBackfillPartitions {
		return fieldErrorf("total", "total is %d; a backfill has 1 to %d partitions", r.Total, MaxBackfillPartitions)
	}
	if !backfillStateOK(r.State) {
		return fieldErrorf("state", "state %s is not a backfill state (running, completed, failed, cancelled)", quote(string(r.State)))
	}
	if err := checkID("coordinator", r.Coordinator); err != nil {
		return err
	}
	if err := r.BackfillCounts.validate(r.Total); err != nil {
		return err
	}
	if err := checkBackfillErrors(r.Errors, r.ErrorsOmitted, r.Failed); err != nil {
		return err
	}
	if r.Error != nil {
		if err := r.Error.validate("error"); err != nil {
			return err
		}
	}
	if err := checkTime("created_at", r.CreatedAt); err != nil {
		return err
	}
	if err := checkTime("updated_at", r.UpdatedAt); err != nil {
		return err
	}
	if r.Revision == 0 {
		return fieldErrorf("revision", "revision is 0: a stored record has a positive revision")
	}
	return nil
}

// BackfillStatusOf is the reply that tells rec, read at revision rev.
func BackfillStatusOf(rec BackfillRecord, rev uint64) BackfillStatusReply {
	return BackfillStatusReply{ID: rec.ID, Request: rec.Request, Total: rec.Total, State: rec.State, Coordinator: rec.Coordinator,
		BackfillCounts: rec.BackfillCounts, Halted: rec.Halted, Errors: rec.Errors, ErrorsOmitted: rec.ErrorsOmitted, Error: rec.Error,
		CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, Revision: rev}
}
