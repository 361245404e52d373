package jskv_test

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/kv/jskv"
	"github.com/flowstone-go/flowstone/kv/kvtest"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newJetStream starts an embedded server and returns a JetStream client on
// it; both end with the test.
func newJetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, natstest.Server(t)))
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return js
}

// newStore opens a store on bucket and closes it when t ends.
func newStore(t testing.TB, js jetstream.JetStream, bucket string, opts ...jskv.Option) *jskv.Store {
	t.Helper()
	s, err := jskv.New(t.Context(), js, bucket, opts...)
	if err != nil {
		t.Fatalf("jskv.New(%q): %v", bucket, err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestConformance(t *testing.T) {
	js := newJetStream(t)
	var buckets atomic.Int64
	kvtest.Run(t, func(t *testing.T) kv.Store {
		return newStore(t, js, fmt.Sprintf("conformance_%d", buckets.Add(1)))
	})
}

func TestNewBindsExistingBucket(t *testing.T) {
	js := newJetStream(t)
	first := newStore(t, js, "shared")
	rev, err := first.Put(t.Context(), "a", []byte("v"))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	// Different options on an existing bucket: bind as is, do not fail.
	second := newStore(t, js, "shared", jskv.WithTTL(time.Hour))
	got, err := second.Get(t.Context(), "a")
	if err != nil || got.Revision != rev {
		t.Fatalf("second store Get = %+v, %v; want revision %d", got, err, rev)
	}
	b, err := js.KeyValue(t.Context(), "shared")
	if err != nil {
		t.Fatalf("KeyValue: %v", err)
	}
	status, err := b.Status(t.Context())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if status.TTL() != 0 || status.History() != 1 {
		t.Fatalf("bucket TTL %v history %d, want the creator's 0 and 1", status.TTL(), status.History())
	}
	opened, err := jskv.Open(t.Context(), js, "shared")
	if err != nil {
		t.Fatalf("Open existing: %v", err)
	}
	opened.Close()
}

func TestOpenMissingBucket(t *testing.T) {
	js := newJetStream(t)
	if _, err := jskv.Open(t.Context(), js, "nope"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("Open(missing) error = %v, want ErrBucketNotFound", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	js := newJetStream(t)
	for _, opt := range []jskv.Option{jskv.WithReplicas(0), jskv.WithReplicas(6), jskv.WithTTL(-time.Second), jskv.WithRequestTimeout(0)} {
		if _, err := jskv.New(t.Context(), js, "b", opt); !errors.Is(err, jskv.ErrInvalidOption) {
			t.Errorf("New with bad option error = %v, want ErrInvalidOption", err)
		}
	}
	if _, err := jskv.Open(t.Context(), js, "b"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("a rejected New created the bucket: Open error = %v", err)
	}
}

func TestConflictKeepsServerCode(t *testing.T) {
	js := newJetStream(t)
	s := newStore(t, js, "codes")
	ctx := t.Context()
	rev, err := s.Create(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	_, errCreate := s.Create(ctx, "k", []byte("v"))
	_, errUpdate := s.Update(ctx, "k", []byte("v"), rev+100)
	errDelete := s.Delete(ctx, "k", rev+100)
	for name, err := range map[string]error{"Create": errCreate, "Update": errUpdate, "Delete": errDelete} {
		var apiErr *jetstream.APIError
		if !errors.Is(err, kv.ErrConflict) || !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
			t.Errorf("%s conflict error = %v, want kv.ErrConflict wrapping API error 10071", name, err)
		}
	}
}

func TestClose(t *testing.T) {
	js := newJetStream(t)
	s := newStore(t, js, "closing")
	ch, err := s.Watch(t.Context(), "")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	s.Close()
	for range ch { // Close returns after the forwarding goroutine closed ch
	}
	if _, err := s.Get(t.Context(), "a"); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Get after Close error = %v, want ErrClosed", err)
	}
	if _, err := s.Keys(t.Context(), ""); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Keys after Close error = %v, want ErrClosed", err)
	}
	if _, err := s.Watch(t.Context(), ""); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Watch after Close error = %v, want ErrClosed", err)
	}
}

// Data written through one server must be there after a restart over the
// same store directory.
func TestSurvivesServerRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()

	srv := natstest.ServerIn(t, dir)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	s, err := jskv.New(ctx, js, "durable")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rev, err := s.Put(ctx, "runs.r1.state", []byte("done"))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := s.Put(ctx, "runs.r2.state", []byte("gone")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := s.Delete(ctx, "runs.r2.state", 0); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	s.Close()
	nc.Close()
	srv.Shutdown()
	srv.WaitForShutdown()

	srv = natstest.ServerIn(t, dir)
	js, err = jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	s, err = jskv.Open(ctx, js, "durable")
	if err != nil {
		t.Fatalf("Open after restart: %v", err)
	}
	t.Cleanup(s.Close)
	got, err := s.Get(ctx, "runs.r1.state")
	if err != nil || string(got.Value) != "done" || got.Revision != rev {
		t.Fatalf("Get after restart = %+v, %v; want done at revision %d", got, err, rev)
	}
	if _, err := s.Get(ctx, "runs.r2.state"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("deleted key after restart error = %v, want ErrNotFound", err)
	}
	// Revisions keep growing across the restart, so CAS stays sound.
	next, err := s.Update(ctx, "runs.r1.state", []byte("again"), rev)
	if err != nil || next <= rev {
		t.Fatalf("Update after restart = %d, %v; want a revision > %d", next, err, rev)
	}
}

// Listing must not stop at the client's watch buffer (256 entries) and must
// narrow to a subtree when the prefix ends in ".".
func TestKeysMany(t *testing.T) {
	const runs, perRun = 20, 100
	s := newStore(t, newJetStream(t), "many")
	ctx := t.Context()
	for i := range runs * perRun {
		key := fmt.Sprintf("runs.r%02d.asset%03d", i/perRun, i%perRun)
		if _, err := s.Put(ctx, key, nil); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	all, err := s.Keys(ctx, "")
	if err != nil || len(all) != runs*perRun {
		t.Fatalf("Keys(\"\") = %d keys, %v; want %d", len(all), err, runs*perRun)
	}
	if !slices.IsSorted(all) {
		t.Fatal("Keys(\"\") not sorted")
	}
	for _, prefix := range []string{"runs.r07.", "runs.r07"} {
		sub, err := s.Keys(ctx, prefix)
		if err != nil || len(sub) != perRun || sub[0] != "runs.r07.asset000" || sub[perRun-1] != "runs.r07.asset099" {
			t.Fatalf("Keys(%q) = %d keys, %v; want runs.r07.asset000 to asset099", prefix, len(sub), err)
		}
	}
}

// Erase leaves nothing behind: no value, no key, and no delete marker in
// the bucket's stream (Delete leaves one).
func TestEraseLeavesNoMarker(t *testing.T) {
	js := newJetStream(t)
	s := newStore(t, js, "index")
	ctx := t.Context()
	for _, k := range []string{"live.a", "live.b", "other"} {
		if _, err := s.Put(ctx, k, []byte("x")); err != nil {
			t.Fatalf("Put %s: %v", k, err)
		}
	}
	if err := s.Erase(ctx, "live.a"); err != nil {
		t.Fatalf("Erase: %v", err)
	}
	if err := s.Delete(ctx, "other", 0); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "live.a"); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("Get after Erase error = %v, want ErrNotFound", err)
	}
	if keys, err := s.Keys(ctx, "live."); err != nil || len(keys) != 1 || keys[0] != "live.b" {
		t.Errorf("Keys(live.) = %v %v, want [live.b]", keys, err)
	}
	stream, err := js.Stream(ctx, "KV_index")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("$KV.index.>"))
	if err != nil {
		t.Fatal(err)
	}
	// live.b's value and other's delete marker; nothing of live.a.
	if _, ok := info.State.Subjects["$KV.index.live.a"]; ok || info.State.Msgs != 2 {
		t.Errorf("stream holds %d messages on %v, want live.b and other's marker only", info.State.Msgs, info.State.Subjects)
	}
	if err := s.Erase(ctx, "live.never"); err != nil {
		t.Errorf("Erase of a key without a value: %v", err)
	}
	if err := s.Erase(ctx, "live.*"); !errors.Is(err, kv.ErrInvalidKey) {
		t.Errorf("Erase of a wildcard error = %v, want ErrInvalidKey", err)
	}
	s.Close()
	if err := s.Erase(ctx, "live.b"); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Erase after Close error = %v, want ErrClosed", err)
	}
}
