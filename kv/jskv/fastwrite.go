package jskv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fastWriter writes to a bucket with core-NATS requests to its put subject,
// skipping jetstream.KeyValue's per-call option and header handling and its
// json.Unmarshal of the PubAck, which dominated the CPU cost of a write. It
// keeps what of nats.go's publish matters: the subject nats.go would use,
// the no-responders retries, a time limit on each write, the JetStream API
// error of a failed write, and Create over a delete or purge marker.
//
// Writes are group-committed: at most maxWriteBatches batches of writes
// await their replies at once; a write that finds them all busy waits in a
// queue, and the queue goes out as the next batch, back to back, when one
// finishes. At low load every write goes out at once; under load the
// writes of many goroutines share socket writes, the server reads and
// stores them together and its PubAcks share writes too. Each write still
// gets its own reply (its own compare-and-set outcome), on one
// subscription of the writer's, matched by the reply subject's last token.
//
// It is only used for a plain local bucket (see newFastWriter); everything
// else goes through jetstream.KeyValue.
type fastWriter struct {
	nc      *nats.Conn
	stream  jetstream.Stream // the bucket's stream, for Create's marker lookup
	pre     string           // "$KV.<bucket>.", as nats.go's kvs.pre
	timeout time.Duration    // each write's limit, whatever the caller's deadline
	inbox   string           // "<unique inbox>.": a write's reply subject is inbox + its id
	sub     *nats.Subscription

	mu      sync.Mutex
	next    uint64           // last id handed out
	calls   map[uint64]*call // published, awaiting a reply
	queue   []*call          // waiting for a batch
	batches int              // batches published and not finished
	closed  bool

	sentBatches, sentWrites uint64 // totals, for tests

	reaping bool           // a reaper goroutine runs (while writes wait)
	stop    chan struct{}  // closed by close: ends the reaper
	reaper  sync.WaitGroup // the reaper; close waits for it
}

// maxWriteBatches is how many batches of writes may await replies at once.
const maxWriteBatches = 2

// call is one write.
type call struct {
	msg     nats.Msg
	id      uint64
	batch   *writeBatch
	expires time.Time       // when the reaper fails it
	reply   chan callResult // buffered: the one result never blocks its sender
}

// writeBatch counts the writes of a batch still without an outcome.
type writeBatch struct{ open int }

type callResult struct {
	msg *nats.Msg
	err error
}

// errWriterClosed ends the writes still waiting when the store closes.
var errWriterClosed = fmt.Errorf("jskv: write abandoned: %w", kv.ErrClosed)

// newFastWriter returns a fastWriter for bucket b, or nil when the bucket's
// writes need more than "$KV.<bucket>.<key>" on js's connection: a JetStream
// context with a domain or a non-default API prefix (nats.go's useJSPfx), a
// mirror (nats.go's putPre), a stream not listening on the bucket's
// subjects, or a JetStream implementation without a connection. Any failure
// to look the stream up also means nil: the slow path is always correct.
func newFastWriter(js jetstream.JetStream, b jetstream.KeyValue, stream jetstream.Stream, timeout time.Duration) *fastWriter {
	opts := js.Options()
	if opts.Domain != "" {
		return nil
	}
	if p := opts.APIPrefix; p != "" && strings.TrimSuffix(p, ".")+"." != jetstream.DefaultAPIPrefix {
		return nil
	}
	nc := js.Conn()
	if nc == nil || stream == nil {
		return nil
	}
	bucket := b.Bucket()
	info := stream.CachedInfo()
	if info == nil || info.Config.Mirror != nil || !slices.Contains(info.Config.Subjects, "$KV."+bucket+".>") {
		return nil
	}
	f := &fastWriter{nc: nc, stream: stream, pre: "$KV." + bucket + ".", timeout: timeout,
		inbox: nc.NewInbox() + ".", calls: make(map[uint64]*call), stop: make(chan struct{})}
	var err error
	if f.sub, err = nc.Subscribe(f.inbox+"*", f.onReply); err != nil {
		return nil
	}
	// The replies of a burst of writes must not be dropped as a slow
	// consumer's: nothing else would end those writes before their timeout.
	if err := f.sub.SetPendingLimits(-1, -1); err != nil {
		f.sub.Unsubscribe()
		return nil
	}
	return f
}

// reap fails the writes whose reply has not come within the writer's
// timeout (a reply lost in a reconnect, a server gone): one coarse clock
// for all of them instead of a context and a timer per write. It runs
// while writes wait and returns at the first tick that finds none, or when
// the writer closes.
func (f *fastWriter) reap() {
	defer f.reaper.Done()
	every := max(min(f.timeout/4, 250*time.Millisecond), 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	late := &transient.TimeoutError{Op: "jetstream kv write", After: f.timeout}
	for {
		select {
		case <-f.stop:
			return
		case now := <-t.C:
			var expired []uint64
			var dropped []*call
			f.mu.Lock()
			for id, c := range f.calls {
				if now.After(c.expires) {
					expired = append(expired, id)
				}
			}
			f.queue = slices.DeleteFunc(f.queue, func(c *call) bool {
				if now.After(c.expires) {
					dropped = append(dropped, c)
					return true
				}
				return false
			})
			idle := len(f.calls) == len(expired) && len(f.queue) == 0
			if idle {
				f.reaping = false
			}
			f.mu.Unlock()
			for _, id := range expired {
				f.settle(id, callResult{err: late})
			}
			for _, c := range dropped {
				c.reply <- callResult{err: late}
			}
			if idle {
				return
			}
		}
	}
}

// close ends the reply subscription, fails the writes still waiting and
// waits for the reaper to return.
func (f *fastWriter) close() {
	defer f.reaper.Wait()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	close(f.stop)
	calls, queue := f.calls, f.queue
	f.calls, f.queue = map[uint64]*call{}, nil
	f.mu.Unlock()
	f.sub.Unsubscribe()
	for _, c := range calls {
		c.reply <- callResult{err: errWriterClosed}
	}
	for _, c := range queue {
		c.reply <- callResult{err: errWriterClosed}
	}
}

// createHeader expects no message on the key's subject. Shared: nats.go
// only reads a request's header (to encode it).
var createHeader = nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{"0"}}

func (f *fastWriter) put(ctx context.Context, key string, value []byte) (uint64, error) {
	return f.write(ctx, key, value, nil)
}

// create is nats.go's KeyValue.Create: a write expecting no message on the
// key, or, if the key's last message is a delete or purge marker, a write
// expecting that marker.
func (f *fastWriter) create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := f.write(ctx, key, value, createHeader)
	if err == nil || !isWrongLastSeq(err) {
		return rev, err
	}
	if marker, ok := f.lastMarker(ctx, key); ok {
		// Loses to a concurrent write like any Create.
		rev, err = f.write(ctx, key, value, expectHeader(marker))
		if err == nil || !isWrongLastSeq(err) {
			return rev, err
		}
	}
	return 0, fmt.Errorf("%w: %w", err, jetstream.ErrKeyExists)
}

func (f *fastWriter) update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	rev, err := f.write(ctx, key, value, expectHeader(rev))
	if err != nil && isWrongLastSeq(err) {
		return 0, fmt.Errorf("%w: %w", err, jetstream.ErrKeyRevisionMismatch)
	}
	return rev, err
}

// expectHeader expects rev as the last revision of the key.
func expectHeader(rev uint64) nats.Header {
	return nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(rev, 10)}}
}

// lastMarker returns the revision of key's last message if that is a
// deletion (a KV delete or purge marker, or a server TTL marker), as
// nats.go's kvs.get decides.
func (f *fastWriter) lastMarker(ctx context.Context, key string) (uint64, bool) {
	m, err := transient.Call(ctx, "jetstream request", f.timeout, func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
		return f.stream.GetLastMsgForSubject(ctx, f.pre+key)
	})
	if err != nil || len(m.Header) == 0 {
		return 0, false
	}
	if op := m.Header.Get("KV-Operation"); op != "" {
		return m.Sequence, op == "DEL" || op == "PURGE"
	}
	switch m.Header.Get(jetstream.MarkerReasonHeader) {
	case "MaxAge", "Purge", "Remove":
		return m.Sequence, true
	}
	return 0, false
}

// write is nats.go's jetStream.PublishMsg without options: a request to the
// key's subject, retried on no responders, each under the writer's timeout.
func (f *fastWriter) write(ctx context.Context, key string, value []byte, hdr nats.Header) (uint64, error) {
	subject := f.pre + key
	resp, err := f.request(ctx, subject, hdr, value)
	for r := 0; errors.Is(err, nats.ErrNoResponders) && r < jetstream.DefaultPubRetryAttempts; r++ {
		// No stream listening: a leader election, or the bucket is gone.
		t := time.NewTimer(jetstream.DefaultPubRetryWait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		resp, err = f.request(ctx, subject, hdr, value)
	}
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return 0, jetstream.ErrNoStreamResponse
		}
		return 0, err
	}
	return parsePubAck(resp.Data)
}

// request sends one write, in the next batch, and waits for its reply:
// nats.ErrNoResponders if no stream listens, ctx's error if it ends first,
// and a *transient.TimeoutError once the writer's timeout has passed.
func (f *fastWriter) request(ctx context.Context, subject string, hdr nats.Header, value []byte) (*nats.Msg, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &call{reply: make(chan callResult, 1), expires: time.Now().Add(f.timeout)}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, errWriterClosed
	}
	f.next++
	c.id = f.next
	c.msg = nats.Msg{Subject: subject, Reply: f.inbox + strconv.FormatUint(c.id, 10), Header: hdr, Data: value}
	f.queue = append(f.queue, c)
	if !f.reaping {
		// Under mu with closed checked: close's Wait cannot have begun.
		f.reaping = true
		f.reaper.Add(1)
		go f.reap()
	}
	var batch []*call
	if f.batches < maxWriteBatches {
		batch = f.takeLocked()
	}
	f.mu.Unlock()
	if batch != nil {
		f.publish(batch)
	}
	select {
	case r := <-c.reply:
		return r.msg, r.err
	case <-ctx.Done():
		// Its reply no longer counts: the batch may finish without it.
		f.settle(c.id, callResult{err: ctx.Err()})
		return nil, ctx.Err()
	}
}

// takeLocked makes the queue the next batch. f.mu must be held.
func (f *fastWriter) takeLocked() []*call {
	batch := f.queue
	f.queue = nil
	b := &writeBatch{open: len(batch)}
	for _, c := range batch {
		c.batch = b
		f.calls[c.id] = c
	}
	f.batches++
	f.sentBatches++
	f.sentWrites += uint64(len(batch))
	return batch
}

// publish sends a batch's writes back to back.
func (f *fastWriter) publish(batch []*call) {
	for _, c := range batch {
		if err := f.nc.PublishMsg(&c.msg); err != nil {
			f.settle(c.id, callResult{err: err})
		}
	}
}

// settle gives write id its outcome, once; the last outcome of a batch
// sends the queue as the next batch.
func (f *fastWriter) settle(id uint64, r callResult) {
	f.mu.Lock()
	c := f.calls[id]
	if c == nil {
		f.mu.Unlock()
		return // settled already (its caller gave up, or the store closed)
	}
	delete(f.calls, id)
	var next []*call
	if c.batch.open--; c.batch.open == 0 {
		f.batches--
		if len(f.queue) > 0 && !f.closed {
			next = f.takeLocked()
		}
	}
	f.mu.Unlock()
	c.reply <- r
	if next != nil {
		f.publish(next)
	}
}

// onReply hands a reply to its write. A 503 status without a body is the
// server's no-responders notice.
func (f *fastWriter) onReply(m *nats.Msg) {
	id, err := strconv.ParseUint(m.Subject[len(f.inbox):], 10, 64)
	if err != nil {
		return
	}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		f.settle(id, callResult{err: nats.ErrNoResponders})
		return
	}
	f.settle(id, callResult{msg: m})
}

// pubAckReply is the PubAck as nats.go decodes it, errors included.
type pubAckReply struct {
	Error  *jetstream.APIError `json:"error,omitempty"`
	Stream string              `json:"stream"`
	Seq    uint64              `json:"seq"`
}

// parsePubAck returns the sequence of a PubAck. The success shape the server
// writes from its template is read by hand; anything else (errors,
// duplicates, unexpected spacing) goes through encoding/json, with nats.go's
// results: the *jetstream.APIError wrapped as "nats: %w", or
// jetstream.ErrInvalidJSAck.
func parsePubAck(data []byte) (uint64, error) {
	if seq, ok := parsePubAckFast(data); ok {
		return seq, nil
	}
	var r pubAckReply
	if err := json.Unmarshal(data, &r); err != nil {
		return 0, jetstream.ErrInvalidJSAck
	}
	if r.Error != nil {
		return 0, fmt.Errorf("nats: %w", r.Error)
	}
	if r.Stream == "" {
		return 0, jetstream.ErrInvalidJSAck
	}
	return r.Seq, nil
}

// parsePubAckFast reads exactly `{"stream":"S","seq":N}` or
// `{"stream":"S","domain":"D","seq":N}` with S non-empty, S and D without
// escapes, and N a decimal uint64. ok is false for anything else.
func parsePubAckFast(b []byte) (seq uint64, ok bool) {
	const stream, domain, seqKey = `{"stream":"`, `"domain":"`, `"seq":`
	if !bytes.HasPrefix(b, []byte(stream)) {
		return 0, false
	}
	b = b[len(stream):]
	if bytes.HasPrefix(b, []byte(`"`)) { // empty stream name: nats.go's ErrInvalidJSAck
		return 0, false
	}
	if b, ok = skipString(b); !ok || !bytes.HasPrefix(b, []byte(",")) {
		return 0, false
	}
	b = b[1:]
	if bytes.HasPrefix(b, []byte(domain)) {
		if b, ok = skipString(b[len(domain):]); !ok || !bytes.HasPrefix(b, []byte(",")) {
			return 0, false
		}
		b = b[1:]
	}
	if !bytes.HasPrefix(b, []byte(seqKey)) {
		return 0, false
	}
	b = b[len(seqKey):]
	n := len(b) - 1
	if n < 1 || n > 20 || b[n] != '}' || (b[0] == '0' && n > 1) {
		return 0, false
	}
	for _, c := range b[:n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if seq > (^uint64(0)-d)/10 {
			return 0, false
		}
		seq = seq*10 + d
	}
	return seq, true
}

// skipString skips a JSON string's contents and closing quote, refusing
// escapes and control characters.
func skipString(b []byte) ([]byte, bool) {
	for i, c := range b {
		switch {
		case c == '"':
			return b[i+1:], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// isWrongLastSeq reports the server's "wrong last sequence" API error
// (10071, or 10164 on replicated streams), a failed expectation.
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
