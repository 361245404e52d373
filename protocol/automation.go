package protocol

import (
	"time"
	"unicode/utf8"
)

// Automation: schedules and sensors (added within Version 1).
//
// A pipeline's schedules and sensors travel in its Manifest (ScheduleSpec,
// SensorSpec). Coordinators keep their state in AutomationBucket, one
// key each (AutomationKey), changed by compare-and-set, so that each
// schedule's tick fires once and each sensor's interval is evaluated once
// however many coordinators run. A sensor's function is the pipeline's
// Go code: the coordinator that claimed an interval asks a worker hosting
// the pipeline to evaluate it, with a SensorEvaluation on
// SensorSubject(pipeline), which the workers serve in queue group
// SensorQueueGroup, and starts the runs the SensorOutcome requests.

// AutomationBucket is the KV bucket of schedules' and sensors' states. It
// keeps keys without a time limit: a paused schedule, or a monthly one,
// keeps its state.
const AutomationBucket = "flowstone_automation"

// AutomationKey returns the AutomationBucket key of pipeline's schedule
// (kind "sched") or sensor (kind "sensor") name, "<kind>.<pipeline>.<name>".
// It panics if pipeline or name is not a ValidName.
func AutomationKey(kind, pipeline, name string) string {
	mustName(pipeline)
	if err := checkName("name", name); err != nil {
		panic("protocol: " + err.Message)
	}
	return kind + "." + pipeline + "." + name
}

// SensorSubjects matches every sensor subject.
const SensorSubjects = "flowstone.sensor.*"

// SensorQueueGroup is the queue group workers serve sensor subjects in: one
// worker hosting the pipeline evaluates each request.
const SensorQueueGroup = "flowstone_sensors"

// SensorSubject returns the subject on which the workers hosting pipeline
// evaluate its sensors, "flowstone.sensor.<pipeline>". It panics if
// pipeline is not a ValidName.
func SensorSubject(pipeline string) string {
	mustName(pipeline)
	return "flowstone.sensor." + pipeline
}

// Limits of automation messages.
const (
	// MaxCursorBytes is the longest sensor cursor.
	MaxCursorBytes = 16 << 10
	// MaxRunKeyBytes is the longest run key of a sensor's run.
	MaxRunKeyBytes = 1024
	// MaxSensorRuns is the most runs one evaluation requests.
	MaxSensorRuns = 1000
	// MaxCronBytes is the longest cron expression.
	MaxCronBytes = 256
)

// ScheduleSpec is a schedule as its pipeline declares it.
type ScheduleSpec struct {
	// Name names the schedule.
	Name string `json:"name"`
	// Cron is its cron expression.
	Cron string `json:"cron"`
	// TimeZone is the IANA zone of its times.
	TimeZone string `json:"time_zone"`
	// Assets are the assets it runs at each tick.
	Assets []string `json:"assets"`
	// Mapping is the partition a tick runs: "previous_day", "day",
	// "previous_hour", "hour" or "fixed:KEY".
	Mapping string `json:"mapping"`
	// CatchUp is its catch-up policy: "latest", "all" or "none".
	CatchUp string `json:"catch_up"`
}

func (s ScheduleSpec) validate(prefix string) *Error {
	if err := checkName(prefix+"name", s.Name); err != nil {
		return err
	}
	if s.Cron == "" || len(s.Cron) > MaxCronBytes {
		return fieldErrorf(prefix+"cron", "%scron must be 1 to %d bytes", prefix, MaxCronBytes)
	}
	if err := checkText(prefix+"cron", s.Cron); err != nil {
		return err
	}
	if err := checkText(prefix+"time_zone", s.TimeZone); err != nil {
		return err
	}
	if len(s.Assets) == 0 {
		return fieldErrorf(prefix+"assets", "%sassets is empty: a schedule runs at least one asset", prefix)
	}
	if err := checkNames(prefix+"assets", s.Assets); err != nil {
		return err
	}
	if err := checkText(prefix+"mapping", s.Mapping); err != nil {
		return err
	}
	switch s.CatchUp {
	case "latest", "all", "none":
	default:
		return fieldErrorf(prefix+"catch_up", "%scatch_up %s is not a policy (latest, all, none)", prefix, quote(s.CatchUp))
	}
	return nil
}

// SensorSpec is a sensor as its pipeline declares it (its function stays
// with the workers).
type SensorSpec struct {
	// Name names the sensor.
	Name string `json:"name"`
	// IntervalMS is how often it is evaluated, in milliseconds.
	IntervalMS int64 `json:"interval_ms"`
	// TimeoutMS bounds an evaluation, in milliseconds.
	TimeoutMS int64 `json:"timeout_ms"`
}

func (s SensorSpec) validate(prefix string) *Error {
	if err := checkName(prefix+"name", s.Name); err != nil {
		return err
	}
	if s.IntervalMS <= 0 {
		return fieldErrorf(prefix+"interval_ms", "%sinterval_ms must be positive", prefix)
	}
	if s.TimeoutMS <= 0 {
		return fieldErrorf(prefix+"timeout_ms", "%stimeout_ms must be positive", prefix)
	}
	return nil
}

// SensorEvaluation asks a worker to evaluate a sensor (on
// SensorSubject): the reply is a SensorOutcome.
type SensorEvaluation struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Sensor names the sensor.
	Sensor string `json:"sensor"`
	// Cursor is the cursor of the last good evaluation.
	Cursor string `json:"cursor,omitempty"`
	// Now is the evaluation's time, as the coordinator's clock tells it.
	Now time.Time `json:"now"`
}

// Validate checks the version, names, cursor and time.
func (r SensorEvaluation) Validate() *Error {
	if err := checkPipeline(r.V, r.Pipeline); err != nil {
		return err
	}
	if err := checkName("sensor", r.Sensor); err != nil {
		return err
	}
	if err := checkCursor("cursor", r.Cursor); err != nil {
		return err
	}
	return checkTime("now", r.Now)
}

// EncodeSensorEvaluation validates and encodes r.
func EncodeSensorEvaluation(r SensorEvaluation) ([]byte, *Error) {
	return encodeValid(r, MaxMessageBytes)
}

// DecodeSensorEvaluation decodes and validates a SensorEvaluation.
func DecodeSensorEvaluation(data []byte) (SensorEvaluation, *Error) {
	return decodeValid[SensorEvaluation](data, MaxMessageBytes)
}

// SensorOutcome is a worker's answer to a SensorEvaluation: the runs and
// the cursor, or why the evaluation failed.
type SensorOutcome struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Runs are the runs to start.
	Runs []SensorRun `json:"runs,omitempty"`
	// Cursor is the cursor to keep ("" keeps the one given).
	Cursor string `json:"cursor,omitempty"`
	// Error is why the evaluation failed; nothing else counts then.
	Error *Error `json:"error,omitempty"`
}

// SensorRun is a run a sensor requests.
type SensorRun struct {
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partition is its partition ("" for the default).
	Partition string `json:"partition,omitempty"`
	// RunKey dedupes the request.
	RunKey string `json:"run_key,omitempty"`
}

// Validate checks the version, the runs' shape and the cursor (whether
// the assets and partitions are the pipeline's, the coordinator checks).
func (r SensorOutcome) Validate() *Error {
	if err := checkVersion(r.V); err != nil {
		return err
	}
	if r.Error != nil {
		return r.Error.validate("error")
	}
	if len(r.Runs) > MaxSensorRuns {
		return fieldErrorf("runs", "runs has %d runs, more than %d", len(r.Runs), MaxSensorRuns)
	}
	for i, run := range r.Runs {
		prefix := indexed("runs", i) + "."
		if err := checkName(prefix+"asset", run.Asset); err != nil {
			return err
		}
		if err := checkPartition(prefix+"partition", run.Partition, true); err != nil {
			return err
		}
		if len(run.RunKey) > MaxRunKeyBytes || !utf8.ValidString(run.RunKey) {
			return fieldErrorf(prefix+"run_key", "%srun_key is longer than %d bytes or not UTF-8", prefix, MaxRunKeyBytes)
		}
	}
	return checkCursor("cursor", r.Cursor)
}

// EncodeSensorOutcome validates and encodes r.
func EncodeSensorOutcome(r SensorOutcome) ([]byte, *Error) { return encodeValid(r, MaxMessageBytes) }

// DecodeSensorOutcome decodes and validates a SensorOutcome.
func DecodeSensorOutcome(data []byte) (SensorOutcome, *Error) {
	return decodeValid[SensorOutcome](data, MaxMessageBytes)
}

func checkCursor(field, s string) *Error {
	if len(s) > MaxCursorBytes || !utf8.ValidString(s) {
		return fieldErrorf(field, "%s is longer than %d bytes or not UTF-8", field, MaxCursorBytes)
	}
	return nil
}

// SchedulesRequest lists schedules with their ticks (verb schedules).
type SchedulesRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline; "" lists every pipeline's.
	Pipeline string `json:"pipeline,omitempty"`
}

// Verb returns VerbSchedules.
func (SchedulesRequest) Verb() string { return VerbSchedules }
func (SchedulesRequest) isRequest()   {}

// Validate checks the version and the pipeline's name, if given.
func (r SchedulesRequest) Validate() *Error {
	if err := checkVersion(r.V); err != nil {
		return err
	}
	return checkOptionalName("pipeline", r.Pipeline)
}

// SchedulesReply answers a SchedulesRequest.
type SchedulesReply struct {
	// Schedules are the schedules, by pipeline, in declaration order.
	Schedules []ScheduleStatus `json:"schedules"`
}

func (SchedulesReply) isReply() {}

// Validate checks every schedule.
func (r SchedulesReply) Validate() *Error {
	for i, s := range r.Schedules {
		prefix := indexed("schedules", i) + "."
		if err := checkName(prefix+"pipeline", s.Pipeline); err != nil {
			return err
		}
		if err := s.ScheduleSpec.validate(prefix); err != nil {
			return err
		}
		if s.Error != nil {
			if err := s.Error.validate(prefix + "error"); err != nil {
				return err
			}
		}
	}
	return nil
}

// ScheduleStatus is a schedule and where it stands.
type ScheduleStatus struct {
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	ScheduleSpec
	// Paused is true while it is paused.
	Paused bool `json:"paused"`
	// NextTick is the next tick that fires (nil while paused).
	NextTick *time.Time `json:"next_tick,omitempty"`
	// LastTick is the latest tick fired, with its partition and runs.
	LastTick      *time.Time `json:"last_tick,omitempty"`
	LastPartition string     `json:"last_partition,omitempty"`
	LastRuns      []string   `json:"last_runs,omitempty"`
	// Fired and Skipped count the ticks fired and skipped.
	Fired   int64 `json:"fired"`
	Skipped int64 `json:"skipped"`
	// Error is why the latest tick's runs could not all start.
	Error *Error `json:"error,omitempty"`
}

// SensorsRequest lists sensors with their cursors (verb sensors).
type SensorsRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline; "" lists every pipeline's.
	Pipeline string `json:"pipeline,omitempty"`
}

// Verb returns VerbSensors.
func (SensorsRequest) Verb() string { return VerbSensors }
func (SensorsRequest) isRequest()   {}

// Validate checks the version and the pipeline's name, if given.
func (r SensorsRequest) Validate() *Error {
	if err := checkVersion(r.V); err != nil {
		return err
	}
	return checkOptionalName("pipeline", r.Pipeline)
}

// SensorsReply answers a SensorsRequest.
type SensorsReply struct {
	// Sensors are the sensors, by pipeline, in declaration order.
	Sensors []SensorStatus `json:"sensors"`
}

func (SensorsReply) isReply() {}

// Validate checks every sensor.
func (r SensorsReply) Validate() *Error {
	for i, s := range r.Sensors {
		prefix := indexed("sensors", i) + "."
		if err := checkName(prefix+"pipeline", s.Pipeline); err != nil {
			return err
		}
		if err := checkName(prefix+"name", s.Name); err != nil {
			return err
		}
		if err := checkCursor(prefix+"cursor", s.Cursor); err != nil {
			return err
		}
		if s.Error != nil {
			if err := s.Error.validate(prefix + "error"); err != nil {
				return err
			}
		}
	}
	return nil
}

// SensorStatus is a sensor and where it stands.
type SensorStatus struct {
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Name names the sensor.
	Name string `json:"name"`
	// IntervalMS is how often it is evaluated.
	IntervalMS int64 `json:"interval_ms"`
	// Paused is true while it is paused.
	Paused bool `json:"paused"`
	// Cursor is the latest good evaluation's cursor.
	Cursor string `json:"cursor"`
	// LastEvaluation, NextEvaluation and LastSuccess are when the latest
	// evaluation began, when the next is due, and when the latest good
	// one began.
	LastEvaluation *time.Time `json:"last_evaluation,omitempty"`
	NextEvaluation *time.Time `json:"next_evaluation,omitempty"`
	LastSuccess    *time.Time `json:"last_success,omitempty"`
	// LastRuns are the runs the latest good evaluation started.
	LastRuns []string `json:"last_runs,omitempty"`
	// Evaluations and Failures count them.
	Evaluations int64 `json:"evaluations"`
	Failures    int64 `json:"failures"`
	// Error is why the latest evaluation failed.
	Error *Error `json:"error,omitempty"`
}

// PauseRequest pauses a pipeline's schedule or sensor (verb
// automation_pause): no tick fires, no evaluation runs, until a
// ResumeRequest.
type PauseRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Name names the schedule or sensor.
	Name string `json:"name"`
}

// Verb returns VerbPause.
func (PauseRequest) Verb() string { return VerbPause }
func (PauseRequest) isRequest()   {}

// Validate checks the version and names.
func (r PauseRequest) Validate() *Error {
	if err := checkPipeline(r.V, r.Pipeline); err != nil {
		return err
	}
	return checkName("name", r.Name)
}

// ResumeRequest resumes a paused schedule or sensor (verb
// automation_resume); a schedule's ticks count from then.
type ResumeRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Name names the schedule or sensor.
	Name string `json:"name"`
}

// Verb returns VerbResume.
func (ResumeRequest) Verb() string { return VerbResume }
func (ResumeRequest) isRequest()   {}

// Validate checks the version and names.
func (r ResumeRequest) Validate() *Error {
	if err := checkPipeline(r.V, r.Pipeline); err != nil {
		return err
	}
	return checkName("name", r.Name)
}

// PauseReply answers PauseRequest and ResumeRequest.
type PauseReply struct {
	// Paused is the schedule's or sensor's state now.
	Paused bool `json:"paused"`
}

func (PauseReply) isReply() {}

// Validate has nothing to check.
func (PauseReply) Validate() *Error { return nil }
