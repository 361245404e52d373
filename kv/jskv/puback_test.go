package jskv

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestParsePubAck(t *testing.T) {
	for _, tc := range []struct {
		in   string
		seq  uint64
		fast bool  // read by the hand-written parser
		err  error // else the error, under errors.Is
		code jetstream.ErrorCode
	}{
		{in: `{"stream":"KV_b","seq":1}`, seq: 1, fast: true},
		{in: `{"stream":"KV_b","seq":18446744073709551615}`, seq: 1<<64 - 1, fast: true},
		{in: `{"stream":"KV_b","domain":"hub","seq":42}`, seq: 42, fast: true},
		{in: `{"stream":"KV_b","seq":7,"duplicate":true}`, seq: 7},
		{in: `{"stream": "KV_b", "seq": 7}`, seq: 7},
		{in: `{"seq":7,"stream":"KV_b"}`, seq: 7},
		{in: `{"stream":"KV_\u0062","seq":7}`, seq: 7},
		{in: `{"stream":"KV_b","seq":18446744073709551616}`, err: jetstream.ErrInvalidJSAck},
		{in: `{"stream":"","seq":7}`, err: jetstream.ErrInvalidJSAck},
		{in: `{"seq":7}`, err: jetstream.ErrInvalidJSAck},
		{in: `{"stream":"KV_b","seq":7`, err: jetstream.ErrInvalidJSAck},
		{in: `{"stream":"KV_b","seq":-7}`, err: jetstream.ErrInvalidJSAck},
		{in: ``, err: jetstream.ErrInvalidJSAck},
		{in: `nope`, err: jetstream.ErrInvalidJSAck},
		{
			in:   `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"KV_b","seq":0}`,
			err:  jetstream.ErrKeyExists, // same code
			code: jetstream.JSErrCodeStreamWrongLastSequence,
		},
		{
			in:   `{"error":{"code":503,"err_code":10077,"description":"resource limits exceeded for account"}}`,
			code: 10077,
		},
	} {
		seq, fast := parsePubAckFast([]byte(tc.in))
		if fast != tc.fast || (fast && seq != tc.seq) {
			t.Errorf("parsePubAckFast(%s) = %d, %v; want %d, %v", tc.in, seq, fast, tc.seq, tc.fast)
		}
		seq, err := parsePubAck([]byte(tc.in))
		var apiErr *jetstream.APIError
		switch {
		case tc.code != 0:
			if !errors.As(err, &apiErr) || apiErr.ErrorCode != tc.code || (tc.err != nil && !errors.Is(err, tc.err)) {
				t.Errorf("parsePubAck(%s) error = %v, want API error %d", tc.in, err, tc.code)
			}
		case tc.err != nil:
			if !errors.Is(err, tc.err) {
				t.Errorf("parsePubAck(%s) error = %v, want %v", tc.in, err, tc.err)
			}
		case err != nil || seq != tc.seq:
			t.Errorf("parsePubAck(%s) = %d, %v; want %d", tc.in, seq, err, tc.seq)
		}
	}
}

// The hand-written parser must agree with encoding/json whenever it answers.
func FuzzParsePubAckFast(f *testing.F) {
	for _, s := range []string{
		`{"stream":"KV_b","seq":1}`,
		`{"stream":"KV_b","domain":"d","seq":123456789}`,
		`{"stream":"x","seq":0}`,
		`{"stream":"KV_b","seq":01}`,
		`{"stream":"KV_b","seq":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, ok := parsePubAckFast(b)
		if !ok {
			return
		}
		var r pubAckReply
		if err := json.Unmarshal(b, &r); err != nil || r.Error != nil || r.Stream == "" || r.Seq != seq {
			t.Fatalf("parsePubAckFast(%q) = %d; encoding/json: %+v, %v", b, seq, r, err)
		}
	})
}

func TestParsePubAckFastNoAllocs(t *testing.T) {
	ack := []byte(`{"stream":"KV_bench","domain":"hub","seq":123456}`)
	if n := testing.AllocsPerRun(100, func() {
		if seq, ok := parsePubAckFast(ack); !ok || seq != 123456 {
			t.Fatalf("parsePubAckFast = %d, %v", seq, ok)
		}
	}); n != 0 {
		t.Errorf("parsePubAckFast allocates %v times", n)
	}
}
