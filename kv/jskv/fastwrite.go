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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fastWriter writes to a bucket with core-NATS requests to its put subject,
// skipping jetstream.KeyValue's per-call option and header handling and its
// json.Unmarshal of the PubAck, which dominated the CPU cost of a write. It
// keeps what of nats.go's publish matters: the subject nats.go would use,
// the no-responders retries, the default timeout for a context without a
// deadline, the JetStream API error of a failed write, and Create over a
// delete or purge marker.
//
// It is only used for a plain local bucket (see newFastWriter); everything
// else goes through jetstream.KeyValue.
type fastWriter struct {
	nc      *nats.Conn
	stream  jetstream.Stream // the bucket's stream, for Create's marker lookup
	pre     string           // "$KV.<bucket>.", as nats.go's kvs.pre
	timeout time.Duration    // for a context without a deadline
}

// newFastWriter returns a fastWriter for bucket b, or nil when the bucket's
// writes need more than "$KV.<bucket>.<key>" on js's connection: a JetStream
// context with a domain or a non-default API prefix (nats.go's useJSPfx), a
// mirror (nats.go's putPre), a stream not listening on the bucket's
// subjects, or a JetStream implementation without a connection. Any failure
// to look the stream up also means nil: the slow path is always correct.
func newFastWriter(js jetstream.JetStream, b jetstream.KeyValue, stream jetstream.Stream) *fastWriter {
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
	timeout := opts.DefaultTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second // nats.go's defaultAPITimeout
	}
	return &fastWriter{nc: nc, stream: stream, pre: "$KV." + bucket + ".", timeout: timeout}
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
	ctx, cancel := f.withTimeout(ctx)
	if cancel != nil {
		defer cancel()
	}
	m, err := f.stream.GetLastMsgForSubject(ctx, f.pre+key)
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
// key's subject, retried on no responders, under the default timeout if ctx
// has no deadline.
func (f *fastWriter) write(ctx context.Context, key string, value []byte, hdr nats.Header) (uint64, error) {
	ctx, cancel := f.withTimeout(ctx)
	if cancel != nil {
		defer cancel()
	}
	m := &nats.Msg{Subject: f.pre + key, Header: hdr, Data: value}
	resp, err := f.nc.RequestMsgWithContext(ctx, m)
	for r := 0; errors.Is(err, nats.ErrNoResponders) && r < jetstream.DefaultPubRetryAttempts; r++ {
		// No stream listening: a leader election, or the bucket is gone.
		t := time.NewTimer(jetstream.DefaultPubRetryWait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		resp, err = f.nc.RequestMsgWithContext(ctx, m)
	}
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return 0, jetstream.ErrNoStreamResponse
		}
		return 0, err
	}
	return parsePubAck(resp.Data)
}

func (f *fastWriter) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, nil
	}
	return context.WithTimeout(ctx, f.timeout)
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
