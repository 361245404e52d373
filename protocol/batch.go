package protocol

// Batches. Under load a coordinator publishes several tasks of one pipeline
// and priority in one message, and a worker reports several completions in
// one message: every message stored, delivered and acknowledged costs the
// fleet more than the JSON of a task. A batch message carries the header
// BatchHeader (its value is the number of items, for people reading the
// stream); a message without it is a single Task or Completion, as before.
// Each item keeps its own ID, so routing and dedupe of outcomes stay per
// task. A task batch is acknowledged as one message: a worker acks it when
// every task in it has ended and its completion is stored, so a crash
// redelivers the whole batch, and the tasks that had ended are found
// completed in their records and not executed again.

import (
	"bytes"
	"strconv"
)

// BatchHeader marks a TaskBatch or CompletionBatch message.
const BatchHeader = "Flowstone-Batch"

// MaxBatchItems is the most tasks or completions one batch message holds.
const MaxBatchItems = 256

// TaskBatch is several tasks of one pipeline and priority in one message on
// TaskSubject(pipeline, priority), with the header BatchHeader.
type TaskBatch struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Tasks are the tasks, each valid on its own, none repeated.
	Tasks []Task `json:"tasks"`
}

// Validate checks the version, the count (1..MaxBatchItems), every task,
// that they share one pipeline and priority, and that no ID repeats.
func (b TaskBatch) Validate() *Error {
	if err := checkVersion(b.V); err != nil {
		return err
	}
	if err := checkBatchLen("tasks", len(b.Tasks)); err != nil {
		return err
	}
	seen := make(map[string]struct{}, len(b.Tasks))
	for i := range b.Tasks {
		t := &b.Tasks[i]
		if err := t.Validate(); err != nil {
			return prefixed(indexed("tasks", i), err)
		}
		if t.Pipeline != b.Tasks[0].Pipeline || t.Priority != b.Tasks[0].Priority {
			field := indexed("tasks", i)
			return fieldErrorf(field, "%s is of pipeline %q at priority %d; a batch holds one pipeline and priority (%q, %d)",
				field, t.Pipeline, t.Priority, b.Tasks[0].Pipeline, b.Tasks[0].Priority)
		}
		if _, dup := seen[t.ID]; dup {
			field := indexed("tasks", i)
			return fieldErrorf(field, "%s repeats task id %q", field, t.ID)
		}
		seen[t.ID] = struct{}{}
	}
	return nil
}

// EncodeTaskBatch validates b and encodes it.
func EncodeTaskBatch(b TaskBatch) ([]byte, *Error) { return encodeValid(b, MaxMessageBytes) }

// DecodeTaskBatch decodes and validates a task batch, with the rules of
// DecodeRequest and MaxMessageBytes.
func DecodeTaskBatch(data []byte) (TaskBatch, *Error) {
	return decodeFast(data, MaxMessageBytes, parseTaskBatch)
}

// CompletionBatch is several completions of one pipeline in one message on
// DoneSubject(pipeline), with the header BatchHeader.
type CompletionBatch struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Completions are the completions, each valid on its own.
	Completions []Completion `json:"completions"`
}

// Validate checks the version, the count (1..MaxBatchItems), every
// completion and that they share one pipeline.
func (b CompletionBatch) Validate() *Error {
	if err := checkVersion(b.V); err != nil {
		return err
	}
	if err := checkBatchLen("completions", len(b.Completions)); err != nil {
		return err
	}
	for i := range b.Completions {
		c := &b.Completions[i]
		if err := c.Validate(); err != nil {
			return prefixed(indexed("completions", i), err)
		}
		if c.Pipeline != b.Completions[0].Pipeline {
			field := indexed("completions", i)
			return fieldErrorf(field, "%s is of pipeline %q; a batch holds one pipeline (%q)", field, c.Pipeline, b.Completions[0].Pipeline)
		}
	}
	return nil
}

// EncodeCompletionBatch validates b and encodes it.
func EncodeCompletionBatch(b CompletionBatch) ([]byte, *Error) {
	return encodeValid(b, MaxMessageBytes)
}

// DecodeCompletionBatch decodes and validates a completion batch, with the
// rules of DecodeRequest and MaxMessageBytes.
func DecodeCompletionBatch(data []byte) (CompletionBatch, *Error) {
	return decodeFast(data, MaxMessageBytes, parseCompletionBatch)
}

// JoinTaskBatch builds the body of a TaskBatch from tasks already encoded
// with EncodeTask (so already valid), without encoding them again. The
// caller keeps the batch rules: one pipeline and priority, distinct IDs, at
// most MaxBatchItems, and the result within MaxMessageBytes (see
// BatchBytes).
func JoinTaskBatch(tasks [][]byte) []byte { return join("tasks", tasks) }

// JoinCompletionBatch builds the body of a CompletionBatch from completions
// already encoded with EncodeCompletion, like JoinTaskBatch.
func JoinCompletionBatch(completions [][]byte) []byte { return join("completions", completions) }

// BatchBytes bounds the size of a joined batch of n items whose encodings
// total itemBytes (exact for a CompletionBatch, a little over for a
// TaskBatch).
func BatchBytes(n, itemBytes int) int {
	return len(`{"v":,"completions":[]}`) + len(strconv.Itoa(Version)) + itemBytes + max(n-1, 0)
}

func join(field string, items [][]byte) []byte {
	size := BatchBytes(len(items), 0)
	for _, it := range items {
		size += len(it)
	}
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(`{"v":`)
	b.WriteString(strconv.Itoa(Version))
	b.WriteString(`,"`)
	b.WriteString(field)
	b.WriteString(`":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteString("]}")
	return b.Bytes()
}

func checkBatchLen(field string, n int) *Error {
	if n == 0 {
		return fieldErrorf(field, "a batch holds at least one item; %s is empty", field)
	}
	if n > MaxBatchItems {
		e := fieldErrorf(field, "%s holds %d items; the limit is %d", field, n, MaxBatchItems)
		e.Code = CodePayloadTooLarge
		return e
	}
	return nil
}

// prefixed is err with its field (if any) under prefix.
func prefixed(prefix string, err *Error) *Error {
	out := *err
	if f, ok := err.Details["field"].(string); ok {
		out.Details = map[string]any{}
		for k, v := range err.Details {
			out.Details[k] = v
		}
		out.Details["field"] = prefix + "." + f
		out.Message = prefix + ": " + err.Message
	}
	return &out
}

// DecodeTasks decodes a message on a task subject: a TaskBatch when batch
// (the message carries BatchHeader), else a single Task.
func DecodeTasks(data []byte, batch bool) ([]Task, *Error) {
	if batch {
		b, err := DecodeTaskBatch(data)
		return b.Tasks, err
	}
	t, err := DecodeTask(data)
	if err != nil {
		return nil, err
	}
	return []Task{t}, nil
}

// DecodeCompletions decodes a message on a done subject: a CompletionBatch
// when batch (the message carries BatchHeader), else a single Completion.
func DecodeCompletions(data []byte, batch bool) ([]Completion, *Error) {
	if batch {
		b, err := DecodeCompletionBatch(data)
		return b.Completions, err
	}
	c, err := DecodeCompletion(data)
	if err != nil {
		return nil, err
	}
	return []Completion{c}, nil
}
