package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Task asks a worker to execute one asset for one partition. Coordinators
// publish it to TaskSubject(pipeline, priority) with ID as the message's
// dedupe id (Nats-Msg-Id), so publishing the same task twice delivers it
// once; the worker acks it only after the result and its metadata are
// durable, and publishes a Completion.
type Task struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// ID identifies this attempt of this task across the fleet; see TaskID.
	ID string `json:"id"`
	// RunID is the run the task belongs to.
	RunID string `json:"run_id"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset to execute.
	Asset string `json:"asset"`
	// Partition is the resolved partition (never "").
	Partition string `json:"partition"`
	// Priority is the priority the task was published at.
	Priority int `json:"priority,omitempty"`
	// Force executes even if the partition is materialized.
	Force bool `json:"force,omitempty"`
	// Storage names the backend for the result; "" means the asset's or
	// the fleet's default.
	Storage string `json:"storage,omitempty"`
	// TimeoutMS bounds the execution, in milliseconds; 0 means the
	// asset's default.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Deadline is when the whole run times out, if it has a deadline; a
	// worker does not start a task past it.
	Deadline *time.Time `json:"deadline,omitempty"`
	// Deps are the dependencies' results, ready to load.
	Deps []DepRef `json:"deps,omitempty"`
	// Attempt counts the executions of this task, from 1; retries after a
	// failure are new tasks with the next attempt (and a new ID).
	// Redeliveries of the same message keep it.
	Attempt int `json:"attempt"`
	// EnqueuedAt is when the coordinator published the task.
	EnqueuedAt time.Time `json:"enqueued_at"`
	// RecordRev is the revision of the materialization record the
	// coordinator wrote (pending) when it queued the task; 0 if unknown. A
	// worker replaces that revision directly instead of reading the record
	// first, and reads it only if it changed.
	RecordRev uint64 `json:"record_rev,omitempty"`
	// TraceParent is the W3C trace context of the run's trace (see
	// package internal/tracing), or "" when it is not traced.
	TraceParent string `json:"traceparent,omitempty"`
}

// Validate checks every field: version, ids, names, the resolved partition,
// priority, storage, TimeoutMS >= 0, every dependency (none repeated),
// Attempt >= 1 and the times.
func (t Task) Validate() *Error {
	if err := checkVersion(t.V); err != nil {
		return err
	}
	if err := checkTaskID("id", t.ID); err != nil {
		return err
	}
	if err := checkID("run_id", t.RunID); err != nil {
		return err
	}
	if err := checkName("pipeline", t.Pipeline); err != nil {
		return err
	}
	if err := checkName("asset", t.Asset); err != nil {
		return err
	}
	if err := checkPartition("partition", t.Partition, false); err != nil {
		return err
	}
	if err := checkPriority("priority", t.Priority); err != nil {
		return err
	}
	if err := checkOptionalName("storage", t.Storage); err != nil {
		return err
	}
	if err := checkNonNegative("timeout_ms", t.TimeoutMS); err != nil {
		return err
	}
	if t.Deadline != nil {
		if err := checkTime("deadline", *t.Deadline); err != nil {
			return err
		}
	}
	// Field names are built only for an error: checking a valid task
	// allocates nothing per dependency.
	var seen map[[2]string]int
	if len(t.Deps) > 8 {
		seen = make(map[[2]string]int, len(t.Deps))
	}
	for i := range t.Deps {
		d := &t.Deps[i]
		if d.validate("") != nil {
			return d.validate(indexed("deps", i) + ".")
		}
		j, dup := -1, false
		if seen != nil {
			key := [2]string{d.Asset, d.Partition}
			if j, dup = seen[key]; !dup {
				seen[key] = i
			}
		} else {
			for k := range i {
				if t.Deps[k].Asset == d.Asset && t.Deps[k].Partition == d.Partition {
					j, dup = k, true
					break
				}
			}
		}
		if dup {
			field := indexed("deps", i)
			return fieldErrorf(field, "%s repeats %s (asset %q, same partition)", field, indexed("deps", j), d.Asset)
		}
	}
	if t.Attempt < 1 {
		return fieldErrorf("attempt", "attempt is %d; attempts count from 1", t.Attempt)
	}
	if err := checkTraceParent("traceparent", t.TraceParent); err != nil {
		return err
	}
	return checkTime("enqueued_at", t.EnqueuedAt)
}

// EncodeTask validates t and encodes it, in at most MaxMessageBytes less
// MaxHeaderBytes (room for the headers it is published with).
func EncodeTask(t Task) ([]byte, *Error) {
	return encodeFast(&t, taskSize(&t), appendTask, MaxMessageBytes-MaxHeaderBytes)
}

// DecodeTask decodes and validates a task, with the rules of DecodeRequest
// and MaxMessageBytes.
func DecodeTask(data []byte) (Task, *Error) {
	return decodeFast(data, MaxMessageBytes, parseTask)
}

// DepRef is one dependency's result as a task receives it.
type DepRef struct {
	// Asset names the dependency.
	Asset string `json:"asset"`
	// Partition is the dependency's resolved partition.
	Partition string `json:"partition"`
	ResultRef
}

func (d DepRef) validate(prefix string) *Error {
	if err := checkName(prefix+"asset", d.Asset); err != nil {
		return err
	}
	if err := checkPartition(prefix+"partition", d.Partition, false); err != nil {
		return err
	}
	return d.ResultRef.validate(prefix)
}

// TaskID returns the conventional task id of an attempt at an asset's
// partition in a run: "<runID>.<asset>.<digest>.<attempt>", where digest is
// the first 128 bits of the partition's SHA-256 in hex (partitions are not
// subject-safe). The same inputs always give the same id, so a republished
// task is deduplicated, while a retry (the next attempt) is not. It panics
// if runID is not a ValidID, asset not a ValidName or attempt < 1.
func TaskID(runID, asset, partition string, attempt int) string {
	if err := checkID("run_id", runID); err != nil {
		panic("protocol: " + err.Message)
	}
	if err := checkName("asset", asset); err != nil {
		panic("protocol: " + err.Message)
	}
	if attempt < 1 {
		panic("protocol: attempt " + strconv.Itoa(attempt) + " is below 1")
	}
	sum := sha256.Sum256([]byte(partition))
	return runID + "." + asset + "." + hex.EncodeToString(sum[:16]) + "." + strconv.Itoa(attempt)
}

// checkTraceParent accepts "" or a W3C traceparent's characters (lowercase
// hex digits and dashes), at most 128 of them.
func checkTraceParent(field, s string) *Error {
	if len(s) > 128 {
		return fieldErrorf(field, "%s is %d bytes; a traceparent is 55", field, len(s))
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r == '-') {
			return fieldErrorf(field, "%s %q is not a W3C traceparent", field, s)
		}
	}
	return nil
}
