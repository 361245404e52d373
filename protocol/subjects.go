package protocol

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The API service. Coordinators serve it with nats.go/micro: a service named
// ServiceName (version ServiceVersion) with one endpoint per verb in the
// group APIPrefix, all in queue group QueueGroup, so any number of
// coordinators share the load and a request reaches exactly one.
const (
	// ServiceName is the micro service name coordinators register.
	ServiceName = "flowstone"
	// QueueGroup is the queue group of every API endpoint.
	QueueGroup = "flowstone"
	// APIPrefix is the subject prefix of the API: requests go to
	// APIPrefix + "." + verb.
	APIPrefix = "flowstone.api"
	// APISubjects matches every API subject.
	APISubjects = APIPrefix + ".>"
)

// The API verbs: the last token of an API subject, and the micro endpoint
// names. Each request type's Verb method returns its own.
const (
	VerbRun        = "run"        // RunRequest → RunReply
	VerbGet        = "get"        // GetRequest → GetReply
	VerbExists     = "exists"     // ExistsRequest → ExistsReply
	VerbStatus     = "status"     // StatusRequest → StatusReply
	VerbCancel     = "cancel"     // CancelRequest → CancelReply
	VerbInvalidate = "invalidate" // InvalidateRequest → InvalidateReply
	VerbBackfill   = "backfill"   // BackfillRequest → BackfillReply
	VerbGraph      = "graph"      // GraphRequest → GraphReply
	VerbAssets     = "assets"     // AssetsRequest → AssetsReply
	VerbInfo       = "info"       // InfoRequest → InfoReply
	VerbPipelines  = "pipelines"  // PipelinesRequest → PipelinesReply
	// VerbBackfillStatus follows a backfill by id:
	// BackfillStatusRequest → BackfillStatusReply.
	VerbBackfillStatus = "backfill_status"
	// The gates' verbs: decide an approval gate, list the gates that
	// wait, deliver a signal.
	VerbApprove   = "approve"   // ApproveRequest → DecisionReply
	VerbReject    = "reject"    // RejectRequest → DecisionReply
	VerbApprovals = "approvals" // ApprovalsRequest → ApprovalsReply
	VerbSignal    = "signal"    // SignalRequest → DecisionReply
	// The automation's verbs: list schedules and sensors, pause and
	// resume one.
	VerbSchedules = "schedules"         // SchedulesRequest → SchedulesReply
	VerbSensors   = "sensors"           // SensorsRequest → SensorsReply
	VerbPause     = "automation_pause"  // PauseRequest → PauseReply
	VerbResume    = "automation_resume" // ResumeRequest → PauseReply
)

var verbs = []string{
	VerbRun, VerbGet, VerbExists, VerbStatus, VerbCancel, VerbInvalidate,
	VerbBackfill, VerbGraph, VerbAssets, VerbInfo, VerbPipelines,
	VerbBackfillStatus, VerbApprove, VerbReject, VerbApprovals, VerbSignal,
	VerbSchedules, VerbSensors, VerbPause, VerbResume,
}

// Verbs returns every API verb, in a fresh slice.
func Verbs() []string { return slices.Clone(verbs) }

// APISubject returns the request subject of verb, "flowstone.api.<verb>".
// It panics if verb is not one of Verbs.
func APISubject(verb string) string {
	if !slices.Contains(verbs, verb) {
		panic(fmt.Sprintf("protocol: unknown API verb %q", verb))
	}
	return APIPrefix + "." + verb
}

// Tasks. One WorkQueue stream holds the tasks, their schedules and the
// scheduled starts of runs (a schedule's target must be in its own stream).
// Workers consume task subjects only, never schedule or start subjects;
// coordinators consume start subjects. Consumers on a WorkQueue stream must
// not overlap: filter by priority (TaskFilter) or by pipeline and priority
// (TaskSubject), not both.
const (
	// TaskStream is the WorkQueue stream of tasks.
	TaskStream = "FLOWSTONE_TASKS"
	// TaskSubjects matches every task subject, "flowstone.task.<pipeline>.p<priority>".
	TaskSubjects = "flowstone.task.>"
	// ScheduleSubjects matches every schedule subject, "flowstone.sched.<id>":
	// a message published there with a schedule time and target is delivered
	// to the target at that time (NATS message schedules). Purging the
	// schedule subject cancels it.
	ScheduleSubjects = "flowstone.sched.>"
	// StartSubjects matches every start subject, "flowstone.start.<pipeline>":
	// the target of a scheduled run, carrying a ScheduledRun for a
	// coordinator to plan when it fires.
	StartSubjects = "flowstone.start.>"
)

// TaskStreamSubjects returns the subjects of TaskStream, in a fresh slice.
func TaskStreamSubjects() []string {
	return []string{TaskSubjects, ScheduleSubjects, StartSubjects}
}

// TaskSubject returns the subject of pipeline's tasks at priority,
// "flowstone.task.<pipeline>.p<priority>". It panics if pipeline is not a
// ValidName or priority is outside 0..MaxPriority.
func TaskSubject(pipeline string, priority int) string {
	mustName(pipeline)
	return taskSubjectPrefix + pipeline + "." + priorityToken(priority)
}

// taskSubjectPrefix begins every task subject.
const taskSubjectPrefix = "flowstone.task."

// BellPrefix begins every bell subject. Bells are core NATS only: no
// stream stores them.
const BellPrefix = "flowstone.bell."

// BellSubject returns the doorbell of a task subject: "flowstone.task.X"
// rings on "flowstone.bell.X". A task publisher publishes an empty message
// there once JetStream has stored a message on the task subject, and idle
// workers wait on it instead of polling. Ringing only after the store
// matters: a worker that subscribes and then fetches finds every task whose
// bell it missed, because the task was stored before the bell was sent. The
// publish itself would not do: JetStream stores a message after the server
// has routed it to core subscribers, so a fetch can miss a task whose
// publish it also missed.
func BellSubject(taskSubject string) string {
	return BellPrefix + strings.TrimPrefix(taskSubject, taskSubjectPrefix)
}

// BellFilter matches the bells of pipeline's tasks at every priority,
// "flowstone.bell.<pipeline>.*". It panics if pipeline is not a ValidName.
func BellFilter(pipeline string) string {
	mustName(pipeline)
	return BellPrefix + pipeline + ".*"
}

// TaskFilter returns the consumer filter of every pipeline's tasks at
// priority, "flowstone.task.*.p<priority>": one durable per priority, which
// workers drain the highest (3) first. It panics if priority is outside
// 0..MaxPriority.
func TaskFilter(priority int) string {
	return "flowstone.task.*." + priorityToken(priority)
}

// ScheduleSubject returns the schedule subject of a delayed task or run,
// "flowstone.sched.<id>"; id is a task id (a delayed task) or a run id (a
// delayed run). It panics if id is not a ValidTaskID (every run id is one).
func ScheduleSubject(id string) string {
	if err := checkTaskID("id", id); err != nil {
		panic("protocol: " + err.Message)
	}
	return "flowstone.sched." + id
}

// StartSubject returns the start subject of pipeline's scheduled runs,
// "flowstone.start.<pipeline>". It panics if pipeline is not a ValidName.
func StartSubject(pipeline string) string {
	mustName(pipeline)
	return "flowstone.start." + pipeline
}

// Completions. Workers publish a Completion for every task they finish (or
// give up on) to the completions stream; coordinators consume it.
const (
	// DoneStream is the stream of completions.
	DoneStream = "FLOWSTONE_DONE"
	// DoneSubjects matches every completion subject.
	DoneSubjects = "flowstone.done.>"
)

// DoneSubject returns the completion subject of pipeline,
// "flowstone.done.<pipeline>". It panics if pipeline is not a ValidName.
func DoneSubject(pipeline string) string {
	mustName(pipeline)
	return "flowstone.done." + pipeline
}

// Events. Telemetry events are published in EventBatch messages, each
// holding events of one pipeline and one kind, to a limits-retention stream,
// under a subject that lets watchers filter by pipeline and kind
// ("flowstone.event.sales.run.>"). Every message on an event subject is an
// EventBatch (DecodeEventBatch), never a lone Event.
const (
	// EventStream is the limits-retention stream of events.
	EventStream = "FLOWSTONE_EVENTS"
	// EventSubjects matches every event subject.
	EventSubjects = "flowstone.event.>"
)

// EventSubject returns the subject of the EventBatch messages of pipeline's
// events of kind, "flowstone.event.<pipeline>.<kind>" (the kind's dots make
// tokens: "flowstone.event.sales.run.start"). It panics if pipeline is not
// a ValidName or kind is not one of the EventKind constants.
func EventSubject(pipeline string, kind EventKind) string {
	mustName(pipeline)
	if !kind.valid() {
		panic(fmt.Sprintf("protocol: unknown event kind %q", kind))
	}
	return "flowstone.event." + pipeline + "." + string(kind)
}

// Cancellation is broadcast on core NATS (not persisted): every worker
// subscribes to CancelSubjects and cancels the context of its tasks of that
// run. The message body is empty; pending tasks are cancelled by the
// coordinator, which stops dispatching them.
const (
	// CancelSubjects matches every cancel subject.
	CancelSubjects = "flowstone.cancel.*"
)

// CancelSubject returns the cancel subject of a run,
// "flowstone.cancel.<runID>". It panics if runID is not a ValidID.
func CancelSubject(runID string) string {
	if err := checkID("run_id", runID); err != nil {
		panic("protocol: " + err.Message)
	}
	return "flowstone.cancel." + runID
}

// Buckets. Metadata lives in JetStream KV buckets, results in an object
// store bucket (or S3 under the same name), and staged copies of results
// in an object store bucket of their own.
const (
	// MaterializationsBucket is the KV bucket of materialization records.
	MaterializationsBucket = "flowstone_materializations"
	// RunsBucket is the KV bucket of run records.
	RunsBucket = "flowstone_runs"
	// ManifestsBucket is the KV bucket of Manifests, one per pipeline and
	// worker under ManifestKey.
	ManifestsBucket = "flowstone_manifests"
	// ResultsBucket is the object store bucket of results.
	ResultsBucket = "flowstone_results"
	// StagingBucket is the JetStream object store bucket where coordinators
	// stage copies of results for clients that cannot read the store the
	// results are kept in (GetRequest.Stage): a client reaches it over its
	// NATS connection. Objects are named by their content (StagedName), and
	// the bucket keeps each for StagingTTL.
	StagingBucket = "flowstone_staged"
)

// StagingTTL is how long StagingBucket keeps a staged copy (the bucket's
// max age): staged copies expire, the results they copy do not. A
// coordinator reuses a staged copy only while it has at least half of
// StagingTTL left, so a client that starts reading it at once has that
// long to finish.
const StagingTTL = time.Hour

// StagedName returns the StagingBucket object name of a staged copy of the
// bytes whose SHA-256 is sha (64 lowercase hex digits):
// "sha256/<sha>". Equal bytes share one copy, whichever result they are.
// It panics if sha is not a SHA-256 digest.
func StagedName(sha string) string {
	if err := checkSHA256("sha256", sha); err != nil {
		panic("protocol: " + err.Message)
	}
	return "sha256/" + sha
}

// ManifestKey returns the ManifestsBucket key of worker's manifest of
// pipeline, "<pipeline>.<worker>", so a coordinator lists a pipeline's
// workers by the prefix "<pipeline>.". It panics if pipeline is not a
// ValidName or worker is not a ValidID.
func ManifestKey(pipeline, worker string) string {
	mustName(pipeline)
	if err := checkID("worker", worker); err != nil {
		panic("protocol: " + err.Message)
	}
	return pipeline + "." + worker
}

func mustName(pipeline string) {
	if err := checkName("pipeline", pipeline); err != nil {
		panic("protocol: " + err.Message)
	}
}

func priorityToken(priority int) string {
	if priority < 0 || priority > MaxPriority {
		panic(fmt.Sprintf("protocol: priority %d is outside 0..%d", priority, MaxPriority))
	}
	return "p" + strconv.Itoa(priority)
}
