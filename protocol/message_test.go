package protocol_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

// msgCase breaks one rule of a fleet message of type T. An empty code means
// the message must be accepted.
type msgCase[T any] struct {
	name   string
	mutate func(*T)
	code   string
	field  string
	goOnly bool
}

// codec is the Encode/Decode pair of one fleet message type.
type codec[T interface{ Validate() *protocol.Error }] struct {
	encode func(T) ([]byte, *protocol.Error)
	decode func([]byte) (T, *protocol.Error)
}

func checkMessageCases[T interface{ Validate() *protocol.Error }](t *testing.T, c codec[T], valid func() T, cases []msgCase[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := valid()
			tc.mutate(&m)
			_, encErr := c.encode(m)
			_, decErr := c.decode(mustJSON(t, m))
			if tc.code == "" {
				wantOK(t, m.Validate())
				wantOK(t, encErr)
				wantOK(t, decErr)
				return
			}
			wantCode(t, m.Validate(), tc.code, tc.field)
			wantCode(t, encErr, tc.code, tc.field)
			if !tc.goOnly {
				wantCode(t, decErr, tc.code, tc.field)
			}
		})
	}
}

var (
	taskCodec         = codec[protocol.Task]{protocol.EncodeTask, protocol.DecodeTask}
	completionCodec   = codec[protocol.Completion]{protocol.EncodeCompletion, protocol.DecodeCompletion}
	manifestCodec     = codec[protocol.Manifest]{protocol.EncodeManifest, protocol.DecodeManifest}
	eventBatchCodec   = codec[protocol.EventBatch]{protocol.EncodeEventBatch, protocol.DecodeEventBatch}
	scheduledRunCodec = codec[protocol.ScheduledRun]{protocol.EncodeScheduledRun, protocol.DecodeScheduledRun}
)

func TestTaskValidation(t *testing.T) {
	type T = protocol.Task
	checkMessageCases(t, taskCodec, validTask, []msgCase[T]{
		{name: "valid", mutate: func(*T) {}},
		{name: "every field", mutate: func(m *T) {
			m.Priority, m.Force, m.Storage, m.TimeoutMS, m.Deadline, m.Attempt = 2, true, "memory", 1000, &t1, 3
		}},
		{name: "no deps", mutate: func(m *T) { m.Deps = nil }},
		{name: "same dep asset, two partitions", mutate: func(m *T) {
			d := m.Deps[0]
			d.Partition = "2025-01-14"
			m.Deps = append(m.Deps, d)
		}},
		{name: "raw dep", mutate: func(m *T) { m.Deps[0].Encoding = protocol.EncodingRaw }},
		{name: "empty dep", mutate: func(m *T) { m.Deps[0].Size = 0 }},
		{name: "no version", mutate: func(m *T) { m.V = 0 }, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "no id", mutate: func(m *T) { m.ID = "" }, code: protocol.CodeBadRequest, field: "id"},
		{name: "id with an empty token", mutate: func(m *T) { m.ID = "r1..sum" }, code: protocol.CodeBadRequest, field: "id"},
		{name: "id with a wildcard", mutate: func(m *T) { m.ID = "r1.*" }, code: protocol.CodeBadRequest, field: "id"},
		{name: "id too long", mutate: func(m *T) { m.ID = strings.Repeat("i", protocol.MaxTaskIDBytes+1) }, code: protocol.CodeBadRequest, field: "id"},
		{name: "run id with a dot", mutate: func(m *T) { m.RunID = "r.1" }, code: protocol.CodeBadRequest, field: "run_id"},
		{name: "bad pipeline", mutate: func(m *T) { m.Pipeline = "" }, code: protocol.CodeBadRequest, field: "pipeline"},
		{name: "bad asset", mutate: func(m *T) { m.Asset = "a.b" }, code: protocol.CodeBadRequest, field: "asset"},
		{name: "unresolved partition", mutate: func(m *T) { m.Partition = "" }, code: protocol.CodeBadRequest, field: "partition"},
		{name: "partition too long", mutate: func(m *T) { m.Partition = strings.Repeat("p", protocol.MaxPartitionBytes+1) }, code: protocol.CodeBadRequest, field: "partition"},
		{name: "partition not UTF-8", mutate: func(m *T) { m.Partition = "\xfe" }, code: protocol.CodeBadRequest, field: "partition", goOnly: true},
		{name: "priority out of range", mutate: func(m *T) { m.Priority = 4 }, code: protocol.CodeBadRequest, field: "priority"},
		{name: "bad storage", mutate: func(m *T) { m.Storage = "a b" }, code: protocol.CodeBadRequest, field: "storage"},
		{name: "negative timeout", mutate: func(m *T) { m.TimeoutMS = -5 }, code: protocol.CodeBadRequest, field: "timeout_ms"},
		{name: "zero deadline", mutate: func(m *T) { m.Deadline = &time.Time{} }, code: protocol.CodeBadRequest, field: "deadline"},
		{name: "dep without asset", mutate: func(m *T) { m.Deps[0].Asset = "" }, code: protocol.CodeBadRequest, field: "deps[0].asset"},
		{name: "dep without partition", mutate: func(m *T) { m.Deps[0].Partition = "" }, code: protocol.CodeBadRequest, field: "deps[0].partition"},
		{name: "dep without object key", mutate: func(m *T) { m.Deps[0].ObjectKey = "" }, code: protocol.CodeBadRequest, field: "deps[0].object_key"},
		{name: "dep object key escaping", mutate: func(m *T) { m.Deps[0].ObjectKey = "sales/../etc" }, code: protocol.CodeBadRequest, field: "deps[0].object_key"},
		{name: "dep object key absolute", mutate: func(m *T) { m.Deps[0].ObjectKey = "/sales/sum" }, code: protocol.CodeBadRequest, field: "deps[0].object_key"},
		{name: "dep without storage", mutate: func(m *T) { m.Deps[0].Storage = "" }, code: protocol.CodeBadRequest, field: "deps[0].storage"},
		{name: "dep negative size", mutate: func(m *T) { m.Deps[0].Size = -1 }, code: protocol.CodeBadRequest, field: "deps[0].size"},
		{name: "dep short checksum", mutate: func(m *T) { m.Deps[0].SHA256 = "abc" }, code: protocol.CodeBadRequest, field: "deps[0].sha256"},
		{name: "dep uppercase checksum", mutate: func(m *T) { m.Deps[0].SHA256 = strings.ToUpper(sha) }, code: protocol.CodeBadRequest, field: "deps[0].sha256"},
		{name: "dep unknown encoding", mutate: func(m *T) { m.Deps[0].Encoding = "gob" }, code: protocol.CodeBadRequest, field: "deps[0].encoding"},
		{name: "dep repeated", mutate: func(m *T) { m.Deps = append(m.Deps, m.Deps[0]) }, code: protocol.CodeBadRequest, field: "deps[1]"},
		{name: "attempt zero", mutate: func(m *T) { m.Attempt = 0 }, code: protocol.CodeBadRequest, field: "attempt"},
		{name: "not enqueued", mutate: func(m *T) { m.EnqueuedAt = time.Time{} }, code: protocol.CodeBadRequest, field: "enqueued_at"},
		{name: "absent dependencies", mutate: func(m *T) { m.Absent = fullTask().Absent }},
		{name: "absent without why", mutate: func(m *T) { m.Absent = []protocol.AbsentDep{{Asset: "eu"}} }, code: protocol.CodeBadRequest, field: "absent[0].skipped"},
		{name: "absent skipped and failed", mutate: func(m *T) {
			m.Absent = []protocol.AbsentDep{{Asset: "eu", Skipped: true, Error: &protocol.Error{Code: "timeout", Message: "late"}}}
		}, code: protocol.CodeBadRequest, field: "absent[0].skipped"},
		{name: "absent twice", mutate: func(m *T) {
			m.Absent = []protocol.AbsentDep{{Asset: "eu", Skipped: true}, {Asset: "eu", Skipped: true}}
		}, code: protocol.CodeBadRequest, field: "absent[1].asset"},
		{name: "absent with a value", mutate: func(m *T) {
			m.Absent = []protocol.AbsentDep{{Asset: m.Deps[0].Asset, Skipped: true}}
		}, code: protocol.CodeBadRequest, field: "absent[0].asset"},
		{name: "absent bad name", mutate: func(m *T) { m.Absent = []protocol.AbsentDep{{Asset: "e u", Skipped: true}} }, code: protocol.CodeBadRequest, field: "absent[0].asset"},
		{name: "absent bad error", mutate: func(m *T) { m.Absent = []protocol.AbsentDep{{Asset: "eu", Error: &protocol.Error{}}} }, code: protocol.CodeBadRequest, field: "absent[0].error.code"},
	})
}

func TestCompletionValidation(t *testing.T) {
	type C = protocol.Completion
	checkMessageCases(t, completionCodec, validCompletion, []msgCase[C]{
		{name: "succeeded", mutate: func(*C) {}},
		{name: "failed", mutate: func(m *C) { *m = failedCompletion() }},
		{name: "failed with a newer error code", mutate: func(m *C) {
			*m = failedCompletion()
			m.Error.Code = "quota_exceeded"
		}},
		{name: "instant", mutate: func(m *C) { m.FinishedAt, m.DurationMS = m.StartedAt, 0 }},
		{name: "no version", mutate: func(m *C) { m.V = 0 }, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "no task id", mutate: func(m *C) { m.TaskID = "" }, code: protocol.CodeBadRequest, field: "task_id"},
		{name: "no run id", mutate: func(m *C) { m.RunID = "" }, code: protocol.CodeBadRequest, field: "run_id"},
		{name: "bad pipeline", mutate: func(m *C) { m.Pipeline = "9" }, code: protocol.CodeBadRequest, field: "pipeline"},
		{name: "bad asset", mutate: func(m *C) { m.Asset = "" }, code: protocol.CodeBadRequest, field: "asset"},
		{name: "no partition", mutate: func(m *C) { m.Partition = "" }, code: protocol.CodeBadRequest, field: "partition"},
		{name: "ok with an error", mutate: func(m *C) { m.Error = failedCompletion().Error }, code: protocol.CodeBadRequest, field: "error"},
		{name: "ok without a result", mutate: func(m *C) { m.ResultRef = protocol.ResultRef{} }, code: protocol.CodeBadRequest, field: "object_key"},
		{name: "ok with a bad checksum", mutate: func(m *C) { m.SHA256 = "" }, code: protocol.CodeBadRequest, field: "sha256"},
		{name: "ok without encoding", mutate: func(m *C) { m.Encoding = "" }, code: protocol.CodeBadRequest, field: "encoding"},
		{name: "failed without an error", mutate: func(m *C) { *m = failedCompletion(); m.Error = nil }, code: protocol.CodeBadRequest, field: "error"},
		{name: "failed with a result", mutate: func(m *C) { *m = failedCompletion(); m.ObjectKey = "a/b" }, code: protocol.CodeBadRequest, field: "object_key"},
		{name: "failed with an empty code", mutate: func(m *C) { *m = failedCompletion(); m.Error.Code = "" }, code: protocol.CodeBadRequest, field: "error.code"},
		{name: "failed with a bad code", mutate: func(m *C) { *m = failedCompletion(); m.Error.Code = "Boom!" }, code: protocol.CodeBadRequest, field: "error.code"},
		{name: "no worker", mutate: func(m *C) { m.Worker = "" }, code: protocol.CodeBadRequest, field: "worker"},
		{name: "worker with a dot", mutate: func(m *C) { m.Worker = "host.example" }, code: protocol.CodeBadRequest, field: "worker"},
		{name: "attempt zero", mutate: func(m *C) { m.Attempt = 0 }, code: protocol.CodeBadRequest, field: "attempt"},
		{name: "not started", mutate: func(m *C) { m.StartedAt = time.Time{} }, code: protocol.CodeBadRequest, field: "started_at"},
		{name: "not finished", mutate: func(m *C) { m.FinishedAt = time.Time{} }, code: protocol.CodeBadRequest, field: "finished_at"},
		{name: "finished before started", mutate: func(m *C) { m.FinishedAt = m.StartedAt.Add(-time.Second) }, code: protocol.CodeBadRequest, field: "finished_at"},
		{name: "negative duration", mutate: func(m *C) { m.DurationMS = -1 }, code: protocol.CodeBadRequest, field: "duration_ms"},
	})
}

func TestManifestValidation(t *testing.T) {
	type M = protocol.Manifest
	checkMessageCases(t, manifestCodec, validManifest, []msgCase[M]{
		{name: "valid", mutate: func(*M) {}},
		{name: "no version", mutate: func(m *M) { m.V = 0 }, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "bad pipeline", mutate: func(m *M) { m.Pipeline = "" }, code: protocol.CodeBadRequest, field: "pipeline"},
		{name: "no assets", mutate: func(m *M) { m.Assets = nil }, code: protocol.CodeBadRequest, field: "assets"},
		{name: "bad asset name", mutate: func(m *M) { m.Assets[1].Name = "dou bled" }, code: protocol.CodeBadRequest, field: "assets[1].name"},
		{name: "repeated asset", mutate: func(m *M) { m.Assets[2].Name = "numbers"; m.Assets[2].OptionalDeps = nil }, code: protocol.CodeBadRequest, field: "assets[2].name"},
		{name: "bad dependency name", mutate: func(m *M) { m.Assets[1].DependsOn = []string{"num bers"} }, code: protocol.CodeBadRequest, field: "assets[1].depends_on[0]"},
		{name: "repeated dependency", mutate: func(m *M) { m.Assets[1].DependsOn = []string{"numbers", "numbers"} }, code: protocol.CodeBadRequest, field: "assets[1].depends_on[1]"},
		{name: "unknown dependency", mutate: func(m *M) { m.Assets[1].DependsOn = []string{"numbrs"} }, code: protocol.CodeBadRequest, field: "assets[1].depends_on[0]"},
		{name: "unknown optional dependency", mutate: func(m *M) { m.Assets[2].OptionalDeps = []string{"ghost"} }, code: protocol.CodeBadRequest, field: "assets[2].optional_deps[0]"},
		{name: "self dependency", mutate: func(m *M) { m.Assets[1].DependsOn = []string{"doubled"} }, code: protocol.CodeBadRequest, field: "assets[1].depends_on[0]"},
		{name: "optional and required", mutate: func(m *M) { m.Assets[2].OptionalDeps = []string{"doubled"} }, code: protocol.CodeBadRequest, field: "assets[2].optional_deps[0]"},
		{name: "bad partitioned_by", mutate: func(m *M) { m.Assets[0].PartitionedBy = "by date" }, code: protocol.CodeBadRequest, field: "assets[0].partitioned_by"},
		{name: "negative timeout", mutate: func(m *M) { m.Assets[1].TimeoutMS = -1 }, code: protocol.CodeBadRequest, field: "assets[1].timeout_ms"},
		{name: "negative retries", mutate: func(m *M) { m.Assets[1].Retries = -1 }, code: protocol.CodeBadRequest, field: "assets[1].retries"},
		{name: "bad storage", mutate: func(m *M) { m.Assets[2].Storage = "s3:" }, code: protocol.CodeBadRequest, field: "assets[2].storage"},
		{name: "description not UTF-8", mutate: func(m *M) { m.Assets[0].Description = "\xff" }, code: protocol.CodeBadRequest, field: "assets[0].description", goOnly: true},
		{name: "no worker", mutate: func(m *M) { m.Worker = "" }, code: protocol.CodeBadRequest, field: "worker"},
		{name: "no storages told", mutate: func(m *M) { m.Storages = nil }},
		{name: "bad storage name", mutate: func(m *M) { m.Storages = []string{"file", "s 3"} }, code: protocol.CodeBadRequest, field: "storages[1]"},
		{name: "repeated storage", mutate: func(m *M) { m.Storages = []string{"s3", "s3"} }, code: protocol.CodeBadRequest, field: "storages[1]"},
		{name: "too many storages", mutate: func(m *M) {
			m.Storages = nil
			for i := range protocol.MaxStorages + 1 {
				m.Storages = append(m.Storages, fmt.Sprintf("s%d", i))
			}
		}, code: protocol.CodeBadRequest, field: "storages"},
		{name: "never updated", mutate: func(m *M) { m.UpdatedAt = time.Time{} }, code: protocol.CodeBadRequest, field: "updated_at"},
		{name: "join and route", mutate: func(m *M) { *m = branchManifest() }},
		{name: "partial join", mutate: func(m *M) {
			*m = branchManifest()
			m.Assets[5].JoinMode, m.Assets[5].Branches[0].Optional = protocol.JoinPartial, true
		}},
		{name: "parallel flag of an older scatter", mutate: func(m *M) { m.Assets[2].Parallel = true }},
		{name: "branches without parallel", mutate: func(m *M) { *m = branchManifest(); m.Assets[5].Parallel = false }, code: protocol.CodeBadRequest, field: "assets[5].parallel"},
		{name: "branches without mode", mutate: func(m *M) { *m = branchManifest(); m.Assets[5].JoinMode = "" }, code: protocol.CodeBadRequest, field: "assets[5].join_mode"},
		{name: "mode without branches", mutate: func(m *M) { m.Assets[2].JoinMode = protocol.JoinPartial }, code: protocol.CodeBadRequest, field: "assets[2].join_mode"},
		{name: "timeout without branches", mutate: func(m *M) { m.Assets[2].JoinTimeoutMS = 5 }, code: protocol.CodeBadRequest, field: "assets[2].join_timeout_ms"},
		{name: "negative join timeout", mutate: func(m *M) { *m = branchManifest(); m.Assets[5].JoinTimeoutMS = -1 }, code: protocol.CodeBadRequest, field: "assets[5].join_timeout_ms"},
		{name: "optional branch of all or nothing", mutate: func(m *M) { *m = branchManifest(); m.Assets[5].Branches[0].Optional = true }, code: protocol.CodeBadRequest, field: "assets[5].join_mode"},
		{name: "partial without optional", mutate: func(m *M) { *m = branchManifest(); m.Assets[5].JoinMode = protocol.JoinPartial }, code: protocol.CodeBadRequest, field: "assets[5].join_mode"},
		{name: "branch repeated", mutate: func(m *M) { *m = branchManifest(); m.Assets[5].Branches[1].Name = "fast" }, code: protocol.CodeBadRequest, field: "assets[5].branches[1].name"},
		{name: "branches out of order", mutate: func(m *M) {
			*m = branchManifest()
			b := m.Assets[5].Branches
			b[0], b[1] = b[1], b[0]
		}, code: protocol.CodeBadRequest, field: "assets[5].branches[1].name"},
		{name: "branch end repeated", mutate: func(m *M) { *m = branchManifest(); m.Assets[5].Branches[1].Asset = "express" }, code: protocol.CodeBadRequest, field: "assets[5].branches[1].asset"},
		{name: "branch end unknown", mutate: func(m *M) { *m = branchManifest(); m.Assets[5].Branches[1].Asset = "ghost" }, code: protocol.CodeBadRequest, field: "assets[5].branches[1].asset"},
		{name: "branch end also a dependency", mutate: func(m *M) { *m = branchManifest(); m.Assets[5].DependsOn = []string{"express"} }, code: protocol.CodeBadRequest, field: "assets[5].depends_on[0]"},
		{name: "branch name bad", mutate: func(m *M) { *m = branchManifest(); m.Assets[5].Branches[0].Name = "f ast" }, code: protocol.CodeBadRequest, field: "assets[5].branches[0].name"},
		{name: "route repeated", mutate: func(m *M) { *m = branchManifest(); m.Assets[2].Route = []string{"express", "express"} }, code: protocol.CodeBadRequest, field: "assets[2].route[1]"},
		{name: "route to itself", mutate: func(m *M) { *m = branchManifest(); m.Assets[2].Route = []string{"sum"} }, code: protocol.CodeBadRequest, field: "assets[2].route[0]"},
		{name: "route unknown", mutate: func(m *M) { *m = branchManifest(); m.Assets[2].Route = []string{"ghost"} }, code: protocol.CodeBadRequest, field: "assets[2].route[0]"},
	})
}

// branchManifest is validManifest with a router (sum routes to express or
// standard) and a join of both.
func branchManifest() protocol.Manifest {
	m := validManifest()
	m.Assets[2].Scatter = false
	m.Assets[2].Route = []string{"express", "standard"}
	m.Assets = append(m.Assets,
		protocol.AssetSpec{Name: "express", DependsOn: []string{"sum"}},
		protocol.AssetSpec{Name: "standard", DependsOn: []string{"sum"}},
		protocol.AssetSpec{Name: "shipped", Parallel: true, JoinMode: protocol.JoinAllOrNothing, JoinTimeoutMS: 60000,
			Branches: []protocol.BranchSpec{{Name: "fast", Asset: "express"}, {Name: "slow", Asset: "standard"}}},
	)
	return m
}

func TestEventValidation(t *testing.T) {
	type E = protocol.Event
	kinds := []protocol.EventKind{
		protocol.EventRunStart, protocol.EventRunStop, protocol.EventStorageLoadStart, protocol.EventStorageLoadStop,
		protocol.EventStorageStoreStart, protocol.EventStorageStoreStop, protocol.EventScatterStart,
		protocol.EventScatterItemStart, protocol.EventScatterItemStop, protocol.EventScatterStop, protocol.EventRunSkipped,
	}
	cases := []msgCase[E]{
		{name: "failed scatter item", mutate: func(m *E) {
			m.Kind, m.Error = protocol.EventScatterItemStop, &protocol.Error{Code: protocol.CodeExecutionFailed, Message: "item 3"}
		}},
		{name: "exception", mutate: func(m *E) {
			m.Kind, m.Error = protocol.EventRunException, &protocol.Error{Code: protocol.CodeTimeout, Message: "took 5m"}
		}},
		{name: "start without duration or metadata", mutate: func(m *E) { m.Kind, m.DurationNS, m.Metadata = protocol.EventRunStart, 0, nil }},
		{name: "no version", mutate: func(m *E) { m.V = 0 }, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "unknown kind", mutate: func(m *E) { m.Kind = "run.pause" }, code: protocol.CodeBadRequest, field: "kind"},
		{name: "kind as telemetry list", mutate: func(m *E) { m.Kind = "flowstone.run.start" }, code: protocol.CodeBadRequest, field: "kind"},
		{name: "exception without error", mutate: func(m *E) { m.Kind = protocol.EventRunException }, code: protocol.CodeBadRequest, field: "error"},
		{name: "invalid error", mutate: func(m *E) { m.Error = &protocol.Error{Message: "no code"} }, code: protocol.CodeBadRequest, field: "error.code"},
		{name: "bad pipeline", mutate: func(m *E) { m.Pipeline = "a>b" }, code: protocol.CodeBadRequest, field: "pipeline"},
		{name: "bad asset", mutate: func(m *E) { m.Asset = "" }, code: protocol.CodeBadRequest, field: "asset"},
		{name: "no partition", mutate: func(m *E) { m.Partition = "" }, code: protocol.CodeBadRequest, field: "partition"},
		{name: "no run id", mutate: func(m *E) { m.RunID = "" }, code: protocol.CodeBadRequest, field: "run_id"},
		{name: "no time", mutate: func(m *E) { m.Time = time.Time{} }, code: protocol.CodeBadRequest, field: "time"},
		{name: "negative duration", mutate: func(m *E) { m.DurationNS = -1 }, code: protocol.CodeBadRequest, field: "duration_ns"},
	}
	for _, k := range kinds {
		cases = append(cases, msgCase[E]{name: string(k), mutate: func(m *E) { m.Kind = k }})
	}
	// An event is checked alone (Validate, EventBatchBuilder.Add) and, as
	// peers meet it, inside a batch of its pipeline and kind, where the
	// field is events[0]'s.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := validEvent()
			tc.mutate(&ev)
			batch := protocol.EventBatch{V: protocol.Version, Pipeline: "sales", Kind: protocol.EventRunStop, Events: []E{ev}}
			if tc.field != "kind" {
				batch.Kind = ev.Kind
			}
			var builder protocol.EventBatchBuilder
			encErr := builder.Add(ev, protocol.MaxMessageBytes)
			_, batchErr := protocol.EncodeEventBatch(batch)
			_, decErr := protocol.DecodeEventBatch(mustJSON(t, batch))
			if tc.code == "" {
				wantOK(t, ev.Validate())
				wantOK(t, encErr)
				wantOK(t, batchErr)
				wantOK(t, decErr)
				return
			}
			wantCode(t, ev.Validate(), tc.code, tc.field)
			wantCode(t, encErr, tc.code, tc.field)
			wantCode(t, batchErr, tc.code, "events[0]."+tc.field)
			wantCode(t, decErr, tc.code, "events[0]."+tc.field)
		})
	}
}

func TestEventBatchValidation(t *testing.T) {
	type B = protocol.EventBatch
	full := func() []protocol.Event {
		evs := make([]protocol.Event, protocol.MaxEventBatch)
		for i := range evs {
			evs[i] = validEvent()
			evs[i].Partition = fmt.Sprintf("p%d", i)
		}
		return evs
	}
	checkMessageCases(t, eventBatchCodec, validEventBatch, []msgCase[B]{
		{name: "valid", mutate: func(*B) {}},
		{name: "one event", mutate: func(m *B) { m.Events = m.Events[:1] }},
		{name: "full", mutate: func(m *B) { m.Events = full() }},
		{name: "exceptions", mutate: func(m *B) {
			m.Kind = protocol.EventRunException
			for i := range m.Events {
				m.Events[i].Kind, m.Events[i].Error = protocol.EventRunException, &protocol.Error{Code: protocol.CodeTimeout, Message: "took 5m"}
			}
		}},
		{name: "no version", mutate: func(m *B) { m.V = 0 }, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "event of another version", mutate: func(m *B) { m.Events[1].V = 2 }, code: protocol.CodeUnsupportedVersion, field: "events[1].v"},
		{name: "bad pipeline", mutate: func(m *B) { m.Pipeline = "a.b" }, code: protocol.CodeBadRequest, field: "pipeline"},
		{name: "unknown kind", mutate: func(m *B) { m.Kind = "run.>" }, code: protocol.CodeBadRequest, field: "kind"},
		{name: "no events", mutate: func(m *B) { m.Events = nil }, code: protocol.CodeBadRequest, field: "events"},
		{name: "empty events", mutate: func(m *B) { m.Events = []protocol.Event{} }, code: protocol.CodeBadRequest, field: "events"},
		{name: "too many events", mutate: func(m *B) { m.Events = append(full(), validEvent()) }, code: protocol.CodeBadRequest, field: "events"},
		{name: "invalid event", mutate: func(m *B) { m.Events[1].RunID = "" }, code: protocol.CodeBadRequest, field: "events[1].run_id"},
		{name: "event of another pipeline", mutate: func(m *B) { m.Events[1].Pipeline = "marketing" }, code: protocol.CodeBadRequest, field: "events[1].pipeline"},
		{name: "event of another kind", mutate: func(m *B) { m.Events[0].Kind = protocol.EventRunStart }, code: protocol.CodeBadRequest, field: "events[0].kind"},
		{name: "mixed kinds", mutate: func(m *B) {
			m.Events[1].Kind, m.Events[1].Error = protocol.EventRunException, &protocol.Error{Code: protocol.CodeTimeout, Message: "took 5m"}
		}, code: protocol.CodeBadRequest, field: "events[1].kind"},
		{name: "event with an unknown kind", mutate: func(m *B) { m.Events[1].Kind = "run.pause" }, code: protocol.CodeBadRequest, field: "events[1].kind"},
	})
}

func TestDecodeEventBatchRefusesUnknownEventFields(t *testing.T) {
	data := []byte(`{"v":1,"pipeline":"sales","kind":"run.start","events":[{"v":1,"kind":"run.start","pipeline":"sales",` +
		`"asset":"sum","partition":"p","run_id":"r1","time":"2025-01-15T10:30:00Z","extra":1}]}`)
	_, err := protocol.DecodeEventBatch(data)
	wantCode(t, err, protocol.CodeBadRequest, "")
}

func TestScheduledRunValidation(t *testing.T) {
	type S = protocol.ScheduledRun
	checkMessageCases(t, scheduledRunCodec, validScheduledRun, []msgCase[S]{
		{name: "valid", mutate: func(*S) {}},
		{name: "no version", mutate: func(m *S) { m.V = 0 }, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "no run id", mutate: func(m *S) { m.RunID = "" }, code: protocol.CodeBadRequest, field: "run_id"},
		{name: "request not scheduled", mutate: func(m *S) { m.Request.ScheduledAt = nil }, code: protocol.CodeBadRequest, field: "request.scheduled_at"},
		{name: "invalid request", mutate: func(m *S) { m.Request.Priority = 9 }, code: protocol.CodeBadRequest, field: "request.priority"},
		{name: "request of another version", mutate: func(m *S) { m.Request.V = 2 }, code: protocol.CodeUnsupportedVersion, field: "request.v"},
	})
}
