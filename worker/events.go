package worker

import (
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// eventBatchDelay is the longest an event waits in the worker before its
// batch is published. A variable for tests, set before a worker starts.
var eventBatchDelay = 10 * time.Millisecond

const (
	// eventBatchBytes is the size at which a batch is published early: well
	// under protocol.MaxMessageBytes, so a batch is cheap to send and store.
	// A lone event larger than this still goes out, in a batch of its own.
	eventBatchBytes = 256 << 10
)

// forwardEvent converts one executor event to the wire and hands it to the
// batcher, which publishes it on protocol.EventSubject with the other events
// of its pipeline and kind. It runs on the executing goroutine: it encodes
// the event and at most publishes a full batch (a buffered core NATS
// publish, no round trip). Events that do not fit the wire are dropped
// (logged at debug level).
func (w *Worker) forwardEvent(ev flowstone.Event) {
	pipeline := ev.Pipeline
	if pipeline == "" {
		// Loads of dependencies do not name the pipeline; the run does.
		if pipeline = w.pipelineOfRun(ev.RunID); pipeline == "" {
			return
		}
	}
	// The metadata goes out with the worker's id added: the batch encodes
	// the entry in place, sparing a copy of the map.
	w.events.add(protocol.Event{V: protocol.Version, Kind: protocol.EventKind(ev.Kind), Pipeline: pipeline, Asset: ev.Asset,
		Partition: ev.Partition, RunID: ev.RunID, Time: ev.Time.UTC(), DurationNS: int64(ev.Duration), Metadata: ev.Metadata,
		Error: bridge.WireError(ev.Err)}, w.cfg.ID)
}

// eventKey is what the events of one batch share.
type eventKey struct {
	pipeline string
	kind     protocol.EventKind
}

// eventBatcher collects a worker's events in one batch per pipeline and
// kind and publishes each batch as one protocol.EventBatch message when it
// is full (protocol.MaxEventBatch events or eventBatchBytes) or, at the
// latest, delay after the first event it holds. One goroutine does the
// timed publishing for every batch. close publishes what is left; events
// still buffered when the process dies are lost (they are telemetry).
type eventBatcher struct {
	conn  *nats.Conn
	log   zerolog.Logger
	delay time.Duration

	mu      sync.Mutex
	batches map[eventKey]*protocol.EventBatchBuilder
	armed   bool // the goroutine was woken for the events buffered now
	closed  bool

	// pub orders publishes: it is taken while mu is held, before a batch
	// leaves mu's protection, so batches go out in the order they were
	// taken even though they are published without mu.
	pub sync.Mutex

	wake chan struct{} // the first event after a publish is buffered
	stop chan struct{} // closed by close
	done chan struct{} // closed when the goroutine returns
}

// newEventBatcher returns a batcher and starts its goroutine; close stops it.
func newEventBatcher(conn *nats.Conn, log zerolog.Logger, delay time.Duration) *eventBatcher {
	b := &eventBatcher{
		conn: conn, log: log, delay: delay,
		batches: map[eventKey]*protocol.EventBatchBuilder{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go b.run()
	return b
}

// add buffers ev with worker as its metadata's "worker", publishing its
// batch if that fills it. An event added after close is published at once,
// alone.
func (b *eventBatcher) add(ev protocol.Event, worker string) {
	key := eventKey{ev.Pipeline, ev.Kind}
	b.mu.Lock()
	batch := b.batches[key]
	if batch == nil {
		batch = new(protocol.EventBatchBuilder)
	}
	limit := eventBatchBytes
	if batch.Len() == 0 {
		limit = protocol.MaxMessageBytes
	}
	perr := batch.AddWithMetadata(ev, "worker", worker, limit)
	if perr != nil && perr.Code == protocol.CodePayloadTooLarge && batch.Len() > 0 {
		// No room left: send the batch and start the next with ev.
		b.publishLocked(batch) // unlocks mu
		b.mu.Lock()
		if batch = b.batches[key]; batch == nil {
			batch = new(protocol.EventBatchBuilder)
		}
		limit = eventBatchBytes
		if batch.Len() == 0 {
			limit = protocol.MaxMessageBytes
		}
		perr = batch.AddWithMetadata(ev, "worker", worker, limit)
	}
	if perr != nil {
		b.mu.Unlock()
		b.log.Debug().Str("kind", string(ev.Kind)).Str("error", perr.Message).Msg("event_dropped")
		return
	}
	b.batches[key] = batch
	if b.closed || batch.Len() == protocol.MaxEventBatch {
		b.publishLocked(batch) // unlocks mu
		return
	}
	if !b.armed {
		b.armed = true
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()
}

// publishLocked takes batch's events, unlocks mu, and publishes them. mu
// must be held.
func (b *eventBatcher) publishLocked(batch *protocol.EventBatchBuilder) {
	b.sendLocked([]eventMsg{take(batch)})
}

// flush publishes every batch that holds events.
func (b *eventBatcher) flush() {
	b.mu.Lock()
	b.armed = false
	var msgs []eventMsg
	for _, batch := range b.batches {
		if batch.Len() > 0 {
			msgs = append(msgs, take(batch))
		}
	}
	b.sendLocked(msgs)
}

// eventMsg is one encoded batch, ready to publish.
type eventMsg struct {
	subject string
	events  int
	data    []byte
}

// take encodes batch and empties it. batch must not be empty.
func take(batch *protocol.EventBatchBuilder) eventMsg {
	m := eventMsg{protocol.EventSubject(batch.Pipeline(), batch.Kind()), batch.Len(), batch.Bytes()}
	batch.Reset()
	return m
}

// sendLocked unlocks mu and publishes msgs. mu must be held: taking pub
// before releasing mu keeps batches in the order they were taken.
func (b *eventBatcher) sendLocked(msgs []eventMsg) {
	b.pub.Lock()
	b.mu.Unlock()
	defer b.pub.Unlock()
	for _, m := range msgs {
		if err := b.conn.Publish(m.subject, m.data); err != nil {
			b.log.Debug().Err(err).Str("subject", m.subject).Int("events", m.events).Msg("event_batch_dropped")
		}
	}
}

// run publishes the buffered batches delay after the first event of each
// round, until close.
func (b *eventBatcher) run() {
	defer close(b.done)
	timer := time.NewTimer(b.delay)
	timer.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-b.wake:
		}
		timer.Reset(b.delay)
		select {
		case <-b.stop:
			timer.Stop()
			return
		case <-timer.C:
		}
		b.flush()
	}
}

// close stops the goroutine and publishes every buffered event (into the
// connection's buffer: flush the connection to send them). Events added
// later are published one batch each, at once.
func (b *eventBatcher) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	b.flush()
}
