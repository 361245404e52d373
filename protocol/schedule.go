package protocol

// ScheduledRun is a run to start later. A coordinator accepting a RunRequest
// with ScheduledAt publishes one to ScheduleSubject(runID) with the schedule
// time and the target StartSubject(pipeline); when it fires, a coordinator
// consuming StartSubjects plans the run then, with the dependencies as they
// are at that time. Cancelling purges the schedule subject.
type ScheduledRun struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// RunID is the id the run was given when it was accepted.
	RunID string `json:"run_id"`
	// Request is the accepted request, ScheduledAt included.
	Request RunRequest `json:"request"`
}

// Validate checks the run id and the request, which must be scheduled.
func (s ScheduledRun) Validate() *Error {
	if err := checkVersion(s.V); err != nil {
		return err
	}
	if err := checkID("run_id", s.RunID); err != nil {
		return err
	}
	if err := s.Request.Validate(); err != nil {
		if f, ok := err.Details["field"].(string); ok {
			err.Details["field"] = "request." + f
		}
		return err
	}
	if s.Request.ScheduledAt == nil {
		return fieldErrorf("request.scheduled_at", "a scheduled run's request has no scheduled_at")
	}
	return nil
}

// EncodeScheduledRun validates s and encodes it.
func EncodeScheduledRun(s ScheduledRun) ([]byte, *Error) { return encodeValid(s, MaxMessageBytes) }

// DecodeScheduledRun decodes and validates a scheduled run, with the rules
// of DecodeRequest and MaxMessageBytes.
func DecodeScheduledRun(data []byte) (ScheduledRun, *Error) {
	return decodeValid[ScheduledRun](data, MaxMessageBytes)
}
