package jsstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/internal/retry"
	"github.com/flowstone-go/flowstone/internal/transient"
)

// TestCallsEndWhileServerIsDown: with the server gone for good, every call
// returns a transient error within its request timeout, whether or not the
// caller's context has a deadline of its own.
func TestCallsEndWhileServerIsDown(t *testing.T) {
	t.Parallel()
	srv := natstest.RestartableServer(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), js, "down", WithRequestTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// The short limit can run out on a busy machine: retry the setup.
	if err := retry.Do(t.Context(), func(ctx context.Context) error {
		_, err := s.Put(ctx, "k", bytes.NewReader([]byte("v")), 1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	long, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	for name, ctx := range map[string]context.Context{"no deadline": context.Background(), "a long deadline": long} {
		calls := map[string]func() error{
			"Stat": func() error { _, err := s.Stat(ctx, "k"); return err },
			"Get":  func() error { _, _, err := s.Get(ctx, "k"); return err },
			"Put": func() error {
				_, err := s.Put(ctx, "k", bytes.NewReader([]byte("w")), 1)
				return err
			},
			"Delete": func() error { return s.Delete(ctx, "k") },
		}
		for op, call := range calls {
			if err := call(); !transient.Is(err) {
				t.Errorf("%s with %s while the server is down: %v, want a transient error", op, name, err)
			}
		}
	}
}

// TestPutWaitingForTheKeyEndsWithContext: a Put queued behind another Put
// of the same key gives up when its context ends, with the context's
// error, which is not transient.
func TestPutWaitingForTheKeyEndsWithContext(t *testing.T) {
	t.Parallel()
	s := newStore(t, newJetStream(t))
	pr, pw := io.Pipe()
	reading := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := s.Put(context.Background(), "k", &signalFirstRead{r: pr, ch: reading}, -1)
		first <- err
	}()
	<-reading // the first Put holds the key

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := s.Put(ctx, "k", bytes.NewReader([]byte("second")), 6)
	if !errors.Is(err, context.DeadlineExceeded) || transient.Is(err) {
		t.Errorf("queued Put past its deadline: %v, want the context's deadline, not transient", err)
	}

	pw.Write([]byte("first"))
	pw.Close()
	if err := <-first; err != nil {
		t.Fatalf("first Put: %v", err)
	}
}

type signalFirstRead struct {
	r    io.Reader
	ch   chan struct{}
	done bool
}

func (s *signalFirstRead) Read(p []byte) (int, error) {
	if !s.done {
		s.done = true
		close(s.ch)
	}
	return s.r.Read(p)
}
