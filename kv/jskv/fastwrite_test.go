package jskv_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/kv/jskv"
	"github.com/flowstone-go/flowstone/kv/kvtest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// noConn is a JetStream without a connection to hand out: the store must
// write through jetstream.KeyValue.
type noConn struct{ jetstream.JetStream }

func (noConn) Conn() *nats.Conn { return nil }

// The write path through jetstream.KeyValue (mirrors, domains, API
// prefixes) keeps passing the suite.
func TestConformanceSlowWrites(t *testing.T) {
	js := noConn{newJetStream(t)}
	var buckets atomic.Int64
	kvtest.Run(t, func(t *testing.T) kv.Store {
		s := newStore(t, js, fmt.Sprintf("slow_%d", buckets.Add(1)))
		if jskv.FastWrites(s) {
			t.Fatal("store without a connection writes directly")
		}
		return s
	})
}

func TestFastWritesOnlyForPlainBuckets(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if !jskv.FastWrites(newStore(t, js, "plain")) {
		t.Error("plain bucket on the default API prefix: want direct writes")
	}
	explicit, err := jetstream.NewWithAPIPrefix(nc, "$JS.API")
	if err != nil {
		t.Fatal(err)
	}
	if !jskv.FastWrites(newStore(t, explicit, "plain")) {
		t.Error("explicit default API prefix: want direct writes")
	}
	ctx := t.Context()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: "copy",
		Mirror: &jetstream.StreamSource{Name: "plain"},
	}); err != nil {
		t.Fatalf("create mirror bucket: %v", err)
	}
	if jskv.FastWrites(newStore(t, js, "copy")) {
		t.Error("mirror bucket: want writes through jetstream.KeyValue")
	}
}

func TestFastConflictErrors(t *testing.T) {
	s := newStore(t, newJetStream(t), "codes")
	if !jskv.FastWrites(s) {
		t.Fatal("want direct writes")
	}
	ctx := t.Context()
	rev, err := s.Create(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	_, errCreate := s.Create(ctx, "k", []byte("v"))
	_, errUpdate := s.Update(ctx, "k", []byte("v"), rev+100)
	for _, tc := range []struct {
		name   string
		err    error
		nats   error
		wantIn string
	}{
		{"Create", errCreate, jetstream.ErrKeyExists, "wrong last sequence"},
		{"Update", errUpdate, jetstream.ErrKeyRevisionMismatch, "wrong last sequence"},
	} {
		var apiErr *jetstream.APIError
		switch {
		case !errors.Is(tc.err, kv.ErrConflict):
			t.Errorf("%s conflict %v: not kv.ErrConflict", tc.name, tc.err)
		case !errors.As(tc.err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence || apiErr.Code != 400:
			t.Errorf("%s conflict %v: want the server's API error 400/10071", tc.name, tc.err)
		case !errors.Is(tc.err, tc.nats):
			t.Errorf("%s conflict %v: want %v too", tc.name, tc.err, tc.nats)
		}
	}
	// The conflicts wrote nothing.
	if got, err := s.Get(ctx, "k"); err != nil || got.Revision != rev {
		t.Fatalf("Get = %+v, %v; want revision %d", got, err, rev)
	}
}

// Create over a delete or purge marker: nats.go's rule, kept by the direct
// path.
func TestFastCreateOverMarkers(t *testing.T) {
	js := newJetStream(t)
	s := newStore(t, js, "markers")
	if !jskv.FastWrites(s) {
		t.Fatal("want direct writes")
	}
	b, err := js.KeyValue(t.Context(), "markers")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, tc := range []struct {
		name   string
		remove func(key string, rev uint64) error
	}{
		{"Delete", func(key string, _ uint64) error { return s.Delete(ctx, key, 0) }},
		{"DeleteAtRev", func(key string, rev uint64) error { return s.Delete(ctx, key, rev) }},
		{"Purge", func(key string, _ uint64) error { return b.Purge(ctx, key) }},
	} {
		key := "k." + tc.name
		rev, err := s.Create(ctx, key, []byte("1"))
		if err != nil {
			t.Fatalf("%s: first Create: %v", tc.name, err)
		}
		if err := tc.remove(key, rev); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		next, err := s.Create(ctx, key, []byte("2"))
		if err != nil || next <= rev {
			t.Fatalf("%s: Create over marker = %d, %v; want a revision > %d", tc.name, next, err, rev)
		}
		got, err := s.Get(ctx, key)
		if err != nil || string(got.Value) != "2" || got.Revision != next {
			t.Fatalf("%s: Get = %+v, %v; want 2 at %d", tc.name, got, err, next)
		}
		if _, err := s.Create(ctx, key, []byte("3")); !errors.Is(err, kv.ErrConflict) {
			t.Fatalf("%s: Create over a value error = %v, want ErrConflict", tc.name, err)
		}
	}
}

// With the bucket's stream gone nobody answers the put subject: after
// nats.go's retries the write fails with ErrNoStreamResponse, not a hang.
func TestFastWriteStreamGone(t *testing.T) {
	js := newJetStream(t)
	s := newStore(t, js, "gone")
	if !jskv.FastWrites(s) {
		t.Fatal("want direct writes")
	}
	rev, err := s.Put(t.Context(), "k", []byte("v"))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := js.DeleteKeyValue(t.Context(), "gone"); err != nil {
		t.Fatalf("DeleteKeyValue: %v", err)
	}
	for name, write := range map[string]func(context.Context) error{
		"Put":    func(ctx context.Context) error { _, err := s.Put(ctx, "k", nil); return err },
		"Create": func(ctx context.Context) error { _, err := s.Create(ctx, "k2", nil); return err },
		"Update": func(ctx context.Context) error { _, err := s.Update(ctx, "k", nil, rev); return err },
	} {
		start := time.Now()
		err := write(context.Background())
		if !errors.Is(err, jetstream.ErrNoStreamResponse) {
			t.Errorf("%s on a deleted bucket error = %v, want ErrNoStreamResponse", name, err)
		}
		// nats.go retries twice, 250ms apart, in case a leader is being
		// elected.
		if d := time.Since(start); d > 2*time.Second || d < 2*jetstream.DefaultPubRetryWait {
			t.Errorf("%s on a deleted bucket took %v, want about %v", name, d, 2*jetstream.DefaultPubRetryWait)
		}
	}
}

// Every write gets the store's request timeout, with or without a deadline
// of the caller's: with the server gone a write ends with a transient
// TimeoutError.
func TestFastWriteServerStopped(t *testing.T) {
	srv := natstest.Server(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, js, "stopped", jskv.WithRequestTimeout(300*time.Millisecond))
	rev, err := s.Put(t.Context(), "k", []byte("v"))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	long, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	for name, write := range map[string]func(context.Context) error{
		"Put":    func(ctx context.Context) error { _, err := s.Put(ctx, "k", nil); return err },
		"Create": func(ctx context.Context) error { _, err := s.Create(ctx, "k2", nil); return err },
		"Update": func(ctx context.Context) error { _, err := s.Update(ctx, "k", nil, rev); return err },
	} {
		for deadline, ctx := range map[string]context.Context{"none": context.Background(), "in an hour": long} {
			err := write(ctx)
			var te *transient.TimeoutError
			if !errors.As(err, &te) || !transient.Is(err) {
				t.Errorf("%s with the server stopped, deadline %s: %v, want a transient TimeoutError", name, deadline, err)
			}
		}
	}
}

// Concurrent writes are group-committed: under load they go out in fewer
// batches than writes, and each still gets its own outcome.
func TestConcurrentWritesShareBatchesKeepTheirOutcomes(t *testing.T) {
	s := newStore(t, newJetStream(t), "group")
	if !jskv.FastWrites(s) {
		t.Fatal("want direct writes")
	}
	ctx := t.Context()
	const distinct, racers = 400, 40
	var wg sync.WaitGroup
	revs := make([]uint64, distinct)
	errs := make([]error, distinct)
	var won, lost atomic.Int32
	for i := range distinct {
		wg.Go(func() { revs[i], errs[i] = s.Create(ctx, fmt.Sprintf("k%d", i), []byte("v")) })
	}
	for range racers {
		wg.Go(func() {
			_, err := s.Create(ctx, "hot", []byte("mine"))
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, kv.ErrConflict):
				lost.Add(1)
			default:
				t.Errorf("racing Create: %v", err)
			}
		})
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Create k%d: %v", i, err)
		}
		if seen[revs[i]] {
			t.Fatalf("revision %d handed to two writes", revs[i])
		}
		seen[revs[i]] = true
		if e, err := s.Get(ctx, fmt.Sprintf("k%d", i)); err != nil || e.Revision != revs[i] {
			t.Fatalf("k%d: stored at %d (%v), Create said %d", i, e.Revision, err, revs[i])
		}
	}
	if won.Load() != 1 || lost.Load() != racers-1 {
		t.Fatalf("racing Creates: %d won, %d lost; want 1 and %d", won.Load(), lost.Load(), racers-1)
	}
	batches, writes := jskv.WriteBatches(s)
	if writes < distinct+racers || batches >= writes {
		t.Fatalf("%d writes in %d batches: want fewer batches than writes under load", writes, batches)
	}
	t.Logf("%d writes in %d batches", writes, batches)
}

// Writes whose replies never come end with their context's deadline if
// that comes first, else with the store's request timeout, and do not hold
// the batch slots: later writes go out and succeed.
func TestLostRepliesDoNotWedgeWrites(t *testing.T) {
	js, err := jetstream.New(natstest.Connect(t, natstest.Server(t)))
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, js, "lost", jskv.WithRequestTimeout(300*time.Millisecond))
	restore := jskv.DropReplies(s)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
			defer cancel()
			if _, err := s.Put(ctx, fmt.Sprintf("k%d", i), []byte("v")); !errors.Is(err, context.DeadlineExceeded) || transient.Is(err) {
				t.Errorf("write without a reply: %v, want the context's deadline, not transient", err)
			}
		})
	}
	long, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	for i := range 3 {
		for _, ctx := range []context.Context{context.Background(), long} {
			wg.Go(func() {
				_, err := s.Put(ctx, fmt.Sprintf("late%d", i), []byte("v"))
				var te *transient.TimeoutError
				if !errors.As(err, &te) || !transient.Is(err) {
					t.Errorf("write without a reply: %v, want the store's request timeout", err)
				}
			})
		}
	}
	wg.Wait()
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.Put(ctx, "after", []byte("v")); err != nil {
		t.Fatalf("write after lost replies: %v", err)
	}
}

// Close ends the writer's timeout clock, which a write without a deadline
// starts, even while such a write still waits for its reply: that write
// fails with kv.ErrClosed, and no clock is left waiting for its tick.
func TestCloseEndsTheTimeoutClock(t *testing.T) {
	js := newJetStream(t)
	store, err := jskv.New(t.Context(), js, "reaped")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(context.Background(), "a", []byte("v")); err != nil {
		t.Fatal(err)
	}
	jskv.DropReplies(store) // and never restored: the write below waits for good
	waiting := make(chan error, 1)
	go func() {
		_, err := store.Put(context.Background(), "b", []byte("v"))
		waiting <- err
	}()
	waitFor(t, "the write to be in flight", func() bool { _, w := jskv.WriteBatches(store); return w == 2 })
	store.Close()
	if n := blockedIn("jskv.(*fastWriter).reap"); n != 0 {
		t.Fatalf("%d timeout clocks still run after Close", n)
	}
	if err := <-waiting; !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("write waiting for its reply when the store closed: %v, want kv.ErrClosed", err)
	}
}

// blockedIn counts the goroutines with fn in their stack that are blocked
// (waiting on a channel, a timer, a lock): one that has just returned from
// fn may still be finishing, runnable, for a moment.
func blockedIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(g, fn) && !strings.Contains(header, "[running]") && !strings.Contains(header, "[runnable]") {
			count++
		}
	}
	return count
}

// waitFor waits until cond holds, or fails the test after a generous
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
