package protocol

import (
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"
)

// Scatter items. The worker executing a scatter asset's task hands its
// items out in batches: an ItemBatch message on ItemSubject(pipeline), in
// TaskStream beside the pipeline's tasks, taken by every worker hosting
// the pipeline through a durable consumer of its own (so that batches
// never wait behind the tasks whose scatters wait for them). The worker
// that runs a batch records its BatchOutcome once, under
// ScatterKey(scatter, index) in ScatterBucket, where the scatter's driver
// reads it; the driver drops the scatter's keys once the asset's outcome
// is recorded.
const (
	// ScatterBucket is the KV bucket of scatter batch outcomes.
	ScatterBucket = "flowstone_scatter"
	// itemToken is the last token of an item subject.
	itemToken = "items"
	// MaxBatchItemCount is the most items in one ItemBatch.
	MaxBatchItemCount = 256
	// MaxItemLen is the longest item key, in bytes.
	MaxItemLen = 1024
)

// ItemSubject returns the subject of pipeline's scatter item batches,
// "flowstone.task.<pipeline>.items". It panics if pipeline is not a
// ValidName.
func ItemSubject(pipeline string) string {
	mustName(pipeline)
	return taskSubjectPrefix + pipeline + "." + itemToken
}

// scatterIDPattern is a scatter id: 32 lowercase hex digits.
var scatterIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// ScatterPrefix is the key prefix of a scatter's batch outcomes in
// ScatterBucket, "<scatter>.".
func ScatterPrefix(scatter string) string { return scatter + "." }

// ScatterKey is the key of a batch's outcome in ScatterBucket,
// "<scatter>.<index>".
func ScatterKey(scatter string, index int) string { return scatter + "." + strconv.Itoa(index) }

// ItemMsgID is the dedupe id (Nats-Msg-Id) of a batch's message: a batch
// handed out again by a later execution of its scatter, within the
// stream's duplicate window, is stored once.
func ItemMsgID(scatter string, index int) string {
	return "items." + scatter + "." + strconv.Itoa(index)
}

// ItemBatch is one batch of a scatter's items, to run on a worker that
// hosts Task.Pipeline.
type ItemBatch struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Scatter identifies the scatter: 32 lowercase hex digits.
	Scatter string `json:"scatter"`
	// Index is the batch's place, 0..Count-1.
	Index int `json:"index"`
	// Count is how many batches the scatter has.
	Count int `json:"count"`
	// Items are the batch's items, in order: 1..MaxBatchItemCount
	// non-empty UTF-8 keys of up to MaxItemLen bytes.
	Items []string `json:"items"`
	// Deadline is when the items must stop, if they must.
	Deadline *time.Time `json:"deadline,omitempty"`
	// Task is the scatter asset's task: the items run with its run,
	// partition and dependencies.
	Task Task `json:"task"`
}

// Validate checks the version, the scatter id, the index within the
// count, the items and the task.
func (b ItemBatch) Validate() *Error {
	if err := checkVersion(b.V); err != nil {
		return err
	}
	if !scatterIDPattern.MatchString(b.Scatter) {
		return fieldErrorf("scatter", "scatter is %q; it must be 32 lowercase hex digits", b.Scatter)
	}
	if b.Count < 1 || b.Index < 0 || b.Index >= b.Count {
		return fieldErrorf("index", "index %d of %d batches is out of range", b.Index, b.Count)
	}
	if len(b.Items) == 0 || len(b.Items) > MaxBatchItemCount {
		return fieldErrorf("items", "a batch holds 1 to %d items, not %d", MaxBatchItemCount, len(b.Items))
	}
	for i, it := range b.Items {
		if it == "" || len(it) > MaxItemLen || !utf8.ValidString(it) {
			return fieldErrorf(indexed("items", i), "%s is empty, longer than %d bytes or not UTF-8", indexed("items", i), MaxItemLen)
		}
	}
	if b.Deadline != nil {
		if err := checkTime("deadline", *b.Deadline); err != nil {
			return err
		}
	}
	if err := b.Task.Validate(); err != nil {
		return prefixed("task", err)
	}
	return nil
}

// EncodeItemBatch validates b and encodes it.
func EncodeItemBatch(b ItemBatch) ([]byte, *Error) { return encodeValid(b, MaxMessageBytes) }

// DecodeItemBatch decodes and validates an item batch, with the rules of
// DecodeRequest and MaxMessageBytes.
func DecodeItemBatch(data []byte) (ItemBatch, *Error) {
	return decodeValid[ItemBatch](data, MaxMessageBytes)
}

// The states of an item in its batch's outcome.
const (
	ItemCompleted = "completed"
	ItemFailed    = "failed"
	ItemCancelled = "cancelled"
)

// BatchOutcome is what became of a batch's items: the value stored under
// ScatterKey(scatter, index), written once by the worker that ran them.
type BatchOutcome struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Index is the batch's place in its scatter.
	Index int `json:"index"`
	// Worker names the worker that ran the batch.
	Worker string `json:"worker"`
	// Items are the items' outcomes, in the batch's order.
	Items []ItemOutcome `json:"items"`
}

// ItemOutcome is one item's end.
type ItemOutcome struct {
	// Item is the item's key: the driver of a scatter fed by a reader
	// learns the items of a batch an earlier execution handed out from it.
	Item string `json:"item,omitempty"`
	// State is ItemCompleted, ItemFailed or ItemCancelled.
	State string `json:"state"`
	// Value is a completed item's encoded value.
	Value []byte `json:"value,omitempty"`
	// ErrorType and Error are a failed or cancelled item's error: its
	// flowstone error type and message.
	ErrorType string `json:"error_type,omitempty"`
	Error     string `json:"error,omitempty"`
	// Attempts is how many times the item ran.
	Attempts int `json:"attempts,omitempty"`
}

// Validate checks the version, the index, the items' states and counts.
func (o BatchOutcome) Validate() *Error {
	if err := checkVersion(o.V); err != nil {
		return err
	}
	if err := checkNonNegative("index", o.Index); err != nil {
		return err
	}
	if len(o.Items) == 0 || len(o.Items) > MaxBatchItemCount {
		return fieldErrorf("items", "an outcome holds 1 to %d items, not %d", MaxBatchItemCount, len(o.Items))
	}
	for i, it := range o.Items {
		switch it.State {
		case ItemCompleted, ItemFailed, ItemCancelled:
		default:
			return fieldErrorf(indexed("items", i)+".state", "%s.state is %q; want completed, failed or cancelled", indexed("items", i), it.State)
		}
		if err := checkNonNegative(indexed("items", i)+".attempts", it.Attempts); err != nil {
			return err
		}
	}
	return nil
}

// EncodeBatchOutcome validates o and encodes it; an outcome over
// MaxMessageBytes is refused with CodePayloadTooLarge.
func EncodeBatchOutcome(o BatchOutcome) ([]byte, *Error) { return encodeValid(o, MaxMessageBytes) }

// DecodeBatchOutcome decodes and validates a batch outcome.
func DecodeBatchOutcome(data []byte) (BatchOutcome, *Error) {
	return decodeValid[BatchOutcome](data, MaxMessageBytes)
}
