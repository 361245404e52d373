package protocol_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

// Valid instances of every message, for tests to start from and break one
// field at a time.

var (
	t0  = time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC)
	t1  = t0.Add(1234 * time.Millisecond)
	sha = strings.Repeat("ab", 32)
)

func validRef() protocol.ResultRef {
	return protocol.ResultRef{
		ObjectKey: "sales/sum/MjAyNS0wMS0xNQ/r1",
		Storage:   "s3",
		Size:      42,
		SHA256:    sha,
		Encoding:  protocol.EncodingJSON,
	}
}

func numbersRef() protocol.ResultRef {
	ref := validRef()
	ref.ObjectKey = "sales/numbers/MjAyNS0wMS0xNQ/r1"
	return ref
}

func validRunRequest() protocol.RunRequest {
	return protocol.RunRequest{V: protocol.Version, Pipeline: "sales", Asset: "sum", Partition: "2025-01-15"}
}

func validTask() protocol.Task {
	return protocol.Task{
		V:          protocol.Version,
		ID:         protocol.TaskID("r1", "sum", "2025-01-15", 1),
		RunID:      "r1",
		Pipeline:   "sales",
		Asset:      "sum",
		Partition:  "2025-01-15",
		Deps:       []protocol.DepRef{{Asset: "numbers", Partition: "2025-01-15", ResultRef: numbersRef()}},
		Attempt:    1,
		EnqueuedAt: t0,
	}
}

func validCompletion() protocol.Completion {
	return protocol.Completion{
		V:          protocol.Version,
		TaskID:     protocol.TaskID("r1", "sum", "2025-01-15", 1),
		RunID:      "r1",
		Pipeline:   "sales",
		Asset:      "sum",
		Partition:  "2025-01-15",
		OK:         true,
		ResultRef:  validRef(),
		Worker:     "w1",
		Attempt:    1,
		StartedAt:  t0,
		FinishedAt: t1,
		DurationMS: 1234,
	}
}

func failedCompletion() protocol.Completion {
	c := validCompletion()
	c.OK = false
	c.ResultRef = protocol.ResultRef{}
	c.Error = &protocol.Error{Code: protocol.CodeExecutionFailed, Message: "boom", Details: map[string]any{"attempts": 3.0}}
	return c
}

func validManifest() protocol.Manifest {
	return protocol.Manifest{
		V:        protocol.Version,
		Pipeline: "sales",
		Assets: []protocol.AssetSpec{
			{Name: "numbers", Description: "1..5", PartitionedBy: "date"},
			{Name: "doubled", DependsOn: []string{"numbers"}, TimeoutMS: 60000, Retries: 2},
			{Name: "sum", DependsOn: []string{"doubled"}, OptionalDeps: []string{"numbers"}, Storage: "s3", Scatter: true},
		},
		Worker:    "w1",
		Storages:  []string{"file", "s3"},
		UpdatedAt: t0,
	}
}

func validEvent() protocol.Event {
	return protocol.Event{
		V:          protocol.Version,
		Kind:       protocol.EventRunStop,
		Pipeline:   "sales",
		Asset:      "sum",
		Partition:  "2025-01-15",
		RunID:      "r1",
		Time:       t1,
		DurationNS: int64(1234 * time.Millisecond),
		Metadata:   map[string]any{"bytes": 42.0, "storage": "s3"},
	}
}

// validEventBatch is two run.stop events of sales, of two assets.
func validEventBatch() protocol.EventBatch {
	other := validEvent()
	other.Asset, other.Metadata = "doubled", nil
	return protocol.EventBatch{V: protocol.Version, Pipeline: "sales", Kind: protocol.EventRunStop, Events: []protocol.Event{validEvent(), other}}
}

func validScheduledRun() protocol.ScheduledRun {
	r := validRunRequest()
	r.Async = true
	r.ScheduledAt = &t0
	return protocol.ScheduledRun{V: protocol.Version, RunID: "r1", Request: r}
}

// wantCode fails the test unless got is a *protocol.Error (found with
// errors.As) with code, and, if field is not empty, Details["field"] ==
// field.
func wantCode(t *testing.T, got *protocol.Error, code, field string) {
	t.Helper()
	var err error
	if got != nil {
		err = got
	}
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *protocol.Error with code %s", err, code)
	}
	if pe.Code != code {
		t.Fatalf("code = %s (%s), want %s", pe.Code, pe.Message, code)
	}
	if field != "" && pe.Details["field"] != field {
		t.Fatalf("field = %v (%s), want %s", pe.Details["field"], pe.Message, field)
	}
	if pe.Message == "" {
		t.Fatalf("error %s has no message", code)
	}
}

// wantOK fails the test if err is not nil.
func wantOK(t *testing.T, err *protocol.Error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v (details %v)", err, err.Details)
	}
}

// mustJSON encodes v with encoding/json, for building raw wire input.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
