package protocol_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

// checkRequest checks one request through Validate, EncodeRequest and,
// from the JSON encoding/json produces, DecodeRequest. An empty code means
// the request must be accepted everywhere. goOnly marks values
// encoding/json cannot carry (it replaces invalid UTF-8), which only Validate
// and EncodeRequest can see.
func checkRequest[T protocol.Request](t *testing.T, req T, code, field string, goOnly bool) {
	t.Helper()
	data, encErr := protocol.EncodeRequest(req)
	got, decErr := protocol.DecodeRequest[T](mustJSON(t, req))
	if code == "" {
		wantOK(t, req.Validate())
		wantOK(t, encErr)
		wantOK(t, decErr)
		if _, err := protocol.DecodeRequest[T](data); err != nil {
			t.Fatalf("EncodeRequest output does not decode: %v", err)
		}
		if got.Verb() != req.Verb() {
			t.Fatalf("verb %s, want %s", got.Verb(), req.Verb())
		}
		return
	}
	wantCode(t, req.Validate(), code, field)
	wantCode(t, encErr, code, field)
	if !goOnly {
		wantCode(t, decErr, code, field)
	}
}

// reqCase breaks one rule of a request of type T.
type reqCase[T protocol.Request] struct {
	name   string
	mutate func(*T)
	code   string
	field  string
	goOnly bool
}

func checkRequestCases[T protocol.Request](t *testing.T, valid func() T, cases []reqCase[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := valid()
			tc.mutate(&req)
			checkRequest(t, req, tc.code, tc.field, tc.goOnly)
		})
	}
}

// target holds the fields by which a request addresses an asset's
// partition.
type target struct {
	v                          int
	pipeline, asset, partition string
}

// targetRules are the rules shared by every request that addresses an
// asset's partition (run, get, exists, status, cancel, invalidate).
var targetRules = []struct {
	name   string
	mutate func(*target)
	code   string
	field  string
	goOnly bool
}{
	{name: "valid", mutate: func(*target) {}},
	{name: "default partition", mutate: func(r *target) { r.partition = "" }},
	{name: "partition of any text", mutate: func(r *target) { r.partition = "us/east.*> 2025 ✓\n\"" }},
	{name: "partition at the limit", mutate: func(r *target) { r.partition = strings.Repeat("é", protocol.MaxPartitionBytes/2) }},
	{name: "longest names", mutate: func(r *target) {
		r.pipeline = "P" + strings.Repeat("x", protocol.MaxNameBytes-1)
		r.asset = "a" + strings.Repeat("-_9", (protocol.MaxNameBytes-1)/3)
	}},
	{name: "no version", mutate: func(r *target) { r.v = 0 }, code: protocol.CodeUnsupportedVersion, field: "v"},
	{name: "newer version", mutate: func(r *target) { r.v = protocol.Version + 1 }, code: protocol.CodeUnsupportedVersion, field: "v"},
	{name: "no pipeline", mutate: func(r *target) { r.pipeline = "" }, code: protocol.CodeBadRequest, field: "pipeline"},
	{name: "pipeline starting with a digit", mutate: func(r *target) { r.pipeline = "1sales" }, code: protocol.CodeBadRequest, field: "pipeline"},
	{name: "pipeline starting with an underscore", mutate: func(r *target) { r.pipeline = "_sales" }, code: protocol.CodeBadRequest, field: "pipeline"},
	{name: "pipeline with a dot", mutate: func(r *target) { r.pipeline = "sales.eu" }, code: protocol.CodeBadRequest, field: "pipeline"},
	{name: "pipeline with a wildcard", mutate: func(r *target) { r.pipeline = "sales>" }, code: protocol.CodeBadRequest, field: "pipeline"},
	{name: "pipeline too long", mutate: func(r *target) { r.pipeline = strings.Repeat("p", protocol.MaxNameBytes+1) }, code: protocol.CodeBadRequest, field: "pipeline"},
	{name: "no asset", mutate: func(r *target) { r.asset = "" }, code: protocol.CodeBadRequest, field: "asset"},
	{name: "asset with a space", mutate: func(r *target) { r.asset = "my asset" }, code: protocol.CodeBadRequest, field: "asset"},
	{name: "asset with a slash", mutate: func(r *target) { r.asset = "a/b" }, code: protocol.CodeBadRequest, field: "asset"},
	{name: "asset with unicode", mutate: func(r *target) { r.asset = "prix€" }, code: protocol.CodeBadRequest, field: "asset"},
	{name: "partition too long", mutate: func(r *target) { r.partition = strings.Repeat("x", protocol.MaxPartitionBytes+1) }, code: protocol.CodeBadRequest, field: "partition"},
	{name: "partition not UTF-8", mutate: func(r *target) { r.partition = "2025-\xff" }, code: protocol.CodeBadRequest, field: "partition", goOnly: true},
}

func checkTargetRules[T protocol.Request](t *testing.T, build func(target) T) {
	t.Helper()
	for _, tc := range targetRules {
		t.Run(tc.name, func(t *testing.T) {
			tg := target{v: protocol.Version, pipeline: "sales", asset: "sum", partition: "2025-01-15"}
			tc.mutate(&tg)
			checkRequest(t, build(tg), tc.code, tc.field, tc.goOnly)
		})
	}
}

func TestTargetRules(t *testing.T) {
	t.Run("run", func(t *testing.T) {
		checkTargetRules(t, func(g target) protocol.RunRequest {
			return protocol.RunRequest{V: g.v, Pipeline: g.pipeline, Asset: g.asset, Partition: g.partition, Force: true, Priority: 1}
		})
	})
	t.Run("get", func(t *testing.T) {
		checkTargetRules(t, func(g target) protocol.GetRequest {
			return protocol.GetRequest{V: g.v, Pipeline: g.pipeline, Asset: g.asset, Partition: g.partition, Storage: "s3"}
		})
	})
	t.Run("exists", func(t *testing.T) {
		checkTargetRules(t, func(g target) protocol.ExistsRequest {
			return protocol.ExistsRequest{V: g.v, Pipeline: g.pipeline, Asset: g.asset, Partition: g.partition}
		})
	})
	t.Run("status", func(t *testing.T) {
		checkTargetRules(t, func(g target) protocol.StatusRequest {
			return protocol.StatusRequest{V: g.v, Pipeline: g.pipeline, Asset: g.asset, Partition: g.partition}
		})
	})
	t.Run("cancel", func(t *testing.T) {
		checkTargetRules(t, func(g target) protocol.CancelRequest {
			return protocol.CancelRequest{V: g.v, Pipeline: g.pipeline, Asset: g.asset, Partition: g.partition}
		})
	})
	t.Run("invalidate", func(t *testing.T) {
		checkTargetRules(t, func(g target) protocol.InvalidateRequest {
			return protocol.InvalidateRequest{V: g.v, Pipeline: g.pipeline, Asset: g.asset, Partition: g.partition, Cascade: true}
		})
	})
}

func TestRunRequestValidation(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	checkRequestCases(t, validRunRequest, []reqCase[protocol.RunRequest]{
		{name: "every option", mutate: func(r *protocol.RunRequest) {
			r.Force, r.WithDeps, r.Async, r.Storage = true, new(false), true, "s3"
			r.TimeoutMS, r.Priority, r.ScheduledAt = 60000, protocol.MaxPriority, &at
		}},
		{name: "scheduled in the past", mutate: func(r *protocol.RunRequest) {
			r.Async, r.ScheduledAt = true, new(at.AddDate(-10, 0, 0))
		}},
		{name: "negative timeout", mutate: func(r *protocol.RunRequest) { r.TimeoutMS = -1 }, code: protocol.CodeBadRequest, field: "timeout_ms"},
		{name: "negative priority", mutate: func(r *protocol.RunRequest) { r.Priority = -1 }, code: protocol.CodeBadRequest, field: "priority"},
		{name: "priority above the highest", mutate: func(r *protocol.RunRequest) { r.Priority = protocol.MaxPriority + 1 }, code: protocol.CodeBadRequest, field: "priority"},
		{name: "storage not a name", mutate: func(r *protocol.RunRequest) { r.Storage = "s3/eu" }, code: protocol.CodeBadRequest, field: "storage"},
		{name: "scheduled without async", mutate: func(r *protocol.RunRequest) { r.ScheduledAt = &at }, code: protocol.CodeBadRequest, field: "scheduled_at"},
		{name: "the caller's run id", mutate: func(r *protocol.RunRequest) { r.RunID = "my-run_1" }},
		{name: "run id not a token", mutate: func(r *protocol.RunRequest) { r.RunID = "my run" }, code: protocol.CodeBadRequest, field: "run_id"},
		{name: "run id of a backfill's shape", mutate: func(r *protocol.RunRequest) {
			r.RunID = protocol.BackfillRunID("bf", "2025-01-01")
		}, code: protocol.CodeBadRequest, field: "run_id"},
		{name: "scheduled at the zero time", mutate: func(r *protocol.RunRequest) {
			r.Async, r.ScheduledAt = true, &time.Time{}
		}, code: protocol.CodeBadRequest, field: "scheduled_at"},
	})
}

func TestRunRequestRunsDeps(t *testing.T) {
	for _, tc := range []struct {
		withDeps *bool
		want     bool
	}{{nil, true}, {new(true), true}, {new(false), false}} {
		if got := (protocol.RunRequest{WithDeps: tc.withDeps}).RunsDeps(); got != tc.want {
			t.Errorf("RunsDeps with %v = %v, want %v", tc.withDeps, got, tc.want)
		}
	}
}

func TestGetAndExistsStorage(t *testing.T) {
	checkRequest(t, protocol.GetRequest{V: 1, Pipeline: "sales", Asset: "sum", Storage: "no such"}, protocol.CodeBadRequest, "storage", false)
	checkRequest(t, protocol.ExistsRequest{V: 1, Pipeline: "sales", Asset: "sum", Storage: "-s3"}, protocol.CodeBadRequest, "storage", false)
	checkRequest(t, protocol.ExistsRequest{V: 1, Pipeline: "sales", Asset: "sum", Storage: "memory"}, "", "", false)
	checkRequest(t, protocol.GetRequest{V: 1, Pipeline: "sales", Asset: "sum", Storage: "s3", Stage: true}, "", "", false)
}

func TestBackfillRequestValidation(t *testing.T) {
	valid := func() protocol.BackfillRequest {
		return protocol.BackfillRequest{V: protocol.Version, Pipeline: "sales", Asset: "sum", Partitions: []string{"2025-01-01", "2025-01-02"}}
	}
	many := func(n int) []string {
		ps := make([]string, n)
		for i := range ps {
			ps[i] = strconv.FormatInt(int64(i), 36)
		}
		return ps
	}
	checkRequestCases(t, valid, []reqCase[protocol.BackfillRequest]{
		{name: "valid", mutate: func(*protocol.BackfillRequest) {}},
		{name: "every option", mutate: func(r *protocol.BackfillRequest) {
			r.Parallel, r.Force, r.OnError, r.Async = 4, true, protocol.OnErrorHalt, true
		}},
		{name: "continue", mutate: func(r *protocol.BackfillRequest) { r.OnError = protocol.OnErrorContinue }},
		{name: "the most partitions", mutate: func(r *protocol.BackfillRequest) { r.Partitions = many(protocol.MaxBackfillPartitions) }},
		{name: "no version", mutate: func(r *protocol.BackfillRequest) { r.V = 0 }, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "bad pipeline", mutate: func(r *protocol.BackfillRequest) { r.Pipeline = "a b" }, code: protocol.CodeBadRequest, field: "pipeline"},
		{name: "bad asset", mutate: func(r *protocol.BackfillRequest) { r.Asset = "" }, code: protocol.CodeBadRequest, field: "asset"},
		{name: "no partitions", mutate: func(r *protocol.BackfillRequest) { r.Partitions = nil }, code: protocol.CodeBadRequest, field: "partitions"},
		{name: "too many partitions", mutate: func(r *protocol.BackfillRequest) { r.Partitions = many(protocol.MaxBackfillPartitions + 1) }, code: protocol.CodeBadRequest, field: "partitions"},
		{name: "empty partition", mutate: func(r *protocol.BackfillRequest) { r.Partitions[1] = "" }, code: protocol.CodeBadRequest, field: "partitions[1]"},
		{name: "repeated partition", mutate: func(r *protocol.BackfillRequest) { r.Partitions = append(r.Partitions, "2025-01-01") }, code: protocol.CodeBadRequest, field: "partitions[2]"},
		{name: "partition too long", mutate: func(r *protocol.BackfillRequest) { r.Partitions[0] = strings.Repeat("x", protocol.MaxPartitionBytes+1) }, code: protocol.CodeBadRequest, field: "partitions[0]"},
		{name: "partition not UTF-8", mutate: func(r *protocol.BackfillRequest) { r.Partitions[0] = "\xc3" }, code: protocol.CodeBadRequest, field: "partitions[0]", goOnly: true},
		{name: "negative parallel", mutate: func(r *protocol.BackfillRequest) { r.Parallel = -1 }, code: protocol.CodeBadRequest, field: "parallel"},
		{name: "the most parallel", mutate: func(r *protocol.BackfillRequest) { r.Parallel = protocol.MaxBackfillParallel }},
		{name: "parallel over the limit", mutate: func(r *protocol.BackfillRequest) { r.Parallel = protocol.MaxBackfillParallel + 1 }, code: protocol.CodeBadRequest, field: "parallel"},
		{name: "unknown on_error", mutate: func(r *protocol.BackfillRequest) { r.OnError = "stop" }, code: protocol.CodeBadRequest, field: "on_error"},
	})
}

func TestInvalidateRequestValidation(t *testing.T) {
	valid := func() protocol.InvalidateRequest {
		return protocol.InvalidateRequest{V: protocol.Version, Pipeline: "sales", Asset: "sum", Cascade: true}
	}
	checkRequestCases(t, valid, []reqCase[protocol.InvalidateRequest]{
		{name: "default partition", mutate: func(*protocol.InvalidateRequest) {}},
		{name: "one partition", mutate: func(r *protocol.InvalidateRequest) { r.Partition = "2025-01-01" }},
		{name: "partitions", mutate: func(r *protocol.InvalidateRequest) { r.Partitions = []string{"2025-01-01", "2025-01-02"} }},
		{name: "all", mutate: func(r *protocol.InvalidateRequest) { r.All = true }},
		{name: "partition and partitions", mutate: func(r *protocol.InvalidateRequest) {
			r.Partition, r.Partitions = "a", []string{"b"}
		}, code: protocol.CodeBadRequest, field: "partitions"},
		{name: "partitions and all", mutate: func(r *protocol.InvalidateRequest) {
			r.Partitions, r.All = []string{"b"}, true
		}, code: protocol.CodeBadRequest, field: "partitions"},
		{name: "partition and all", mutate: func(r *protocol.InvalidateRequest) {
			r.Partition, r.All = "a", true
		}, code: protocol.CodeBadRequest, field: "partitions"},
		{name: "empty partitions", mutate: func(r *protocol.InvalidateRequest) { r.Partitions = []string{} }, code: protocol.CodeBadRequest, field: "partitions", goOnly: true},
		{name: "empty partition in the list", mutate: func(r *protocol.InvalidateRequest) { r.Partitions = []string{"a", ""} }, code: protocol.CodeBadRequest, field: "partitions[1]"},
		{name: "repeated partition", mutate: func(r *protocol.InvalidateRequest) { r.Partitions = []string{"a", "b", "a"} }, code: protocol.CodeBadRequest, field: "partitions[2]"},
		{name: "too many partitions", mutate: func(r *protocol.InvalidateRequest) {
			r.Partitions = make([]string, protocol.MaxBackfillPartitions+1)
			for i := range r.Partitions {
				r.Partitions[i] = strconv.Itoa(i)
			}
		}, code: protocol.CodeBadRequest, field: "partitions"},
	})
}

func TestInspectRequestValidation(t *testing.T) {
	t.Run("graph", func(t *testing.T) {
		valid := func() protocol.GraphRequest { return protocol.GraphRequest{V: protocol.Version, Pipeline: "sales"} }
		checkRequestCases(t, valid, []reqCase[protocol.GraphRequest]{
			{name: "default format", mutate: func(*protocol.GraphRequest) {}},
			{name: "ascii", mutate: func(r *protocol.GraphRequest) { r.Format = protocol.GraphASCII }},
			{name: "mermaid", mutate: func(r *protocol.GraphRequest) { r.Format = protocol.GraphMermaid }},
			{name: "dot", mutate: func(r *protocol.GraphRequest) { r.Format = protocol.GraphDOT }},
			{name: "unknown format", mutate: func(r *protocol.GraphRequest) { r.Format = "svg" }, code: protocol.CodeBadRequest, field: "format"},
			{name: "format in capitals", mutate: func(r *protocol.GraphRequest) { r.Format = "DOT" }, code: protocol.CodeBadRequest, field: "format"},
			{name: "bad pipeline", mutate: func(r *protocol.GraphRequest) { r.Pipeline = "*" }, code: protocol.CodeBadRequest, field: "pipeline"},
			{name: "old version", mutate: func(r *protocol.GraphRequest) { r.V = -1 }, code: protocol.CodeUnsupportedVersion, field: "v"},
		})
	})
	t.Run("assets", func(t *testing.T) {
		valid := func() protocol.AssetsRequest { return protocol.AssetsRequest{V: protocol.Version, Pipeline: "sales"} }
		checkRequestCases(t, valid, []reqCase[protocol.AssetsRequest]{
			{name: "valid", mutate: func(*protocol.AssetsRequest) {}},
			{name: "no pipeline", mutate: func(r *protocol.AssetsRequest) { r.Pipeline = "" }, code: protocol.CodeBadRequest, field: "pipeline"},
			{name: "no version", mutate: func(r *protocol.AssetsRequest) { r.V = 0 }, code: protocol.CodeUnsupportedVersion, field: "v"},
		})
	})
	t.Run("info", func(t *testing.T) {
		valid := func() protocol.InfoRequest {
			return protocol.InfoRequest{V: protocol.Version, Pipeline: "sales", Asset: "sum"}
		}
		checkRequestCases(t, valid, []reqCase[protocol.InfoRequest]{
			{name: "valid", mutate: func(*protocol.InfoRequest) {}},
			{name: "no asset", mutate: func(r *protocol.InfoRequest) { r.Asset = "" }, code: protocol.CodeBadRequest, field: "asset"},
			{name: "bad pipeline", mutate: func(r *protocol.InfoRequest) { r.Pipeline = "sales eu" }, code: protocol.CodeBadRequest, field: "pipeline"},
		})
	})
	t.Run("approve", func(t *testing.T) {
		valid := func() protocol.ApproveRequest {
			return protocol.ApproveRequest{V: protocol.Version, Pipeline: "release", Asset: "publish", Partition: "2025-01", Reason: "looks good"}
		}
		checkRequestCases(t, valid, []reqCase[protocol.ApproveRequest]{
			{name: "valid", mutate: func(*protocol.ApproveRequest) {}},
			{name: "hostile partition text is data", mutate: func(r *protocol.ApproveRequest) { r.Partition = "../../etc/passwd" }},
			{name: "no asset", mutate: func(r *protocol.ApproveRequest) { r.Asset = "" }, code: protocol.CodeBadRequest, field: "asset"},
			{name: "partition not UTF-8", mutate: func(r *protocol.ApproveRequest) { r.Partition = "\xff" }, code: protocol.CodeBadRequest, field: "partition", goOnly: true},
			{name: "reason too long", mutate: func(r *protocol.ApproveRequest) { r.Reason = strings.Repeat("x", protocol.MaxReasonBytes+1) },
				code: protocol.CodeBadRequest, field: "reason"},
		})
	})
	t.Run("reject", func(t *testing.T) {
		valid := func() protocol.RejectRequest {
			return protocol.RejectRequest{V: protocol.Version, Pipeline: "release", Asset: "publish"}
		}
		checkRequestCases(t, valid, []reqCase[protocol.RejectRequest]{
			{name: "valid", mutate: func(*protocol.RejectRequest) {}},
			{name: "reason not UTF-8", mutate: func(r *protocol.RejectRequest) { r.Reason = "\xff" }, code: protocol.CodeBadRequest, field: "reason", goOnly: true},
			{name: "bad pipeline", mutate: func(r *protocol.RejectRequest) { r.Pipeline = "a.b" }, code: protocol.CodeBadRequest, field: "pipeline"},
		})
	})
	t.Run("approvals", func(t *testing.T) {
		valid := func() protocol.ApprovalsRequest { return protocol.ApprovalsRequest{V: protocol.Version} }
		checkRequestCases(t, valid, []reqCase[protocol.ApprovalsRequest]{
			{name: "valid", mutate: func(*protocol.ApprovalsRequest) {}},
			{name: "one pipeline", mutate: func(r *protocol.ApprovalsRequest) { r.Pipeline = "release" }},
			{name: "bad pipeline", mutate: func(r *protocol.ApprovalsRequest) { r.Pipeline = "*" }, code: protocol.CodeBadRequest, field: "pipeline"},
		})
	})
	t.Run("signal", func(t *testing.T) {
		valid := func() protocol.SignalRequest {
			return protocol.SignalRequest{V: protocol.Version, Token: "fsg1.abc.def", Payload: json.RawMessage(`{"ok":true}`)}
		}
		checkRequestCases(t, valid, []reqCase[protocol.SignalRequest]{
			{name: "valid", mutate: func(*protocol.SignalRequest) {}},
			{name: "no payload", mutate: func(r *protocol.SignalRequest) { r.Payload = nil }},
			{name: "no token", mutate: func(r *protocol.SignalRequest) { r.Token = "" }, code: protocol.CodeBadRequest, field: "token"},
			{name: "token too long", mutate: func(r *protocol.SignalRequest) { r.Token = strings.Repeat("x", protocol.MaxTokenBytes+1) },
				code: protocol.CodeBadRequest, field: "token"},
			{name: "payload too large", mutate: func(r *protocol.SignalRequest) {
				r.Payload = json.RawMessage(`"` + strings.Repeat("x", protocol.MaxSignalPayloadBytes) + `"`)
			}, code: protocol.CodeBadRequest, field: "payload"},
		})
	})
	t.Run("pipelines", func(t *testing.T) {
		valid := func() protocol.PipelinesRequest { return protocol.PipelinesRequest{V: protocol.Version} }
		checkRequestCases(t, valid, []reqCase[protocol.PipelinesRequest]{
			{name: "valid", mutate: func(*protocol.PipelinesRequest) {}},
			{name: "newer version", mutate: func(r *protocol.PipelinesRequest) { r.V = 2 }, code: protocol.CodeUnsupportedVersion, field: "v"},
		})
	})
}

func TestRequestVerbs(t *testing.T) {
	reqs := []protocol.Request{
		protocol.RunRequest{}, protocol.GetRequest{}, protocol.ExistsRequest{}, protocol.StatusRequest{},
		protocol.CancelRequest{}, protocol.InvalidateRequest{}, protocol.BackfillRequest{}, protocol.GraphRequest{},
		protocol.AssetsRequest{}, protocol.InfoRequest{}, protocol.PipelinesRequest{}, protocol.BackfillStatusRequest{},
		protocol.ApproveRequest{}, protocol.RejectRequest{}, protocol.ApprovalsRequest{}, protocol.SignalRequest{},
		protocol.SchedulesRequest{}, protocol.SensorsRequest{}, protocol.PauseRequest{}, protocol.ResumeRequest{},
	}
	verbs := protocol.Verbs()
	if len(reqs) != len(verbs) {
		t.Fatalf("%d request types for %d verbs", len(reqs), len(verbs))
	}
	for i, r := range reqs {
		if r.Verb() != verbs[i] {
			t.Errorf("%T.Verb() = %q, want %q", r, r.Verb(), verbs[i])
		}
	}
}
