package hook

import (
	"context"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

// ItemQueue carries the item batches of one scatter materialization to the
// processes that run them and brings their outcomes back. The embedded
// engine runs batches in its own process; a fleet worker publishes them on
// JetStream, where every worker hosting the pipeline takes some, and reads
// their outcomes from a KV bucket, so that a later execution of the same
// task (after its worker died) finds the batches already recorded.
type ItemQueue interface {
	// Open starts following the outcomes of the scatter whose id is given
	// and returns those already recorded, in no particular order.
	Open(ctx context.Context, scatter string) (ItemSession, []BatchOutcome, error)
	// Drop forgets the scatter's recorded outcomes, once the asset's
	// outcome holds what it needs of them.
	Drop(ctx context.Context, scatter string) error
}

// ItemSession is one execution's view of a scatter's batches. Its methods
// are called from the execution's goroutine only.
type ItemSession interface {
	// Publish hands a batch over to run. Its outcome arrives on Outcomes
	// (perhaps twice: the execution keeps the first).
	Publish(ctx context.Context, b ItemBatch) error
	// Outcomes delivers each batch outcome recorded after Open. It is
	// closed if following the outcomes fails (Open again to resume) and
	// after Close.
	Outcomes() <-chan BatchOutcome
	// Close stops following the outcomes.
	Close()
}

// ItemBatch is a run of consecutive items of a scatter.
type ItemBatch struct {
	// Scatter is the scatter's id; Index the batch's place in it, from 0.
	Scatter string
	Index   int
	// Count is how many batches the scatter has.
	Count int
	Items []string
	// Deadline is when the items must stop (zero: none): the asset's
	// timeout or its run's deadline.
	Deadline time.Time
}

// BatchOutcome is what became of a batch's items, in the batch's order.
type BatchOutcome struct {
	Index  int
	Worker string
	Items  []ItemOutcome
}

// The states of an item in its outcome: the wire's.
const (
	ItemCompleted = protocol.ItemCompleted
	ItemFailed    = protocol.ItemFailed
	ItemCancelled = protocol.ItemCancelled
)

// ItemOutcome is one item's end: its encoded value, or its error (type and
// message of a flowstone.Error).
type ItemOutcome struct {
	// Item is the item's key.
	Item    string `json:"item,omitempty"`
	State   string `json:"state"`
	Value   []byte `json:"value,omitempty"`
	ErrType string `json:"error_type,omitempty"`
	Error   string `json:"error,omitempty"`
	// Attempts is how many times the item ran.
	Attempts int `json:"attempts,omitempty"`
}
