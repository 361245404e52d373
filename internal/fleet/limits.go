package fleet

import (
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

// Default limits of the fleet's streams (see Limits): protocol's.
const (
	TaskMaxAgeDefault         = protocol.TaskMaxAgeDefault
	TaskMaxBytesDefault       = protocol.TaskMaxBytesDefault
	TaskMaxMsgsDefault        = protocol.TaskMaxMsgsDefault
	CompletionMaxBytesDefault = protocol.CompletionMaxBytesDefault
	ScheduleHorizonDefault    = protocol.ScheduleHorizonDefault
)

// scheduleAgeMargin is how much longer than the horizon the schedules
// stream keeps a message: a schedule fires at its time, so it must not
// expire before.
const scheduleAgeMargin = 24 * time.Hour

// Limits bounds what the fleet's streams, buckets and object stores hold
// (see protocol.StreamLimits).
type Limits = protocol.StreamLimits

// WithLimits sets the limits of the streams Ensure creates (zero fields:
// the defaults). Check them with Limits.Check first. A ScheduleHorizon
// set here is also checked against an existing schedules stream: a
// coordinator, which schedules runs, sets it; a worker need not.
func WithLimits(l Limits) Option {
	return func(s *settings) { s.limits, s.horizon = l, l.ScheduleHorizon > 0 }
}
