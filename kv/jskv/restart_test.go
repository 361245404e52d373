package jskv_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/internal/retry"
	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/kv/jskv"
)

// restartable opens a store on a server the test can stop and restart.
func restartable(t *testing.T) (*natstest.Restartable, *jskv.Store) {
	t.Helper()
	srv := natstest.RestartableServer(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	// A short limit keeps the failing calls short; a spurious timeout on a
	// busy machine only adds an attempt.
	return srv, newStore(t, js, "restart", jskv.WithRequestTimeout(time.Second))
}

// TestCallsFailTransientlyWhileServerIsDown: with the server gone, every
// call returns a transient error within its request timeout instead of
// waiting for the caller's deadline, and retried with retry.Do each
// succeeds once the server is back.
func TestCallsFailTransientlyWhileServerIsDown(t *testing.T) {
	srv, s := restartable(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var rev uint64
	if err := retry.Do(ctx, func(ctx context.Context) (err error) { rev, err = s.Put(ctx, "k", []byte("v1")); return err }); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	calls := map[string]func(context.Context) error{
		"Get":     func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err },
		"Put":     func(ctx context.Context) error { _, err := s.Put(ctx, "other", []byte("x")); return err },
		"Create":  func(ctx context.Context) error { _, err := s.Create(ctx, "new", []byte("x")); return err },
		"Delete":  func(ctx context.Context) error { return s.Delete(ctx, "gone", 0) },
		"Erase":   func(ctx context.Context) error { return s.Erase(ctx, "gone") },
		"Keys":    func(ctx context.Context) error { _, err := s.Keys(ctx, "k"); return err },
		"Present": func(ctx context.Context) error { _, err := s.Present(ctx, []string{"k"}); return err },
		"Watch": func(ctx context.Context) error {
			ch, err := s.Watch(ctx, "k")
			if err == nil {
				t.Error("Watch with the server down succeeded")
				for range ch {
				}
			}
			return err
		},
	}
	for name, call := range calls {
		if err := call(ctx); !transient.Is(err) {
			t.Errorf("%s with the server down: %v, want a transient error", name, err)
		}
	}

	// An update whose attempt fails may still land once the client
	// reconnects: the retried attempt reads and decides.
	var failures []error
	policy := retry.Policy{
		InitialDelay: 10 * time.Millisecond,
		MaxDelay:     100 * time.Millisecond,
		OnRetry: func(a retry.Attempt) {
			failures = append(failures, a.Err)
			if err := srv.Start(); err != nil {
				t.Error(err)
			}
		},
	}
	err := policy.Do(ctx, func(ctx context.Context) error {
		cur, err := s.Get(ctx, "k")
		if err != nil {
			return err
		}
		if string(cur.Value) == "v2" {
			return nil // an earlier attempt landed
		}
		if cur.Revision != rev {
			return fmt.Errorf("k changed under the test: %+v", cur)
		}
		_, err = s.Update(ctx, "k", []byte("v2"), rev)
		return err
	})
	if err != nil {
		t.Fatalf("retry.Do(Update): %v", err)
	}
	if len(failures) == 0 {
		t.Fatal("no attempt failed with the server down")
	}
	for _, e := range failures {
		if !transient.Is(e) {
			t.Errorf("attempt failed with %v, which is not transient", e)
		}
	}
	var got kv.Entry
	err = retry.Do(ctx, func(ctx context.Context) (err error) { got, err = s.Get(ctx, "k"); return err })
	if err != nil || string(got.Value) != "v2" {
		t.Fatalf("after the restart: %+v, %v", got, err)
	}
}

// TestCallsInFlightAcrossRestartReturn keeps readers and writers busy while
// the server restarts: calls whose replies the restart lost end, with a
// transient error, and none hangs.
func TestCallsInFlightAcrossRestartReturn(t *testing.T) {
	srv, s := restartable(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := retry.Do(ctx, func(ctx context.Context) error { _, err := s.Put(ctx, "k", []byte("v")); return err }); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	for i := range 8 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if i%2 == 0 {
					_, err = s.Get(ctx, "k")
				} else {
					_, err = s.Put(ctx, fmt.Sprintf("w%d", i), []byte("v"))
				}
				if err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
			}
		})
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// Let every worker see the server back before stopping them.
	if err := retry.Do(ctx, func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err }); err != nil {
		t.Fatalf("Get after the restart: %v", err)
	}
	close(stop)
	wg.Wait()
	for _, err := range failed {
		if !transient.Is(err) {
			t.Errorf("a call across the restart failed with %v, which is not transient", err)
		}
	}
	t.Logf("%d calls failed across the restart, all transient", len(failed))
}

// TestWatchAcrossRestart: a watch open while the server restarts either
// delivers the changes made after it or closes its channel so the caller
// can watch again; it never goes silent.
func TestWatchAcrossRestart(t *testing.T) {
	srv, s := restartable(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var ch <-chan kv.Entry
	if err := retry.Do(ctx, func(ctx context.Context) (err error) { ch, err = s.Watch(ctx, "w."); return err }); err != nil {
		t.Fatal(err)
	}
	if e := <-ch; e.Key != "" {
		t.Fatalf("first entry %+v, want the end of the initial values", e)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := retry.Do(ctx, func(ctx context.Context) error { _, err := s.Put(ctx, "w.after", []byte("v")); return err }); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Log("the watch closed across the restart")
				return
			}
			if e.Key == "w.after" && bytes.Equal(e.Value, []byte("v")) {
				t.Log("the watch delivered a change made after the restart")
				return
			}
		case <-ctx.Done():
			t.Fatal("the watch went silent across the restart")
		}
	}
}

// TestPermanentErrorsAreNotTransient: what a retry cannot fix is not
// marked worth retrying.
func TestPermanentErrorsAreNotTransient(t *testing.T) {
	js := newJetStream(t)
	s := newStore(t, js, "permanent")
	ctx := t.Context()
	rev, err := s.Put(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	calls := map[string]func() error{
		"Get of a missing key":     func() error { _, err := s.Get(ctx, "missing"); return err },
		"Update at a stale rev":    func() error { _, err := s.Update(ctx, "k", []byte("w"), rev+5); return err },
		"Create of a present key":  func() error { _, err := s.Create(ctx, "k", []byte("w")); return err },
		"Delete at a stale rev":    func() error { return s.Delete(ctx, "k", rev+5) },
		"Get of an invalid key":    func() error { _, err := s.Get(ctx, "a b"); return err },
		"Get, caller canceled":     func() error { _, err := s.Get(canceled, "k"); return err },
		"Put, caller canceled":     func() error { _, err := s.Put(canceled, "k", nil); return err },
		"Keys, caller canceled":    func() error { _, err := s.Keys(canceled, ""); return err },
		"Present, caller canceled": func() error { _, err := s.Present(canceled, []string{"k"}); return err },
	}
	for name, call := range calls {
		if err := call(); err == nil || transient.Is(err) {
			t.Errorf("%s: %v, want a permanent error", name, err)
		}
	}
	closed := newStore(t, js, "closed")
	closed.Close()
	if _, err := closed.Get(ctx, "k"); err == nil || transient.Is(err) {
		t.Errorf("Get on a closed store: %v, want a permanent error", err)
	}
}
