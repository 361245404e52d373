package jsstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/objectstore"
)

// bigger than readAhead, so a reader cannot have it all buffered
const bigObject = 3 * readAhead

func putBig(t *testing.T, s *Store, key string, fill byte) {
	t.Helper()
	data := bytes.Repeat([]byte{fill}, bigObject)
	if _, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func TestReaderFailsWhenObjectReplaced(t *testing.T) {
	t.Parallel()
	js := newJetStream(t)
	for _, change := range []string{"overwrite", "delete"} {
		t.Run(change, func(t *testing.T) {
			s := newStore(t, js)
			ctx := context.Background()
			putBig(t, s, "k", 'a')
			rc, _, err := s.Get(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if _, err := io.ReadFull(rc, make([]byte, 1<<20)); err != nil {
				t.Fatal(err)
			}
			if change == "overwrite" {
				putBig(t, s, "k", 'b')
			} else if err := s.Delete(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			if !errors.Is(err, ErrObjectChanged) || !errors.Is(err, objectstore.ErrNotFound) {
				t.Fatalf("reading on after %s: %d bytes, error = %v, want ErrObjectChanged", change, n, err)
			}
		})
	}
}

func TestReaderEndsWithContext(t *testing.T) {
	t.Parallel()
	s := newStore(t, newJetStream(t))
	putBig(t, s, "k", 'a')
	ctx, cancel := context.WithCancel(context.Background())
	rc, _, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if n, err := io.Copy(io.Discard, rc); !errors.Is(err, context.Canceled) {
		t.Fatalf("reading on after cancel: %d bytes, error = %v, want context.Canceled", n, err)
	}
}

func TestNoChunksOrConsumersLeftBehind(t *testing.T) {
	t.Parallel()
	s := newStore(t, newJetStream(t), WithChunkSize(64<<10))
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			data := bytes.Repeat([]byte{byte(i)}, 300<<10+i)
			if _, err := s.Put(ctx, "contended", bytes.NewReader(data), int64(len(data))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for range 3 {
		if _, _, err := objectstore.ReadAll(ctx, s, "contended"); err != nil {
			t.Fatal(err)
		}
	}
	oi, err := (*s.obs.Load()).GetInfo(ctx, "contended")
	if err != nil {
		t.Fatal(err)
	}
	si, err := s.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One metadata message and the current version's chunks.
	if want := uint64(oi.Chunks) + 1; si.State.Msgs != want {
		t.Errorf("stream holds %d messages, want %d: chunks of replaced versions remain", si.State.Msgs, want)
	}
	if si.State.Consumers != 0 {
		t.Errorf("%d consumers remain after the readers closed", si.State.Consumers)
	}
}

func TestObjectsSurviveServerRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	open := func() (*Store, *server.Server) {
		srv := natstest.ServerIn(t, dir)
		s, err := New(ctx, connect(t, srv), "durable")
		if err != nil {
			t.Fatal(err)
		}
		return s, srv
	}
	first, srv := open()
	data := bytes.Repeat([]byte("durable "), 300_000)
	want, err := first.Put(ctx, "k", bytes.NewReader(data), -1)
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()

	second, _ := open()
	got, info, err := objectstore.ReadAll(ctx, second, "k")
	if err != nil || !bytes.Equal(got, data) || info != want {
		t.Fatalf("after restart: %d bytes, %+v, %v; want %+v", len(got), info, err, want)
	}
}
