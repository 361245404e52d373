package protocol_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/protocol"
)

// batchTasks returns n valid tasks of one pipeline and priority, each of its
// own partition (so its own ID).
func batchTasks(n int) []protocol.Task {
	out := make([]protocol.Task, n)
	for i := range out {
		t := validTask()
		t.Partition = fmt.Sprintf("2025-01-%02d", i%28+1) + "|" + fmt.Sprint(i)
		t.ID = protocol.TaskID(t.RunID, t.Asset, t.Partition, 1)
		out[i] = t
	}
	return out
}

// batchCompletions returns n valid completions of one pipeline, failed and
// succeeded in turn.
func batchCompletions(n int) []protocol.Completion {
	out := make([]protocol.Completion, n)
	for i := range out {
		c := validCompletion()
		if i%2 == 1 {
			c = failedCompletion()
		}
		c.Partition = fmt.Sprint("p", i)
		c.TaskID = protocol.TaskID(c.RunID, c.Asset, c.Partition, 1)
		out[i] = c
	}
	return out
}

func taskBatch(n int) protocol.TaskBatch {
	return protocol.TaskBatch{V: protocol.Version, Tasks: batchTasks(n)}
}

func completionBatch(n int) protocol.CompletionBatch {
	return protocol.CompletionBatch{V: protocol.Version, Completions: batchCompletions(n)}
}

var (
	taskBatchCodec       = codec[protocol.TaskBatch]{protocol.EncodeTaskBatch, protocol.DecodeTaskBatch}
	completionBatchCodec = codec[protocol.CompletionBatch]{protocol.EncodeCompletionBatch, protocol.DecodeCompletionBatch}
)

// The rules hold the same in Validate, Encode and Decode; a bad item is
// named by its index so a receiver can tell which task was at fault.
func TestTaskBatchValidation(t *testing.T) {
	type B = protocol.TaskBatch
	valid := func() B { return taskBatch(3) }
	checkMessageCases(t, taskBatchCodec, valid, []msgCase[B]{
		{name: "valid", mutate: func(*B) {}},
		{name: "one task", mutate: func(b *B) { b.Tasks = b.Tasks[:1] }},
		{name: "MaxBatchItems tasks", mutate: func(b *B) { *b = taskBatch(protocol.MaxBatchItems) }},
		{name: "no version", mutate: func(b *B) { b.V = 0 }, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "empty", mutate: func(b *B) { b.Tasks = nil }, code: protocol.CodeBadRequest, field: "tasks"},
		{name: "empty list", mutate: func(b *B) { b.Tasks = []protocol.Task{} }, code: protocol.CodeBadRequest, field: "tasks"},
		{name: "too many tasks", mutate: func(b *B) { *b = taskBatch(protocol.MaxBatchItems + 1) },
			code: protocol.CodePayloadTooLarge, field: "tasks"},
		{name: "mixed pipelines", mutate: func(b *B) { b.Tasks[2].Pipeline = "other" }, code: protocol.CodeBadRequest, field: "tasks[2]"},
		{name: "mixed priorities", mutate: func(b *B) { b.Tasks[1].Priority = 2 }, code: protocol.CodeBadRequest, field: "tasks[1]"},
		{name: "first task sets the priority", mutate: func(b *B) {
			for i := range b.Tasks {
				b.Tasks[i].Priority = 3
			}
		}},
		{name: "repeated task id", mutate: func(b *B) { b.Tasks[2].ID = b.Tasks[0].ID }, code: protocol.CodeBadRequest, field: "tasks[2]"},
		{name: "same task twice", mutate: func(b *B) { b.Tasks[1] = b.Tasks[0] }, code: protocol.CodeBadRequest, field: "tasks[1]"},
		{name: "invalid item", mutate: func(b *B) { b.Tasks[1].Asset = "a.b" }, code: protocol.CodeBadRequest, field: "tasks[1].asset"},
		{name: "invalid nested field", mutate: func(b *B) { b.Tasks[2].Deps[0].Asset = "" }, code: protocol.CodeBadRequest, field: "tasks[2].deps[0].asset"},
		{name: "item of another version", mutate: func(b *B) { b.Tasks[0].V = 99 }, code: protocol.CodeUnsupportedVersion, field: "tasks[0].v"},
	})
}

func TestCompletionBatchValidation(t *testing.T) {
	type B = protocol.CompletionBatch
	valid := func() B { return completionBatch(3) }
	checkMessageCases(t, completionBatchCodec, valid, []msgCase[B]{
		{name: "valid", mutate: func(*B) {}},
		{name: "MaxBatchItems completions", mutate: func(b *B) { *b = completionBatch(protocol.MaxBatchItems) }},
		// Completions may repeat a task: a redelivered task completes again.
		{name: "repeated task id", mutate: func(b *B) { b.Completions[1] = b.Completions[0] }},
		{name: "no version", mutate: func(b *B) { b.V = 0 }, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "empty", mutate: func(b *B) { b.Completions = nil }, code: protocol.CodeBadRequest, field: "completions"},
		{name: "too many", mutate: func(b *B) { *b = completionBatch(protocol.MaxBatchItems + 1) },
			code: protocol.CodePayloadTooLarge, field: "completions"},
		{name: "mixed pipelines", mutate: func(b *B) { b.Completions[1].Pipeline = "other" }, code: protocol.CodeBadRequest, field: "completions[1]"},
		{name: "invalid item", mutate: func(b *B) { b.Completions[2].Worker = "" }, code: protocol.CodeBadRequest, field: "completions[2].worker"},
		{name: "invalid error code", mutate: func(b *B) { b.Completions[1].Error.Code = "Not Snake" },
			code: protocol.CodeBadRequest, field: "completions[1].error.code"},
	})
}

// The prefixed error of an invalid item must not alter the item's own
// error, which other callers may hold.
func TestBatchItemErrorNamesTheItemInItsMessage(t *testing.T) {
	b := taskBatch(2)
	b.Tasks[1].Asset = "a.b"
	err := b.Validate()
	wantCode(t, err, protocol.CodeBadRequest, "tasks[1].asset")
	if !strings.HasPrefix(err.Message, "tasks[1]") {
		t.Errorf("message %q does not name the item", err.Message)
	}
	item := b.Tasks[1].Validate()
	wantCode(t, item, protocol.CodeBadRequest, "asset")
}

// A batch joined from single encodings is the batch encoding: a coordinator
// that joins EncodeTask outputs sends what EncodeTaskBatch would.
func TestJoinTaskBatchRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 7, protocol.MaxBatchItems} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			tasks := batchTasks(n)
			tasks[0] = fullTask()
			tasks[0].Priority = 0
			items := make([][]byte, n)
			for i, tk := range tasks {
				var err *protocol.Error
				items[i], err = protocol.EncodeTask(tk)
				wantOK(t, err)
			}
			joined := protocol.JoinTaskBatch(items)
			got, err := protocol.DecodeTaskBatch(joined)
			wantOK(t, err)
			if got.V != protocol.Version || !reflect.DeepEqual(got.Tasks, tasks) {
				t.Fatalf("decoded batch differs:\n got %+v\nwant %+v", got, tasks)
			}
			enc, err := protocol.EncodeTaskBatch(protocol.TaskBatch{V: protocol.Version, Tasks: tasks})
			wantOK(t, err)
			if string(enc) != string(joined) {
				t.Errorf("JoinTaskBatch differs from EncodeTaskBatch:\n join %s\n  enc %s", joined, enc)
			}
		})
	}
}

func TestJoinCompletionBatchRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 7, protocol.MaxBatchItems} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			comps := batchCompletions(n)
			items := make([][]byte, n)
			for i, c := range comps {
				var err *protocol.Error
				items[i], err = protocol.EncodeCompletion(c)
				wantOK(t, err)
			}
			joined := protocol.JoinCompletionBatch(items)
			got, err := protocol.DecodeCompletionBatch(joined)
			wantOK(t, err)
			if got.V != protocol.Version || !reflect.DeepEqual(got.Completions, comps) {
				t.Fatalf("decoded batch differs:\n got %+v\nwant %+v", got, comps)
			}
			enc, err := protocol.EncodeCompletionBatch(protocol.CompletionBatch{V: protocol.Version, Completions: comps})
			wantOK(t, err)
			if string(enc) != string(joined) {
				t.Errorf("JoinCompletionBatch differs from EncodeCompletionBatch:\n join %s\n  enc %s", joined, enc)
			}
		})
	}
}

// BatchBytes is what the batcher sizes batches with: it must never be
// below the joined size, or a batch it let through would exceed
// MaxMessageBytes. For completions it is exact.
func TestBatchBytesBoundsJoinedSize(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 10, 100, protocol.MaxBatchItems} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var tasks, comps [][]byte
			taskBytes, compBytes := 0, 0
			for i, tk := range batchTasks(n) {
				b, err := protocol.EncodeTask(tk)
				wantOK(t, err)
				tasks = append(tasks, b)
				taskBytes += len(b)
				c, err := protocol.EncodeCompletion(batchCompletions(n)[i])
				wantOK(t, err)
				comps = append(comps, c)
				compBytes += len(c)
			}
			if got, bound := len(protocol.JoinTaskBatch(tasks)), protocol.BatchBytes(n, taskBytes); got > bound {
				t.Errorf("task batch of %d: %d bytes, BatchBytes says at most %d", n, got, bound)
			}
			if got, bound := len(protocol.JoinCompletionBatch(comps)), protocol.BatchBytes(n, compBytes); got != bound {
				t.Errorf("completion batch of %d: %d bytes, BatchBytes says %d (documented exact)", n, got, bound)
			}
		})
	}
}

func TestDecodeTasksSingleOrBatch(t *testing.T) {
	single, err := protocol.EncodeTask(validTask())
	wantOK(t, err)
	batch, err := protocol.EncodeTaskBatch(taskBatch(3))
	wantOK(t, err)

	got, err := protocol.DecodeTasks(single, false)
	wantOK(t, err)
	if len(got) != 1 || !reflect.DeepEqual(got[0], validTask()) {
		t.Fatalf("single = %+v", got)
	}
	got, err = protocol.DecodeTasks(batch, true)
	wantOK(t, err)
	if !reflect.DeepEqual(got, taskBatch(3).Tasks) {
		t.Fatalf("batch = %+v", got)
	}

	// The header decides: a body that is not of the kind it says is
	// refused, never read as the other kind.
	got, err = protocol.DecodeTasks(single, true)
	wantCode(t, err, protocol.CodeBadRequest, "")
	if got != nil {
		t.Errorf("refused single read as a batch returned %+v", got)
	}
	got, err = protocol.DecodeTasks(batch, false)
	wantCode(t, err, protocol.CodeBadRequest, "")
	if got != nil {
		t.Errorf("refused batch read as a single task returned %+v", got)
	}
	bad := taskBatch(2)
	bad.Tasks[1].ID = bad.Tasks[0].ID
	_, err = protocol.DecodeTasks(mustJSON(t, bad), true)
	wantCode(t, err, protocol.CodeBadRequest, "tasks[1]")
	_, err = protocol.DecodeTasks(nil, true)
	wantCode(t, err, protocol.CodeBadRequest, "")
}

func TestDecodeCompletionsSingleOrBatch(t *testing.T) {
	single, err := protocol.EncodeCompletion(validCompletion())
	wantOK(t, err)
	batch, err := protocol.EncodeCompletionBatch(completionBatch(4))
	wantOK(t, err)

	got, err := protocol.DecodeCompletions(single, false)
	wantOK(t, err)
	if len(got) != 1 || !reflect.DeepEqual(got[0], validCompletion()) {
		t.Fatalf("single = %+v", got)
	}
	got, err = protocol.DecodeCompletions(batch, true)
	wantOK(t, err)
	if !reflect.DeepEqual(got, completionBatch(4).Completions) {
		t.Fatalf("batch = %+v", got)
	}
	got, err = protocol.DecodeCompletions(single, true)
	wantCode(t, err, protocol.CodeBadRequest, "")
	if got != nil {
		t.Errorf("refused single read as a batch returned %+v", got)
	}
	got, err = protocol.DecodeCompletions(batch, false)
	wantCode(t, err, protocol.CodeBadRequest, "")
	if got != nil {
		t.Errorf("refused batch read as a single completion returned %+v", got)
	}
	big := make([]byte, protocol.MaxMessageBytes+1)
	_, err = protocol.DecodeCompletions(big, true)
	wantCode(t, err, protocol.CodePayloadTooLarge, "")
}

// A task or completion is encoded in at most MaxMessageBytes less
// MaxHeaderBytes, room for the headers it is published with under the
// server's max_payload; a receiver still takes up to MaxMessageBytes.
func TestEncodersLeaveRoomForHeaders(t *testing.T) {
	limit := protocol.MaxMessageBytes - protocol.MaxHeaderBytes
	inline := func(n int) protocol.ResultRef {
		b := bytes.Repeat([]byte{'x'}, n)
		sum := sha256.Sum256(b)
		return protocol.ResultRef{Storage: protocol.InlineStorage, Size: int64(n), SHA256: hex.EncodeToString(sum[:]),
			Encoding: protocol.EncodingRaw, Inline: b}
	}
	// Grow a task's inline dependencies until its encoding passes the
	// encoders' limit, then trim the last one until it sits between the
	// two limits.
	task := validTask()
	task.Deps = nil
	size := func() int {
		b, err := json.Marshal(task)
		if err != nil {
			t.Fatal(err)
		}
		return len(b)
	}
	for i := 0; size() <= limit; i++ {
		task.Deps = append(task.Deps, protocol.DepRef{Asset: fmt.Sprintf("d%03d", i), Partition: task.Partition,
			ResultRef: inline(protocol.InlineResultLimit)})
	}
	last := &task.Deps[len(task.Deps)-1]
	for n := protocol.InlineResultLimit; size() > protocol.MaxMessageBytes || size() <= limit; n-- {
		if n == 0 {
			t.Fatal("no task size between the two limits")
		}
		last.ResultRef = inline(n)
	}
	_, perr := protocol.EncodeTask(task)
	wantCode(t, perr, protocol.CodePayloadTooLarge, "")
	body, err := json.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	got, perr := protocol.DecodeTask(body)
	wantOK(t, perr)
	if len(got.Deps) != len(task.Deps) {
		t.Fatalf("decoded %d deps, want %d", len(got.Deps), len(task.Deps))
	}
}
