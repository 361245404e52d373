// Package msgget reads single messages of a JetStream stream with the
// message-get API, $JS.API.STREAM.MSG.GET.<stream>: one request, one
// message, no consumer created and no other JetStream API used. It is the
// read a least-privilege connection is allowed (the client role of
// deploy/nats.conf): a KV record, an object's metadata or its chunks. The
// stream's leader answers, so a read sees every write acknowledged before
// it, whether or not the stream allows direct gets.
package msgget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// ErrNotFound means the stream holds no such message.
var ErrNotFound = errors.New("msgget: no message found")

// ErrNoStream means the stream does not exist.
var ErrNoStream = errors.New("msgget: stream not found")

// Msg is a stored message.
type Msg struct {
	// Subject is the subject it was published to.
	Subject string
	// Seq is its sequence number in the stream.
	Seq uint64
	// Header is its header, nil if it has none.
	Header nats.Header
	// Data is its payload.
	Data []byte
	// Time is when the stream stored it.
	Time time.Time
}

// Subject returns the API subject of message gets on stream.
func Subject(stream string) string { return "$JS.API.STREAM.MSG.GET." + stream }

// Last returns the last message stream holds on subject (a KV key's
// current value, an object's metadata).
func Last(ctx context.Context, nc *nats.Conn, stream, subject string) (*Msg, error) {
	return get(ctx, nc, stream, request{LastFor: subject})
}

// Next returns the first message stream holds on subject at sequence seq
// or after it (the next chunk of an object).
func Next(ctx context.Context, nc *nats.Conn, stream string, seq uint64, subject string) (*Msg, error) {
	return get(ctx, nc, stream, request{Seq: seq, NextFor: subject})
}

type request struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
}

type response struct {
	Type    string `json:"type"`
	Message *struct {
		Subject string    `json:"subject"`
		Seq     uint64    `json:"seq"`
		Header  []byte    `json:"hdrs,omitempty"`
		Data    []byte    `json:"data,omitempty"`
		Time    time.Time `json:"time"`
	} `json:"message"`
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// The JetStream API's error codes that get names.
const (
	errCodeNoMessage = 10037
	errCodeNoStream  = 10059
)

func get(ctx context.Context, nc *nats.Conn, stream string, req request) (*Msg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	reply, err := nc.RequestWithContext(ctx, Subject(stream), body)
	if err != nil {
		return nil, fmt.Errorf("msgget: %s: %w", stream, err)
	}
	var resp response
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("msgget: %s: the reply is not a message-get response: %w", stream, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == errCodeNoMessage:
		return nil, ErrNotFound
	case resp.Error != nil && resp.Error.ErrCode == errCodeNoStream:
		return nil, fmt.Errorf("%w: %s", ErrNoStream, stream)
	case resp.Error != nil:
		return nil, fmt.Errorf("msgget: %s: %s (code %d/%d)", stream, resp.Error.Description, resp.Error.Code, resp.Error.ErrCode)
	case resp.Message == nil:
		return nil, fmt.Errorf("msgget: %s: the reply holds no message", stream)
	}
	m := &Msg{Subject: resp.Message.Subject, Seq: resp.Message.Seq, Data: resp.Message.Data, Time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return nil, fmt.Errorf("msgget: %s: message %d has a malformed header: %w", stream, m.Seq, err)
		}
	}
	return m, nil
}
