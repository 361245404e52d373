package protocol

import "time"

// Completion reports how a task ended. A worker publishes it to
// DoneSubject(pipeline) after the result and its metadata are durable (or
// after giving up), with the task's ID as dedupe id, then acks the task.
// Either OK is true and the ResultRef fields locate the result, or OK is
// false and Error says why.
type Completion struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// TaskID is the ID of the task that ended.
	TaskID string `json:"task_id"`
	// RunID is the task's run.
	RunID string `json:"run_id"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partition is the task's partition.
	Partition string `json:"partition"`
	// OK is true when the asset was materialized.
	OK bool `json:"ok"`
	// Error is why the task failed, when OK is false.
	Error *Error `json:"error,omitempty"`
	ResultRef
	// Worker is the id of the worker that ran the task.
	Worker string `json:"worker"`
	// Attempt is the task's attempt.
	Attempt int `json:"attempt"`
	// StartedAt is when execution began.
	StartedAt time.Time `json:"started_at"`
	// FinishedAt is when it ended.
	FinishedAt time.Time `json:"finished_at"`
	// DurationMS is how long execution took, in milliseconds, measured on
	// the worker's monotonic clock (so it may differ a little from
	// FinishedAt - StartedAt).
	DurationMS int64 `json:"duration_ms"`
}

// Validate checks every field, that exactly one of a result and an error is
// present, and that the times are in order.
func (c Completion) Validate() *Error {
	if err := checkVersion(c.V); err != nil {
		return err
	}
	if err := checkTaskID("task_id", c.TaskID); err != nil {
		return err
	}
	if err := checkID("run_id", c.RunID); err != nil {
		return err
	}
	if err := checkName("pipeline", c.Pipeline); err != nil {
		return err
	}
	if err := checkName("asset", c.Asset); err != nil {
		return err
	}
	if err := checkPartition("partition", c.Partition, false); err != nil {
		return err
	}
	if c.OK {
		if c.Error != nil {
			return fieldErrorf("error", "a completion with ok: true carries no error")
		}
		if err := c.ResultRef.validate(""); err != nil {
			return err
		}
	} else {
		if c.Error == nil {
			return fieldErrorf("error", "a completion with ok: false must say why in error")
		}
		if err := c.Error.validate("error"); err != nil {
			return err
		}
		if !c.ResultRef.empty() {
			return fieldErrorf("object_key", "a completion with ok: false carries no result")
		}
	}
	if err := checkID("worker", c.Worker); err != nil {
		return err
	}
	if c.Attempt < 1 {
		return fieldErrorf("attempt", "attempt is %d; attempts count from 1", c.Attempt)
	}
	if err := checkTime("started_at", c.StartedAt); err != nil {
		return err
	}
	if err := checkTime("finished_at", c.FinishedAt); err != nil {
		return err
	}
	if c.FinishedAt.Before(c.StartedAt) {
		return fieldErrorf("finished_at", "finished_at is before started_at")
	}
	return checkNonNegative("duration_ms", c.DurationMS)
}

// EncodeCompletion validates c and encodes it, in at most MaxMessageBytes
// less MaxHeaderBytes (room for the headers it is published with).
func EncodeCompletion(c Completion) ([]byte, *Error) {
	return encodeFast(&c, completionSize(&c), appendCompletion, MaxMessageBytes-MaxHeaderBytes)
}

// DecodeCompletion decodes and validates a completion, with the rules of
// DecodeRequest and MaxMessageBytes.
func DecodeCompletion(data []byte) (Completion, *Error) {
	return decodeFast(data, MaxMessageBytes, parseCompletion)
}
