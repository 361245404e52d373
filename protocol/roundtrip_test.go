package protocol_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

// fullRunRequest sets every field of a RunRequest.
func fullRunRequest() protocol.RunRequest {
	at := time.Date(2025, 1, 16, 2, 0, 0, 0, time.UTC)
	return protocol.RunRequest{
		V: protocol.Version, Pipeline: "sales", Asset: "sum", Partition: "us_east|2025-01-15",
		Force: true, WithDeps: new(false), Async: true, Storage: "s3", TimeoutMS: 60000,
		Priority: 2, ScheduledAt: &at,
	}
}

// fullTask sets every field of a Task.
func fullTask() protocol.Task {
	task := validTask()
	task.Priority, task.Force, task.Storage, task.TimeoutMS = 2, true, "s3", 60000
	deadline := t0.Add(time.Hour)
	task.Deadline = &deadline
	raw := validRef()
	raw.ObjectKey, raw.Encoding, raw.Size = "sales/lines/MjAyNS0wMS0xNQ/r0", protocol.EncodingRaw, 1<<20
	task.Deps = append(task.Deps, protocol.DepRef{Asset: "lines", Partition: "2025-01-15", ResultRef: raw})
	return task
}

// fullEventBatch sets every field of an EventBatch and of its events.
func fullEventBatch() protocol.EventBatch {
	b := validEventBatch()
	b.Kind = protocol.EventRunException
	for i := range b.Events {
		b.Events[i].Kind = protocol.EventRunException
		b.Events[i].Error = &protocol.Error{Code: protocol.CodeTimeout, Message: "took 5m", Details: map[string]any{"timeout_ms": 300000.0}}
		b.Events[i].Metadata = map[string]any{"worker": "w1", "attempt": 2.0}
	}
	b.Events[1].Partition = "us_east|2025-01-15"
	return b
}

func TestRequestsRoundTrip(t *testing.T) {
	for _, req := range []protocol.Request{
		validRunRequest(),
		fullRunRequest(),
		protocol.GetRequest{V: 1, Pipeline: "sales", Asset: "sum", Partition: "eu", Storage: "s3"},
		protocol.GetRequest{V: 1, Pipeline: "sales", Asset: "sum", Partition: "eu", Storage: "s3", Stage: true},
		protocol.ExistsRequest{V: 1, Pipeline: "sales", Asset: "sum", Partition: "eu", Storage: "s3"},
		protocol.StatusRequest{V: 1, Pipeline: "sales", Asset: "sum", Partition: "eu"},
		protocol.CancelRequest{V: 1, Pipeline: "sales", Asset: "sum", Partition: "eu"},
		protocol.InvalidateRequest{V: 1, Pipeline: "sales", Asset: "sum", Partition: "eu", Cascade: true},
		protocol.BackfillRequest{V: 1, Pipeline: "sales", Asset: "sum", Partitions: []string{"a", "b"}, Parallel: 4, Force: true, OnError: protocol.OnErrorHalt, Async: true},
		protocol.GraphRequest{V: 1, Pipeline: "sales", Format: protocol.GraphMermaid},
		protocol.AssetsRequest{V: 1, Pipeline: "sales"},
		protocol.InfoRequest{V: 1, Pipeline: "sales", Asset: "sum"},
		protocol.PipelinesRequest{V: 1},
		protocol.BackfillStatusRequest{V: 1, ID: "bf1", AfterRevision: 42, WaitMS: 5000},
		protocol.ApproveRequest{V: 1, Pipeline: "release", Asset: "publish", Partition: "v1", Reason: "all green"},
		protocol.RejectRequest{V: 1, Pipeline: "release", Asset: "publish", Reason: "not yet"},
		protocol.ApprovalsRequest{V: 1, Pipeline: "release"},
		protocol.SignalRequest{V: 1, Token: "fsg1.e30.AAAA", Payload: json.RawMessage(`{"passed":true}`)},
	} {
		t.Run(req.Verb(), func(t *testing.T) {
			data, err := protocol.EncodeRequest(req)
			wantOK(t, err)
			got, err := decodeAs(req, data)
			wantOK(t, err)
			if !reflect.DeepEqual(got, req) {
				t.Errorf("round trip:\n got %#v\nwant %#v", got, req)
			}
		})
	}
}

// decodeAs decodes data as a request of req's type.
func decodeAs(req protocol.Request, data []byte) (protocol.Request, *protocol.Error) {
	switch req.(type) {
	case protocol.RunRequest:
		return wrap(protocol.DecodeRequest[protocol.RunRequest](data))
	case protocol.GetRequest:
		return wrap(protocol.DecodeRequest[protocol.GetRequest](data))
	case protocol.ExistsRequest:
		return wrap(protocol.DecodeRequest[protocol.ExistsRequest](data))
	case protocol.StatusRequest:
		return wrap(protocol.DecodeRequest[protocol.StatusRequest](data))
	case protocol.CancelRequest:
		return wrap(protocol.DecodeRequest[protocol.CancelRequest](data))
	case protocol.InvalidateRequest:
		return wrap(protocol.DecodeRequest[protocol.InvalidateRequest](data))
	case protocol.BackfillRequest:
		return wrap(protocol.DecodeRequest[protocol.BackfillRequest](data))
	case protocol.GraphRequest:
		return wrap(protocol.DecodeRequest[protocol.GraphRequest](data))
	case protocol.AssetsRequest:
		return wrap(protocol.DecodeRequest[protocol.AssetsRequest](data))
	case protocol.InfoRequest:
		return wrap(protocol.DecodeRequest[protocol.InfoRequest](data))
	case protocol.PipelinesRequest:
		return wrap(protocol.DecodeRequest[protocol.PipelinesRequest](data))
	case protocol.BackfillStatusRequest:
		return wrap(protocol.DecodeRequest[protocol.BackfillStatusRequest](data))
	case protocol.ApproveRequest:
		return wrap(protocol.DecodeRequest[protocol.ApproveRequest](data))
	case protocol.RejectRequest:
		return wrap(protocol.DecodeRequest[protocol.RejectRequest](data))
	case protocol.ApprovalsRequest:
		return wrap(protocol.DecodeRequest[protocol.ApprovalsRequest](data))
	case protocol.SignalRequest:
		return wrap(protocol.DecodeRequest[protocol.SignalRequest](data))
	}
	panic("unknown request type")
}

func wrap[T protocol.Request](v T, err *protocol.Error) (protocol.Request, *protocol.Error) {
	return v, err
}

func roundTripReply[T protocol.ReplyBody](t *testing.T, name string, want T) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		got, err := protocol.DecodeReply[T](protocol.EncodeReply(want, nil))
		wantOK(t, err)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip:\n got %#v\nwant %#v", got, want)
		}
	})
}

func TestRepliesRoundTrip(t *testing.T) {
	done := t1
	roundTripReply(t, "run", protocol.RunReply{RunID: "r1", Asset: "sum", Partition: "default", Cached: true})
	roundTripReply(t, "run async", protocol.RunReply{RunID: "r1", Asset: "sum", Partition: "eu", Job: &protocol.Job{
		ID: "r1", Pipeline: "sales", Asset: "sum", Partition: "eu", Priority: 3, ScheduledAt: &t0, State: protocol.StateScheduled,
	}})
	roundTripReply(t, "get inline", protocol.GetReply{Asset: "sum", Partition: "default", RunID: "r1", ResultRef: validRef(), Value: json.RawMessage(`{"total":30}`)})
	roundTripReply(t, "get by reference", protocol.GetReply{Asset: "sum", Partition: "default", RunID: "r1", ResultRef: validRef()})
	roundTripReply(t, "get staged", protocol.GetReply{Asset: "sum", Partition: "default", RunID: "r1", ResultRef: validRef(), Staged: protocol.StagedName(sha)})
	roundTripReply(t, "exists", protocol.ExistsReply{Exists: true})
	roundTripReply(t, "status", protocol.StatusReply{
		State: protocol.StateFailed, Partition: "default", RunID: "r1", CompletedAt: &done, DurationMS: 1234, Storage: "memory",
		Error:   &protocol.Error{Code: protocol.CodeDependencyFailed, Message: "numbers failed", Details: map[string]any{"root": "numbers"}},
		Scatter: &protocol.ScatterStatus{Total: 100, Completed: 45, Failed: 2, Pending: 53},
	})
	roundTripReply(t, "cancel", protocol.CancelReply{Cancelled: 2})
	roundTripReply(t, "invalidate", protocol.InvalidateReply{Count: 5})
	roundTripReply(t, "backfill", protocol.BackfillReply{Succeeded: 28, Failed: 1, Skipped: 2, RunID: "r9"})
	roundTripReply(t, "graph", protocol.GraphReply{Graph: "raw\n└── cleaned\n"})
	roundTripReply(t, "assets", protocol.AssetsReply{Assets: []string{"raw", "cleaned"}})
	roundTripReply(t, "info", protocol.InfoReply{AssetSpec: validManifest().Assets[2]})
	roundTripReply(t, "pipelines", protocol.PipelinesReply{Pipelines: []protocol.PipelineSummary{{Name: "sales", Assets: 3, Workers: 2}}})
	roundTripReply(t, "backfill status", protocol.BackfillStatusOf(validBackfillRecord(), 7))
	roundTripReply(t, "run through gates", protocol.RunReply{RunID: "r1", Asset: "announce", Partition: "v1", LimitMS: 86_700_000})
	roundTripReply(t, "status of a waiting gate", protocol.StatusReply{State: protocol.StateWaitingApproval, Partition: "v1", RunID: "r1",
		Gate: &protocol.GateStatus{Kind: protocol.GateApproval, Message: "Publish?", Context: map[string]any{"ticket": "REL-1"}, OpenedAt: t0, Deadline: done}})
	roundTripReply(t, "status of a rejected gate", protocol.StatusReply{State: protocol.StateFailed, Partition: "v1", RunID: "r1",
		Error: &protocol.Error{Code: protocol.CodeRejected, Message: "rejected: not yet"},
		Gate:  &protocol.GateStatus{Kind: protocol.GateApproval, OpenedAt: t0, Deadline: done, Decision: "rejected", DecidedAt: &t0, Reason: "not yet"}})
	roundTripReply(t, "decision", protocol.DecisionReply{Asset: "publish", Partition: "v1"})
	roundTripReply(t, "approvals", protocol.ApprovalsReply{Gates: []protocol.WaitingGate{
		{Pipeline: "release", Asset: "publish", Partition: "v1", RunID: "r1", Kind: protocol.GateApproval, Message: "Publish?", OpenedAt: t0, Deadline: done},
		{Pipeline: "release", Asset: "smoke", Partition: "v1", RunID: "r1", Kind: protocol.GateSignal, OpenedAt: t0, Deadline: done, Token: "fsg1.e30.AAAA"},
	}})
}

func roundTripMessage[T interface{ Validate() *protocol.Error }](t *testing.T, name string, c codec[T], want T) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		data, err := c.encode(want)
		wantOK(t, err)
		got, err := c.decode(data)
		wantOK(t, err)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip:\n got %#v\nwant %#v", got, want)
		}
	})
}

func TestMessagesRoundTrip(t *testing.T) {
	roundTripMessage(t, "task", taskCodec, validTask())
	roundTripMessage(t, "full task", taskCodec, fullTask())
	roundTripMessage(t, "completion", completionCodec, validCompletion())
	roundTripMessage(t, "failed completion", completionCodec, failedCompletion())
	roundTripMessage(t, "manifest", manifestCodec, validManifest())
	roundTripMessage(t, "event batch", eventBatchCodec, validEventBatch())
	roundTripMessage(t, "full event batch", eventBatchCodec, fullEventBatch())
	roundTripMessage(t, "scheduled run", scheduledRunCodec, validScheduledRun())
	roundTripMessage(t, "backfill record", backfillRecordCodec, validBackfillRecord())
	roundTripMessage(t, "backfill partitions", backfillPartitionsCodec, validBackfillPartitions())
}
