package protocol

import (
	"fmt"
	"time"
)

// Default bounds of the fleet's streams, buckets and object stores (see
// StreamLimits).
const (
	// TaskMaxAgeDefault: a task no worker took within a week is dropped
	// from the queue (its run has long reached its deadline).
	TaskMaxAgeDefault = 7 * 24 * time.Hour
	// TaskMaxBytesDefault bounds the queued tasks' bytes: 1 GiB, some
	// millions of tasks.
	TaskMaxBytesDefault = 1 << 30
	// TaskMaxMsgsDefault bounds the queued task messages.
	TaskMaxMsgsDefault = 10_000_000
	// CompletionMaxBytesDefault bounds the completions stream (which also
	// drops them after an hour).
	CompletionMaxBytesDefault = 256 << 20
	// EventMaxBytesDefault bounds the telemetry events stream (which also
	// drops them after an hour).
	EventMaxBytesDefault = 256 << 20
	// ScatterMaxBytesDefault bounds the scatter bucket: the outcomes of
	// the batches of the scatters running (each dropped once its asset's
	// outcome is recorded).
	ScatterMaxBytesDefault = 1 << 30
	// ScheduleHorizonDefault is how far ahead a run may be scheduled: a
	// year and a day.
	ScheduleHorizonDefault = 366 * 24 * time.Hour
)

// StreamLimits bounds what the fleet's streams, buckets and object stores
// hold; a zero field takes its default. Daemons create what is missing
// with them and never change what exists (an operator's nats stream edit
// is kept, and logged where it differs), so give every daemon of a fleet
// the same.
//
// A full tasks stream refuses new tasks (the run fails with an error
// saying so) instead of dropping queued ones; so do the records bucket
// and the results object store, when bounded: a materialization that
// cannot be recorded or stored fails, and nothing recorded is dropped.
// The completions and events streams drop their oldest messages when full
// (they are also bounded by age); a full scatter bucket refuses new batch
// outcomes, and their batches wait in the queue until running scatters
// end and drop theirs. The schedules
// stream is bounded by age only: JetStream's message scheduling needs
// discard-old, so a size limit would drop the oldest schedules unseen.
type StreamLimits struct {
	// TaskMaxAge drops a task no worker took within it. Defaults to
	// TaskMaxAgeDefault.
	TaskMaxAge time.Duration
	// TaskMaxBytes and TaskMaxMsgs bound the queued tasks. Default to
	// TaskMaxBytesDefault and TaskMaxMsgsDefault.
	TaskMaxBytes, TaskMaxMsgs int64
	// CompletionMaxBytes bounds the completions stream. Defaults to
	// CompletionMaxBytesDefault.
	CompletionMaxBytes int64
	// EventMaxBytes bounds the events stream. Defaults to
	// EventMaxBytesDefault.
	EventMaxBytes int64
	// RecordsMaxBytes bounds the materialization records bucket. Defaults
	// to 0: no bound (a record per asset and partition, about half a
	// kilobyte each, or up to 4 KiB with an inline value).
	RecordsMaxBytes int64
	// ResultsMaxBytes bounds the JetStream object store of results.
	// Defaults to 0: no bound (results are kept until invalidated or
	// replaced).
	ResultsMaxBytes int64
	// ScatterMaxBytes bounds the scatter bucket. Defaults to
	// ScatterMaxBytesDefault.
	ScatterMaxBytes int64
	// ScheduleHorizon is how far ahead a run may be scheduled; the
	// schedules stream keeps a message a day longer. Defaults to
	// ScheduleHorizonDefault.
	ScheduleHorizon time.Duration
}

// WithDefaults returns l with its zero fields set to their defaults.
func (l StreamLimits) WithDefaults() StreamLimits {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	if l.TaskMaxAge == 0 {
		l.TaskMaxAge = TaskMaxAgeDefault
	}
	if l.ScheduleHorizon == 0 {
		l.ScheduleHorizon = ScheduleHorizonDefault
	}
	def(&l.TaskMaxBytes, TaskMaxBytesDefault)
	def(&l.TaskMaxMsgs, TaskMaxMsgsDefault)
	def(&l.CompletionMaxBytes, CompletionMaxBytesDefault)
	def(&l.EventMaxBytes, EventMaxBytesDefault)
	def(&l.ScatterMaxBytes, ScatterMaxBytesDefault)
	return l
}

// Check reports a limit JetStream cannot use: none may be negative.
func (l StreamLimits) Check() error {
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"task max age", int64(l.TaskMaxAge)}, {"task max bytes", l.TaskMaxBytes}, {"task max messages", l.TaskMaxMsgs},
		{"completion max bytes", l.CompletionMaxBytes}, {"event max bytes", l.EventMaxBytes},
		{"records max bytes", l.RecordsMaxBytes}, {"results max bytes", l.ResultsMaxBytes}, {"scatter max bytes", l.ScatterMaxBytes},
		{"schedule horizon", int64(l.ScheduleHorizon)},
	} {
		if c.v < 0 {
			return fmt.Errorf("stream limits: %s is negative (%d); 0 means the default", c.name, c.v)
		}
	}
	return nil
}
