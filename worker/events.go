package worker

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
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

// The batcher numbers the events of each pipeline as it takes them
// (protocol.EventSeqKey), and sends each batch with its process's epoch
// and the lowest number not yet sent (protocol.EventFloorHeader), so
// that a subscriber puts the events of different kinds back in the order
// they happened: a batch per kind cannot keep that order by itself.

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

	epoch string // protocol.EventEpochHeader of this batcher's messages

	mu      sync.Mutex
	batches map[eventKey]*protocol.EventBatchBuilder
	first   map[eventKey]uint64 // number of each buffered batch's first event
	seqs    map[string]uint64   // last number given, by pipeline
	armed   bool                // the goroutine was woken for the events buffered now
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
		conn: conn, log: log, delay: delay, epoch: nuid.Next(),
		batches: map[eventKey]*protocol.EventBatchBuilder{},
		first:   map[eventKey]uint64{},
		seqs:    map[string]uint64{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go b.run()
	return b
}

// add buffers ev with worker as its metadata's "worker" and its number
// (protocol.EventSeqKey), publishing its batch if that fills it. An event
// added after close is published at once, alone. A dropped event takes
// no number, so that subscribers do not wait for it.
func (b *eventBatcher) add(ev protocol.Event, worker string) {
	key := eventKey{ev.Pipeline, ev.Kind}
	b.mu.Lock()
	seq := b.seqs[ev.Pipeline] + 1
	batch := b.batches[key]
	if batch == nil {
		batch = new(protocol.EventBatchBuilder)
	}
	limit := eventBatchBytes
	if batch.Len() == 0 {
		limit = protocol.MaxMessageBytes - protocol.MaxHeaderBytes // room for the headers
	}
	perr := batch.AddStamped(ev, worker, seq, limit)
	if perr != nil && perr.Code == protocol.CodePayloadTooLarge && batch.Len() > 0 {
		// No room left: send the batch and start the next with ev.
		b.publishLocked(key, batch) // unlocks mu
		b.mu.Lock()
		seq = b.seqs[ev.Pipeline] + 1
		if batch = b.batches[key]; batch == nil {
			batch = new(protocol.EventBatchBuilder)
		}
		limit = eventBatchBytes
		if batch.Len() == 0 {
			limit = protocol.MaxMessageBytes - protocol.MaxHeaderBytes // room for the headers
		}
		perr = batch.AddStamped(ev, worker, seq, limit)
	}
	if perr != nil {
		b.mu.Unlock()
		b.log.Debug().Str("kind", string(ev.Kind)).Str("error", perr.Message).Msg("event_dropped")
		return
	}
	b.seqs[ev.Pipeline] = seq
	if batch.Len() == 1 {
		b.first[key] = seq
	}
	b.batches[key] = batch
	if b.closed || batch.Len() == protocol.MaxEventBatch {
		b.publishLocked(key, batch) // unlocks mu
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

// publishLocked takes the events of key's batch, unlocks mu, and publishes
// them. mu must be held.
func (b *eventBatcher) publishLocked(key eventKey, batch *protocol.EventBatchBuilder) {
	floor := b.floorLocked(key.pipeline)
	b.sendLocked([]eventMsg{b.take(key, batch, floor)})
}

// floorLocked returns the lowest number among the buffered events of the
// pipeline: every lower one was sent before. mu must be held.
func (b *eventBatcher) floorLocked(pipeline string) uint64 {
	floor := b.seqs[pipeline] + 1
	for key, batch := range b.batches {
		if key.pipeline == pipeline && batch.Len() > 0 {
			floor = min(floor, b.first[key])
		}
	}
	return floor
}

// flush publishes every batch that holds events, oldest first.
func (b *eventBatcher) flush() {
	b.mu.Lock()
	b.armed = false
	floors := map[string]uint64{}
	var keys []eventKey
	for key, batch := range b.batches {
		if batch.Len() > 0 {
			keys = append(keys, key)
			if _, ok := floors[key.pipeline]; !ok {
				floors[key.pipeline] = b.floorLocked(key.pipeline)
			}
		}
	}
	// Oldest first: subscribers then hold fewer events for the others.
	slices.SortFunc(keys, func(x, y eventKey) int { return cmp.Compare(b.first[x], b.first[y]) })
	msgs := make([]eventMsg, 0, len(keys))
	for _, key := range keys {
		msgs = append(msgs, b.take(key, b.batches[key], floors[key.pipeline]))
	}
	b.sendLocked(msgs)
}

// eventMsg is one encoded batch, ready to publish.
type eventMsg struct {
	subject string
	events  int
	data    []byte
	floor   uint64
}

// take encodes key's batch and empties it. The batch must not be empty;
// mu must be held.
func (b *eventBatcher) take(key eventKey, batch *protocol.EventBatchBuilder, floor uint64) eventMsg {
	m := eventMsg{protocol.EventSubject(batch.Pipeline(), batch.Kind()), batch.Len(), batch.Bytes(), floor}
	batch.Reset()
	delete(b.first, key)
	return m
}

// sendLocked unlocks mu and publishes msgs. mu must be held: taking pub
// before releasing mu keeps batches in the order they were taken.
func (b *eventBatcher) sendLocked(msgs []eventMsg) {
	b.pub.Lock()
	b.mu.Unlock()
	defer b.pub.Unlock()
	for _, m := range msgs {
		msg := &nats.Msg{Subject: m.subject, Data: m.data, Header: nats.Header{
			protocol.EventEpochHeader: []string{b.epoch},
			protocol.EventFloorHeader: []string{strconv.FormatUint(m.floor, 10)},
		}}
		if err := b.conn.PublishMsg(msg); err != nil {
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
