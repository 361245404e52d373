package fleet

import (
	"fmt"
	"time"
)

// Default limits of the fleet's streams (see Limits).
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
	// ScheduleHorizonDefault is how far ahead a run may be scheduled: a
	// year and a day.
	ScheduleHorizonDefault = 366 * 24 * time.Hour
)

// scheduleAgeMargin is how much longer than the horizon the schedules
// stream keeps a message: a schedule fires at its time, so it must not
// expire before.
const scheduleAgeMargin = 24 * time.Hour

// Limits bounds what the fleet's streams hold; a zero field takes its
// default. A full tasks stream refuses new tasks (the run fails with an
// error saying so) instead of dropping queued ones. The schedules stream
// is bounded by age only: JetStream's message scheduling needs
// discard-old, so a count limit would drop the oldest schedules unseen.
// Start-up creates missing streams with these limits and never changes an
// existing stream's (an operator's nats stream edit is kept, and logged
// where it differs).
type Limits struct {
	// TaskMaxAge drops a task no worker took within it. Defaults to
	// TaskMaxAgeDefault (7 days).
	TaskMaxAge time.Duration
	// TaskMaxBytes and TaskMaxMsgs bound the queued tasks. Default to
	// TaskMaxBytesDefault (1 GiB) and TaskMaxMsgsDefault (10 million).
	TaskMaxBytes, TaskMaxMsgs int64
	// CompletionMaxBytes bounds the completions stream. Defaults to
	// CompletionMaxBytesDefault (256 MiB).
	CompletionMaxBytes int64
	// ScheduleHorizon is how far ahead a run may be scheduled; the
	// schedules stream keeps a message a day longer. Defaults to
	// ScheduleHorizonDefault (366 days).
	ScheduleHorizon time.Duration
}

// WithDefaults returns l with its zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
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
	return l
}

// Check reports a limit JetStream cannot use: none may be negative.
func (l Limits) Check() error {
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"task max age", int64(l.TaskMaxAge)}, {"task max bytes", l.TaskMaxBytes}, {"task max messages", l.TaskMaxMsgs},
		{"completion max bytes", l.CompletionMaxBytes}, {"schedule horizon", int64(l.ScheduleHorizon)},
	} {
		if c.v < 0 {
			return fmt.Errorf("fleet limits: %s is negative (%d); 0 means the default", c.name, c.v)
		}
	}
	return nil
}

// WithLimits sets the limits of the streams Ensure creates (zero fields:
// the defaults). Check them with Limits.Check first. A ScheduleHorizon
// set here is also checked against an existing schedules stream: a
// coordinator, which schedules runs, sets it; a worker need not.
func WithLimits(l Limits) Option {
	return func(s *settings) { s.limits, s.horizon = l, l.ScheduleHorizon > 0 }
}
