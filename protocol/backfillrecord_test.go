package protocol_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

var (
	backfillRecordCodec     = codec[protocol.BackfillRecord]{protocol.EncodeBackfillRecord, protocol.DecodeBackfillRecord}
	backfillPartitionsCodec = codec[protocol.BackfillPartitions]{protocol.EncodeBackfillPartitions, protocol.DecodeBackfillPartitions}
)

// validBackfillRecord is a backfill of 10 partitions, 4 of them counted:
// 2 succeeded, 1 failed, 1 skipped.
func validBackfillRecord() protocol.BackfillRecord {
	withDeps := false
	r := protocol.BackfillRecord{V: protocol.Version, ID: "bf1",
		Request: protocol.BackfillSpec{Pipeline: "sales", Asset: "sum", Parallel: 4, Force: true, OnError: protocol.OnErrorHalt,
			WithDeps: &withDeps, TimeoutMS: 60000, Priority: 2},
		Total: 10, Chunks: 2, State: protocol.StateRunning, Coordinator: "c1",
		BackfillCounts: protocol.BackfillCounts{Succeeded: 2, Failed: 1, Skipped: 1},
		Counted:        make([]byte, 2),
		Errors:         map[string]*protocol.Error{"2025-01-03": {Code: protocol.CodeExecutionFailed, Message: "boom"}},
		CreatedAt:      t0, UpdatedAt: t1}
	for _, i := range []int{0, 1, 2, 9} {
		r.SetCounted(i)
	}
	return r
}

func validBackfillPartitions() protocol.BackfillPartitions {
	return protocol.BackfillPartitions{V: protocol.Version, ID: "bf1", Index: 1, Partitions: []string{"2025-01-06", "us|east", "ü"}}
}

func TestBackfillRecordValidation(t *testing.T) {
	checkMessageCases(t, backfillRecordCodec, validBackfillRecord, []msgCase[protocol.BackfillRecord]{
		{name: "valid", mutate: func(*protocol.BackfillRecord) {}},
		{name: "ended", mutate: func(r *protocol.BackfillRecord) {
			r.State, r.NotStarted, r.Halted = protocol.StateFailed, 6, true
		}},
		{name: "no version", mutate: func(r *protocol.BackfillRecord) { r.V = 0 }, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "id with a dot", mutate: func(r *protocol.BackfillRecord) { r.ID = "a.b" }, code: protocol.CodeBadRequest, field: "id"},
		{name: "id too long for its runs", mutate: func(r *protocol.BackfillRecord) { r.ID = strings.Repeat("a", protocol.MaxBackfillIDBytes+1) },
			code: protocol.CodeBadRequest, field: "id"},
		{name: "bad asset", mutate: func(r *protocol.BackfillRecord) { r.Request.Asset = "a b" }, code: protocol.CodeBadRequest, field: "request.asset"},
		{name: "bad policy", mutate: func(r *protocol.BackfillRecord) { r.Request.OnError = "retry" }, code: protocol.CodeBadRequest, field: "request.on_error"},
		{name: "priority", mutate: func(r *protocol.BackfillRecord) { r.Request.Priority = 4 }, code: protocol.CodeBadRequest, field: "request.priority"},
		{name: "no partitions", mutate: func(r *protocol.BackfillRecord) { r.Total = 0 }, code: protocol.CodeBadRequest, field: "total"},
		{name: "more chunks than partitions", mutate: func(r *protocol.BackfillRecord) { r.Chunks = 11 }, code: protocol.CodeBadRequest, field: "chunks"},
		{name: "pending", mutate: func(r *protocol.BackfillRecord) { r.State = protocol.StatePending }, code: protocol.CodeBadRequest, field: "state"},
		{name: "no coordinator", mutate: func(r *protocol.BackfillRecord) { r.Coordinator = "" }, code: protocol.CodeBadRequest, field: "coordinator"},
		{name: "negative count", mutate: func(r *protocol.BackfillRecord) { r.NotStarted = -1 }, code: protocol.CodeBadRequest, field: "not_started"},
		{name: "counts past the total", mutate: func(r *protocol.BackfillRecord) { r.NotStarted = 7 }, code: protocol.CodeBadRequest, field: "succeeded"},
		{name: "short bitmap", mutate: func(r *protocol.BackfillRecord) { r.Counted = r.Counted[:1] }, code: protocol.CodeBadRequest, field: "counted"},
		{name: "bitmap disagrees", mutate: func(r *protocol.BackfillRecord) { r.SetCounted(5) }, code: protocol.CodeBadRequest, field: "counted"},
		{name: "bit past the total", mutate: func(r *protocol.BackfillRecord) {
			r.Counted[1] |= 1 << 3
			r.Succeeded++
		}, code: protocol.CodeBadRequest, field: "counted"},
		{name: "more errors than failures", mutate: func(r *protocol.BackfillRecord) { r.ErrorsOmitted = 1 }, code: protocol.CodeBadRequest, field: "errors"},
		{name: "null error", mutate: func(r *protocol.BackfillRecord) { r.Errors["2025-01-03"] = nil }, code: protocol.CodeBadRequest, field: "errors"},
		{name: "error without code", mutate: func(r *protocol.BackfillRecord) { r.Errors["2025-01-03"].Code = "" }, code: protocol.CodeBadRequest},
		{name: "no creation time", mutate: func(r *protocol.BackfillRecord) { r.CreatedAt = time.Time{} },
			code: protocol.CodeBadRequest, field: "created_at"},
	})
}

func TestBackfillPartitionsValidation(t *testing.T) {
	checkMessageCases(t, backfillPartitionsCodec, validBackfillPartitions, []msgCase[protocol.BackfillPartitions]{
		{name: "valid", mutate: func(*protocol.BackfillPartitions) {}},
		{name: "empty", mutate: func(c *protocol.BackfillPartitions) { c.Partitions = nil }, code: protocol.CodeBadRequest, field: "partitions"},
		{name: "empty partition", mutate: func(c *protocol.BackfillPartitions) { c.Partitions[1] = "" }, code: protocol.CodeBadRequest, field: "partitions[1]"},
		{name: "negative index", mutate: func(c *protocol.BackfillPartitions) { c.Index = -1 }, code: protocol.CodeBadRequest, field: "index"},
		{name: "bad id", mutate: func(c *protocol.BackfillPartitions) { c.ID = "" }, code: protocol.CodeBadRequest, field: "id"},
	})
}

func TestBackfillStatusRequestValidation(t *testing.T) {
	valid := func() protocol.BackfillStatusRequest {
		return protocol.BackfillStatusRequest{V: protocol.Version, ID: "bf1", AfterRevision: 3, WaitMS: protocol.MaxBackfillWaitMS}
	}
	checkRequestCases(t, valid, []reqCase[protocol.BackfillStatusRequest]{
		{name: "valid", mutate: func(*protocol.BackfillStatusRequest) {}},
		{name: "no id", mutate: func(r *protocol.BackfillStatusRequest) { r.ID = "" }, code: protocol.CodeBadRequest, field: "id"},
		{name: "id with a wildcard", mutate: func(r *protocol.BackfillStatusRequest) { r.ID = "bf.>" }, code: protocol.CodeBadRequest, field: "id"},
		{name: "wait too long", mutate: func(r *protocol.BackfillStatusRequest) { r.WaitMS++ }, code: protocol.CodeBadRequest, field: "wait_ms"},
		{name: "negative wait", mutate: func(r *protocol.BackfillStatusRequest) { r.WaitMS = -1 }, code: protocol.CodeBadRequest, field: "wait_ms"},
		{name: "newer version", mutate: func(r *protocol.BackfillStatusRequest) { r.V = 2 }, code: protocol.CodeUnsupportedVersion, field: "v"},
	})
}

func TestBackfillStatusReplyValidation(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*protocol.BackfillStatusReply)
		field  string
	}{
		"no revision":  {func(r *protocol.BackfillStatusReply) { r.Revision = 0 }, "revision"},
		"state":        {func(r *protocol.BackfillStatusReply) { r.State = protocol.StateNotFound }, "state"},
		"counts":       {func(r *protocol.BackfillStatusReply) { r.Skipped = 11 }, "skipped"},
		"errors":       {func(r *protocol.BackfillStatusReply) { r.Failed = 0 }, "errors"},
		"request":      {func(r *protocol.BackfillStatusReply) { r.Request.Pipeline = "" }, "request.pipeline"},
		"total":        {func(r *protocol.BackfillStatusReply) { r.Total = protocol.MaxBackfillPartitions + 1 }, "total"},
		"no partition": {func(r *protocol.BackfillStatusReply) { r.Errors[""] = r.Errors["2025-01-03"] }, "errors"},
	} {
		t.Run(name, func(t *testing.T) {
			r := protocol.BackfillStatusOf(validBackfillRecord(), 7)
			wantOK(t, r.Validate())
			tc.mutate(&r)
			_, err := protocol.DecodeReply[protocol.BackfillStatusReply](mustJSON(t, protocol.Reply[protocol.BackfillStatusReply]{V: protocol.Version, OK: &r}))
			wantCode(t, err, protocol.CodeBadRequest, tc.field)
		})
	}
}

func TestBackfillKeysAndRunIDs(t *testing.T) {
	if got := protocol.BackfillKey("bf1"); got != "backfill.bf1" {
		t.Errorf("BackfillKey = %q", got)
	}
	if got := protocol.BackfillPartsKey("bf1", 12); got != "backfill_parts.bf1.12" {
		t.Errorf("BackfillPartsKey = %q", got)
	}
	if got := protocol.LiveBackfillKey("bf1"); got != "backfill_live.bf1" {
		t.Errorf("LiveBackfillKey = %q", got)
	}
	// A partition's run id is the same every time, differs between
	// partitions and backfills, is a valid id, and leads back to its
	// backfill.
	long := strings.Repeat("x", protocol.MaxBackfillIDBytes)
	seen := map[string]bool{}
	for _, id := range []string{"bf1", "bf-2", long} {
		for _, part := range []string{"2025-01-01", "2025-01-02", strings.Repeat("ü", 2000), "a.b>*"} {
			run := protocol.BackfillRunID(id, part)
			if run != protocol.BackfillRunID(id, part) || seen[run] {
				t.Fatalf("run id %q of %s/%q is not stable or not unique", run, id, part)
			}
			seen[run] = true
			if err := protocol.ValidID(run); err != nil {
				t.Fatalf("run id of %s/%q: %v", id, part, err)
			}
			if got, ok := protocol.BackfillOfRun(run); !ok || got != id {
				t.Fatalf("BackfillOfRun(%q) = %q, %v; want %q", run, got, ok, id)
			}
		}
	}
	for _, run := range []string{"", "r1", "abc-" + strings.Repeat("g", 32), "-" + strings.Repeat("a", 32), "abc_" + strings.Repeat("a", 32), "ABCDEFGHIJKLMNOPQRSTUV"} {
		if id, ok := protocol.BackfillOfRun(run); ok {
			t.Errorf("BackfillOfRun(%q) = %q, true; want false", run, id)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("BackfillRunID accepted an id too long for its runs")
		}
	}()
	protocol.BackfillRunID(long+"x", "p")
}
