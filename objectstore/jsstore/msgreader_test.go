package jsstore

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/storetest"
	"github.com/nats-io/nats.go/jetstream"
)

// msgReadStore writes through a Store and reads through a Reader, so that
// the conformance suite checks what a Reader reads.
type msgReadStore struct {
	corruptible
	rd *Reader
}

func newMsgReadStore(t *testing.T, js jetstream.JetStream, opts ...Option) msgReadStore {
	s := newStore(t, js, opts...)
	return msgReadStore{corruptible{s}, NewReader(js.Conn(), s.bucket)}
}

func (m msgReadStore) Get(ctx context.Context, key string) (io.ReadCloser, objectstore.Info, error) {
	return m.rd.Get(ctx, key)
}

func (m msgReadStore) Stat(ctx context.Context, key string) (objectstore.Info, error) {
	return m.rd.Stat(ctx, key)
}

func TestMsgReaderConformance(t *testing.T) {
	js := newJetStream(t)
	storetest.Run(t, func(t *testing.T) objectstore.Store { return newMsgReadStore(t, js) })
}

func TestMsgReaderConformanceSmallChunks(t *testing.T) {
	js := newJetStream(t)
	storetest.Run(t, func(t *testing.T) objectstore.Store { return newMsgReadStore(t, js, WithChunkSize(64<<10)) })
}

func TestMsgReaderFailsWhenObjectReplaced(t *testing.T) {
	t.Parallel()
	js := newJetStream(t)
	for _, change := range []string{"overwrite", "delete"} {
		t.Run(change, func(t *testing.T) {
			m := newMsgReadStore(t, js)
			ctx := context.Background()
			putBig(t, m.Store, "k", 'a')
			rc, _, err := m.Get(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if _, err := io.ReadFull(rc, make([]byte, 1<<20)); err != nil {
				t.Fatal(err)
			}
			if change == "overwrite" {
				putBig(t, m.Store, "k", 'b')
			} else if err := m.Delete(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			if !errors.Is(err, ErrObjectChanged) || !errors.Is(err, objectstore.ErrNotFound) {
				t.Fatalf("reading on after %s: %d bytes, error = %v, want ErrObjectChanged", change, n, err)
			}
		})
	}
}

func TestMsgReaderOfMissingBucket(t *testing.T) {
	t.Parallel()
	js := newJetStream(t)
	rd := NewReader(js.Conn(), "no_such_bucket")
	if _, _, err := rd.Get(context.Background(), "k"); !errors.Is(err, objectstore.ErrNotFound) {
		t.Fatalf("Get from a missing bucket: %v, want ErrNotFound", err)
	}
}
