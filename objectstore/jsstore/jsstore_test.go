package jsstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/storetest"
)

var bucketSeq atomic.Int64

func newJetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	return connect(t, natstest.Server(t))
}

// connect uses a generous default timeout: tests run in parallel under the
// race detector on small machines, where the 5 s default can run out.
func connect(t testing.TB, srv *server.Server) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, srv), jetstream.WithDefaultTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func newStore(t testing.TB, js jetstream.JetStream, opts ...Option) *Store {
	t.Helper()
	s, err := New(context.Background(), js, fmt.Sprintf("objects-%d", bucketSeq.Add(1)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// corruptible replaces the last chunk of an object with a copy that has
// one byte flipped, keeping the recorded digest.
type corruptible struct{ *Store }

func (c corruptible) Corrupt(ctx context.Context, key string) error {
	oi, err := (*c.obs.Load()).GetInfo(ctx, key)
	if err != nil {
		return err
	}
	subj := chunkSubject(c.bucket, oi.NUID)
	last, err := c.stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return err
	}
	data := append([]byte(nil), last.Data...)
	data[0] ^= 0xff
	if _, err := c.js.Publish(ctx, subj, data); err != nil {
		return err
	}
	return c.stream.DeleteMsg(ctx, last.Sequence)
}

func TestConformance(t *testing.T) {
	js := newJetStream(t)
	storetest.Run(t, func(t *testing.T) objectstore.Store { return corruptible{newStore(t, js)} })
}

func TestConformanceSmallChunks(t *testing.T) {
	js := newJetStream(t)
	storetest.Run(t, func(t *testing.T) objectstore.Store {
		return corruptible{newStore(t, js, WithChunkSize(64<<10))}
	})
}

func BenchmarkJetStream(b *testing.B) {
	js := newJetStream(b)
	storetest.Benchmark(b, func(b *testing.B) objectstore.Store { return newStore(b, js) })
}

func TestOptionsRejected(t *testing.T) {
	js := newJetStream(t)
	for _, opt := range []Option{WithChunkSize(0), WithChunkSize(8 << 20), WithReplicas(0), WithReplicas(6), WithRequestTimeout(0), WithStallTimeout(-time.Second)} {
		if _, err := New(context.Background(), js, "rejected", opt); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("New with a bad option: %v, want ErrInvalidOption", err)
		}
	}
}
