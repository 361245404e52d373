package protocol_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

func TestReplyCarriesResult(t *testing.T) {
	want := protocol.RunReply{RunID: "r1", Asset: "sum", Partition: "default", Cached: true}
	data := protocol.EncodeReply(want, nil)
	if string(data) != `{"v":1,"ok":{"run_id":"r1","asset":"sum","partition":"default","cached":true}}` {
		t.Errorf("encoded %s", data)
	}
	got, err := protocol.DecodeReply[protocol.RunReply](data)
	wantOK(t, err)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestReplyCarriesError(t *testing.T) {
	sent := &protocol.Error{
		Code:    protocol.CodeAssetNotFound,
		Message: `Asset "unknown" not found in sales. Available: [numbers doubled sum]`,
		Details: map[string]any{"asset": "unknown", "available": []any{"numbers", "doubled", "sum"}},
	}
	data := protocol.EncodeReply(protocol.RunReply{}, sent)
	got, err := protocol.DecodeReply[protocol.RunReply](data)
	wantCode(t, err, protocol.CodeAssetNotFound, "")
	if !reflect.DeepEqual(err, sent) {
		t.Errorf("error %+v, want %+v", err, sent)
	}
	if got != (protocol.RunReply{}) {
		t.Errorf("result %+v with an error", got)
	}
	// EncodeError is the same envelope, for any verb.
	if string(protocol.EncodeError(sent)) != string(data) {
		t.Errorf("EncodeError differs from EncodeReply with an error")
	}
	_, err = protocol.DecodeReply[protocol.GraphReply](protocol.EncodeError(sent))
	wantCode(t, err, protocol.CodeAssetNotFound, "")
}

func TestEncodeReplyNeverFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		code string
	}{
		{"invalid result", protocol.EncodeReply(protocol.RunReply{RunID: "r 1"}, nil), protocol.CodeInternal},
		{"result too large", protocol.EncodeReply(protocol.GraphReply{Graph: strings.Repeat("x", protocol.MaxMessageBytes)}, nil), protocol.CodePayloadTooLarge},
		{"nil error", protocol.EncodeError(nil), protocol.CodeInternal},
		{"error without a code", protocol.EncodeError(&protocol.Error{Message: "disk full"}), protocol.CodeInternal},
		{"error with unencodable details", protocol.EncodeError(&protocol.Error{Code: protocol.CodeTimeout, Message: "slow", Details: map[string]any{"x": math.NaN()}}), protocol.CodeTimeout},
		{"error with a huge message", protocol.EncodeError(&protocol.Error{Code: protocol.CodeExecutionFailed, Message: strings.Repeat("<", protocol.MaxMessageBytes)}), protocol.CodeExecutionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := protocol.DecodeReply[protocol.RunReply](tc.data)
			wantCode(t, err, tc.code, "")
		})
	}
	_, err := protocol.DecodeReply[protocol.RunReply](protocol.EncodeError(&protocol.Error{Message: "disk full"}))
	if err.Message != "disk full" {
		t.Errorf("message %q, want the original kept", err.Message)
	}
}

func TestDecodeReplyRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, body, code, field string
	}{
		{name: "neither side", body: `{"v":1}`, code: protocol.CodeBadRequest},
		{name: "both sides", body: `{"v":1,"ok":{"exists":true},"error":{"code":"internal","message":"x"}}`, code: protocol.CodeBadRequest},
		{name: "null ok", body: `{"v":1,"ok":null}`, code: protocol.CodeBadRequest},
		{name: "newer version", body: `{"v":2,"ok":{"exists":true}}`, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "unknown field in result", body: `{"v":1,"ok":{"exists":true,"size":3}}`, code: protocol.CodeBadRequest, field: "size"},
		{name: "invalid error", body: `{"v":1,"error":{"code":"","message":"x"}}`, code: protocol.CodeBadRequest, field: "error.code"},
		{name: "empty", body: ``, code: protocol.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := protocol.DecodeReply[protocol.ExistsReply]([]byte(tc.body))
			wantCode(t, err, tc.code, tc.field)
		})
	}
	_, err := protocol.DecodeReply[protocol.RunReply]([]byte(`{"v":1,"ok":{}}`))
	wantCode(t, err, protocol.CodeBadRequest, "run_id")
}

// replyCase breaks one rule of a reply; empty code means valid.
type replyCase struct {
	name  string
	reply protocol.ReplyBody
	code  string
	field string
}

func TestReplyValidation(t *testing.T) {
	get := func(mutate func(*protocol.GetReply)) protocol.GetReply {
		r := protocol.GetReply{Asset: "sum", Partition: "default", RunID: "r1", ResultRef: validRef(), Value: json.RawMessage(`[2,4,6]`)}
		mutate(&r)
		return r
	}
	job := func(mutate func(*protocol.Job)) protocol.RunReply {
		j := protocol.Job{ID: "r1", Pipeline: "sales", Asset: "sum", Partition: "default", State: protocol.StateScheduled, ScheduledAt: &t0}
		mutate(&j)
		return protocol.RunReply{RunID: "r1", Asset: "sum", Partition: "default", Job: &j}
	}
	for _, tc := range []replyCase{
		{name: "run async", reply: job(func(*protocol.Job) {})},
		{name: "run bad partition", reply: protocol.RunReply{RunID: "r1", Asset: "sum"}, code: protocol.CodeBadRequest, field: "partition"},
		{name: "job unknown state", reply: job(func(j *protocol.Job) { j.State = "queued" }), code: protocol.CodeBadRequest, field: "job.state"},
		{name: "job bad id", reply: job(func(j *protocol.Job) { j.ID = "" }), code: protocol.CodeBadRequest, field: "job.id"},
		{name: "job bad priority", reply: job(func(j *protocol.Job) { j.Priority = 5 }), code: protocol.CodeBadRequest, field: "job.priority"},
		{name: "get inline", reply: get(func(*protocol.GetReply) {})},
		{name: "get with lineage", reply: get(func(r *protocol.GetReply) {
			r.Upstream = []protocol.Lineage{{Asset: "doubled", Partition: "default", RunID: "r0"}}
		})},
		{name: "get lineage without a run", reply: get(func(r *protocol.GetReply) {
			r.Upstream = []protocol.Lineage{{Asset: "doubled", Partition: "default", RunID: "r0"}, {Asset: "numbers", Partition: "default"}}
		}), code: protocol.CodeBadRequest, field: "upstream[1].run_id"},
		{name: "get by reference", reply: get(func(r *protocol.GetReply) { r.Value, r.Size = nil, 10<<20 })},
		{name: "get raw inline", reply: get(func(r *protocol.GetReply) {
			r.Encoding, r.Value, r.Size = protocol.EncodingRaw, json.RawMessage(` "AAEC"`), 3
		})},
		{name: "get raw inline, empty", reply: get(func(r *protocol.GetReply) {
			r.Encoding, r.Value, r.Size = protocol.EncodingRaw, json.RawMessage(`""`), 0
		})},
		{name: "get raw inline null", reply: get(func(r *protocol.GetReply) {
			r.Encoding, r.Value, r.Size = protocol.EncodingRaw, json.RawMessage(`null`), 0
		}), code: protocol.CodeBadRequest, field: "value"},
		{name: "get raw inline not base64", reply: get(func(r *protocol.GetReply) {
			r.Encoding, r.Value, r.Size = protocol.EncodingRaw, json.RawMessage(`"A*"`), 1
		}), code: protocol.CodeBadRequest, field: "value"},
		{name: "get raw inline wrong size", reply: get(func(r *protocol.GetReply) {
			r.Encoding, r.Value, r.Size = protocol.EncodingRaw, json.RawMessage(`"AAEC"`), 4
		}), code: protocol.CodeBadRequest, field: "value"},
		{name: "get inline over the limit", reply: get(func(r *protocol.GetReply) { r.Size = protocol.InlineValueLimit + 1 }), code: protocol.CodeBadRequest, field: "value"},
		{name: "get inline not JSON", reply: get(func(r *protocol.GetReply) { r.Value = json.RawMessage(`[2,`) }), code: protocol.CodeBadRequest, field: "value"},
		{name: "get raw inline not a string", reply: get(func(r *protocol.GetReply) { r.Encoding = protocol.EncodingRaw }), code: protocol.CodeBadRequest, field: "value"},
		{name: "get no run", reply: get(func(r *protocol.GetReply) { r.RunID = "" }), code: protocol.CodeBadRequest, field: "run_id"},
		{name: "get no checksum", reply: get(func(r *protocol.GetReply) { r.SHA256 = "" }), code: protocol.CodeBadRequest, field: "sha256"},
		{name: "get staged", reply: get(func(r *protocol.GetReply) {
			r.Value, r.Size, r.Staged = nil, 10<<20, protocol.StagedName(r.SHA256)
		})},
		{name: "get staged not an object name", reply: get(func(r *protocol.GetReply) {
			r.Value, r.Size, r.Staged = nil, 10<<20, "sha256/../x"
		}), code: protocol.CodeBadRequest, field: "staged"},
		{name: "get staged with a space", reply: get(func(r *protocol.GetReply) {
			r.Value, r.Size, r.Staged = nil, 10<<20, "staged copy"
		}), code: protocol.CodeBadRequest, field: "staged"},
		{name: "get staged and inline", reply: get(func(r *protocol.GetReply) { r.Staged = protocol.StagedName(r.SHA256) }),
			code: protocol.CodeBadRequest, field: "staged"},
		{name: "status not found", reply: protocol.StatusReply{State: protocol.StateNotFound, Partition: "default"}},
		{name: "status skipped", reply: protocol.StatusReply{State: protocol.StateSkipped, Partition: "p", Skip: &protocol.SkipStatus{Router: "r", Chosen: "c"}}},
		{name: "status skip without router", reply: protocol.StatusReply{State: protocol.StateSkipped, Partition: "p", Skip: &protocol.SkipStatus{Chosen: "c"}}, code: protocol.CodeBadRequest, field: "skip.router"},
		{name: "status bad skip dependency", reply: protocol.StatusReply{State: protocol.StateSkipped, Partition: "p", Skip: &protocol.SkipStatus{Router: "r", Chosen: "c", Dependency: "a b"}}, code: protocol.CodeBadRequest, field: "skip.dependency"},
		{name: "status bad route", reply: protocol.StatusReply{State: protocol.StateCompleted, Partition: "p", Route: "a>b"}, code: protocol.CodeBadRequest, field: "route"},
		{name: "status unknown state", reply: protocol.StatusReply{State: "done", Partition: "default"}, code: protocol.CodeBadRequest, field: "state"},
		{name: "status negative scatter", reply: protocol.StatusReply{State: protocol.StateRunning, Partition: "p", Scatter: &protocol.ScatterStatus{Total: 3, Pending: -1}}, code: protocol.CodeBadRequest, field: "scatter.pending"},
		{name: "status invalid error", reply: protocol.StatusReply{State: protocol.StateFailed, Partition: "p", Error: &protocol.Error{}}, code: protocol.CodeBadRequest, field: "error.code"},
		{name: "cancel negative", reply: protocol.CancelReply{Cancelled: -1}, code: protocol.CodeBadRequest, field: "cancelled"},
		{name: "invalidate negative", reply: protocol.InvalidateReply{Count: -1}, code: protocol.CodeBadRequest, field: "count"},
		{name: "backfill no run", reply: protocol.BackfillReply{Succeeded: 3}, code: protocol.CodeBadRequest, field: "run_id"},
		{name: "backfill negative", reply: protocol.BackfillReply{Failed: -1, RunID: "r"}, code: protocol.CodeBadRequest, field: "failed"},
		{name: "assets repeated", reply: protocol.AssetsReply{Assets: []string{"a", "b", "a"}}, code: protocol.CodeBadRequest, field: "assets[2]"},
		{name: "info bad dependency", reply: protocol.InfoReply{AssetSpec: protocol.AssetSpec{Name: "sum", DependsOn: []string{"x y"}}}, code: protocol.CodeBadRequest, field: "depends_on[0]"},
		{name: "pipelines repeated", reply: protocol.PipelinesReply{Pipelines: []protocol.PipelineSummary{{Name: "a"}, {Name: "a"}}}, code: protocol.CodeBadRequest, field: "pipelines[1].name"},
		{name: "pipelines negative workers", reply: protocol.PipelinesReply{Pipelines: []protocol.PipelineSummary{{Name: "a", Workers: -1}}}, code: protocol.CodeBadRequest, field: "pipelines[0].workers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.code == "" {
				wantOK(t, tc.reply.Validate())
				return
			}
			wantCode(t, tc.reply.Validate(), tc.code, tc.field)
		})
	}
}

func TestGetReplyInline(t *testing.T) {
	r := protocol.GetReply{Value: json.RawMessage(`null`)}
	if !r.Inline() {
		t.Error("a null value is inline")
	}
	if (protocol.GetReply{}).Inline() {
		t.Error("no value is not inline")
	}
}

func TestStagingAllowance(t *testing.T) {
	for _, tc := range []struct {
		size int64
		want time.Duration
	}{
		{-1, 0},
		{0, 0},
		{protocol.StagingMinRate, time.Second},
		{protocol.StagingMinRate / 2, 500 * time.Millisecond},
		{1 << 30, 128 * time.Second},
		{1 << 50, time.Duration(1<<50/protocol.StagingMinRate) * time.Second}, // no overflow
	} {
		if got := protocol.StagingAllowance(tc.size); got != tc.want {
			t.Errorf("StagingAllowance(%d) = %v, want %v", tc.size, got, tc.want)
		}
	}
}
