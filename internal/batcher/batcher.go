// Package batcher coalesces JetStream publishes bound for one subject into
// batch messages (group commit): a message goes out at once when no publish
// is in flight for its subject, and whatever arrives while one is awaited
// goes out together when it is acknowledged. At low load every item is a
// message of its own with no added latency; under load the batches grow by
// themselves with the server's round trip, and the fleet stores, delivers
// and acknowledges one message for many tasks or completions.
//
// A Publisher owns the goroutines that send its batches: Stop waits for
// them.
package batcher

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Join builds a batch body from encoded items (protocol.JoinTaskBatch,
// protocol.JoinCompletionBatch).
type Join func(items [][]byte) []byte

// Publisher coalesces publishes per subject. It is safe for concurrent use.
type Publisher struct {
	js         jetstream.JetStream
	join       Join
	ackTimeout time.Duration // AckTimeout; shorter in tests

	// Stored, if set, is called once per message JetStream has
	// acknowledged, with its subject, before the items it carries are
	// told. Set it before the first Publish.
	Stored func(subject string)

	mu       sync.Mutex
	queues   map[string]*queue
	stopping bool          // Publish refuses
	abort    chan struct{} // closed when Stop's context ends: in-flight and queued items fail
	senders  sync.WaitGroup

	// Stats, read with Counts.
	messages, items uint64
}

// ErrStopped is the error of a Publish after Stop began, and of the items
// a hard stop gave up.
var ErrStopped = errors.New("batcher: publisher stopped")

// MaxInFlight is how many batch messages of one subject may await their
// acknowledgement at once.
const MaxInFlight = 2

// AckTimeout bounds the wait for a batch's acknowledgement: a lost ack
// (no reply during a stream leader change, say) fails its items instead of
// holding one of the subject's in-flight slots for ever.
const AckTimeout = 5 * time.Second

// headerRoom is kept free under protocol.MaxMessageBytes for the batch
// header: the server's max_payload counts headers too.
const headerRoom = protocol.MaxHeaderBytes

type queue struct {
	inflight int
	pending  []*item
}

type item struct {
	id   string
	body []byte
	done chan error
}

// New returns a Publisher that joins batches with join.
func New(js jetstream.JetStream, join Join) *Publisher {
	return &Publisher{js: js, join: join, ackTimeout: AckTimeout, queues: map[string]*queue{}, abort: make(chan struct{})}
}

// Publish stores body on subject, alone or in a batch with others, and
// returns once JetStream has acknowledged the message that holds it (or
// with ctx's error, in which case it may still be published). id is the
// item's dedupe id, used as the message id when it travels alone. After
// Stop began it returns ErrStopped and publishes nothing.
func (p *Publisher) Publish(ctx context.Context, subject, id string, body []byte) error {
	it := &item{id: id, body: body, done: make(chan error, 1)}
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		return ErrStopped
	}
	q := p.queues[subject]
	if q == nil {
		q = &queue{}
		p.queues[subject] = q
	}
	q.pending = append(q.pending, it)
	start := q.inflight < MaxInFlight
	var batch []*item
	if start {
		q.inflight++
		batch = q.take()
		p.senders.Add(1) // under mu, before Stop can wait: see Stop
	}
	p.mu.Unlock()
	if start {
		go p.send(subject, q, batch)
	}
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Counts reports how many messages were published (acknowledged by
// JetStream) and how many items they carried.
func (p *Publisher) Counts() (messages, items uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.messages, p.items
}

// take removes the next batch from q: up to protocol.MaxBatchItems items
// within protocol.MaxMessageBytes. Called with p.mu held.
func (q *queue) take() []*item {
	n, size := 0, 0
	for n < len(q.pending) && n < protocol.MaxBatchItems {
		next := size + len(q.pending[n].body)
		if n > 0 && protocol.BatchBytes(n+1, next) > protocol.MaxMessageBytes-headerRoom {
			break
		}
		size = next
		n++
	}
	batch := make([]*item, n)
	copy(batch, q.pending[:n])
	rest := copy(q.pending, q.pending[n:])
	clear(q.pending[rest:])
	q.pending = q.pending[:rest]
	return batch
}

// Stop stops taking items (Publish returns ErrStopped) and waits until
// every item taken is published and acknowledged, or has failed. If ctx
// ends first, the items still queued or awaiting their acknowledgement
// fail with ErrStopped (they may be stored all the same), and Stop waits
// for the goroutines sending them to return, which they do at once; the
// error then wraps ctx's cause. Later calls wait for the goroutines again
// and return nil.
func (p *Publisher) Stop(ctx context.Context) error {
	p.mu.Lock()
	p.stopping = true // no sender starts after this: Add happens under mu
	p.mu.Unlock()
	idle := make(chan struct{})
	go func() {
		p.senders.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	select {
	case <-p.abort:
	default:
		close(p.abort)
	}
	p.mu.Unlock()
	<-idle
	return fmt.Errorf("batcher: stop: items still unacknowledged were given up: %w", context.Cause(ctx))
}

// send publishes batches for subject until its queue is empty.
func (p *Publisher) send(subject string, q *queue, batch []*item) {
	defer p.senders.Done()
	for {
		err := p.publish(subject, batch)
		if err == nil && p.Stored != nil {
			p.Stored(subject)
		}
		for _, it := range batch {
			it.done <- err
		}
		p.mu.Lock()
		if err == nil {
			p.messages++
			p.items += uint64(len(batch))
		}
		if len(q.pending) == 0 {
			q.inflight--
			p.mu.Unlock()
			return
		}
		batch = q.take()
		p.mu.Unlock()
	}
}

func (p *Publisher) publish(subject string, batch []*item) error {
	msg := &nats.Msg{Subject: subject}
	var opts []jetstream.PublishOpt
	if len(batch) == 1 {
		msg.Data = batch[0].body
		opts = append(opts, jetstream.WithMsgID(batch[0].id))
	} else {
		bodies := make([][]byte, len(batch))
		for i, it := range batch {
			bodies[i] = it.body
		}
		msg.Data = p.join(bodies)
		msg.Header = nats.Header{protocol.BatchHeader: []string{strconv.Itoa(len(batch))}}
	}
	select {
	case <-p.abort:
		return ErrStopped
	default:
	}
	fut, err := p.js.PublishMsgAsync(msg, opts...)
	if err != nil {
		return err
	}
	timer := time.NewTimer(p.ackTimeout)
	defer timer.Stop()
	select {
	case <-fut.Ok():
		return nil
	case err := <-fut.Err():
		return err
	case <-p.abort:
		return ErrStopped
	case <-timer.C:
		// Transient: a stream electing a leader answers late, and the
		// message may be stored meanwhile; sending it again is safe for
		// the fleet's messages (a task runs once whatever its copies, a
		// completion is routed once).
		return transient.Mark(fmt.Errorf("batcher: no acknowledgement from JetStream within %v for a message on %s", p.ackTimeout, subject))
	}
}
