package kvtest

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/kv"
)

func testWatchInitialAndUpdates(t *testing.T, s kv.Store) {
	ctx := t.Context()
	mustPut(t, s, "p.a", "1")
	mustPut(t, s, "p.b", "2")
	mustPut(t, s, "p.b", "3") // only the current value is an initial value
	mustPut(t, s, "q.x", "other prefix")
	mustPut(t, s, "p.gone", "x")
	if err := s.Delete(ctx, "p.gone", 0); err != nil {
		t.Fatalf("Delete: %v", err)
	}

	ch, err := s.Watch(ctx, "p.")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	initial := map[string]string{}
	for {
		e := next(t, ch)
		if e.Key == "" {
			if e.Value != nil || e.Revision != 0 {
				t.Fatalf("marker = %+v, want the zero Entry", e)
			}
			break
		}
		if e.Value == nil {
			t.Fatalf("initial values include a deletion: %+v", e)
		}
		initial[e.Key] = string(e.Value)
	}
	if want := map[string]string{"p.a": "1", "p.b": "3"}; !maps.Equal(initial, want) {
		t.Fatalf("initial values = %v, want %v", initial, want)
	}

	// Writes outside the prefix come first, so the next entry received
	// proves they were filtered out without waiting for silence.
	mustPut(t, s, "q.y", "other prefix")
	rc := mustPut(t, s, "p.c", "4")
	e := next(t, ch)
	if e.Key != "p.c" || string(e.Value) != "4" || e.Revision != rc {
		t.Fatalf("live update = %+v, want p.c=4 at revision %d", e, rc)
	}

	rb := mustGet(t, s, "p.b").Revision
	ru, err := s.Update(ctx, "p.b", []byte("5"), rb)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if e := next(t, ch); e.Key != "p.b" || string(e.Value) != "5" || e.Revision != ru {
		t.Fatalf("update event = %+v, want p.b=5 at revision %d", e, ru)
	}

	if err := s.Delete(ctx, "p.a", 0); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	e = next(t, ch)
	if e.Key != "p.a" || e.Value != nil || e.Revision <= ru {
		t.Fatalf("delete event = %+v, want p.a with nil value and revision > %d", e, ru)
	}
}

func testWatchEmpty(t *testing.T, s kv.Store) {
	ch, err := s.Watch(t.Context(), "")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if e := next(t, ch); e.Key != "" {
		t.Fatalf("first entry on an empty store = %+v, want the marker", e)
	}
	rev := mustPut(t, s, "first", "v")
	if e := next(t, ch); e.Key != "first" || string(e.Value) != "v" || e.Revision != rev {
		t.Fatalf("live update = %+v, want first=v at revision %d", e, rev)
	}
}

func testWatchUpdateAtDeletionRevision(t *testing.T, s kv.Store) {
	ctx := t.Context()
	ch, err := s.Watch(ctx, "lease.")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	waitMarker(t, ch)
	mustPut(t, s, "lease.l", "held")
	next(t, ch)
	if err := s.Delete(ctx, "lease.l", 0); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	del := next(t, ch)
	if del.Value != nil {
		t.Fatalf("delete event = %+v, want nil value", del)
	}
	// A deletion is a write: CAS against its revision re-creates the key,
	// and a second writer holding the same revision then conflicts.
	rev, err := s.Update(ctx, "lease.l", []byte("again"), del.Revision)
	if err != nil {
		t.Fatalf("Update at deletion revision %d: %v", del.Revision, err)
	}
	if _, err := s.Update(ctx, "lease.l", []byte("late"), del.Revision); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("second Update at deletion revision error = %v, want ErrConflict", err)
	}
	if got := mustGet(t, s, "lease.l"); string(got.Value) != "again" || got.Revision != rev {
		t.Fatalf("Get = %+v, want again at revision %d", got, rev)
	}
}

func testWatchValuesNotAliased(t *testing.T, s kv.Store) {
	ctx := t.Context()
	mustPut(t, s, "w.init", "abc")
	a, err := s.Watch(ctx, "w.")
	if err != nil {
		t.Fatalf("Watch a: %v", err)
	}
	b, err := s.Watch(ctx, "w.")
	if err != nil {
		t.Fatalf("Watch b: %v", err)
	}
	ea := next(t, a)
	ea.Value[0] = 'X'
	if eb := next(t, b); string(eb.Value) != "abc" {
		t.Fatalf("watcher b saw watcher a's write: %q", eb.Value)
	}
	waitMarker(t, a)
	waitMarker(t, b)

	mustPut(t, s, "w.live", "def")
	ea = next(t, a)
	ea.Value[0] = 'X'
	if eb := next(t, b); string(eb.Value) != "def" {
		t.Fatalf("watcher b saw watcher a's write: %q", eb.Value)
	}
	for _, k := range []string{"w.init", "w.live"} {
		if got := mustGet(t, s, k); got.Value[0] == 'X' {
			t.Fatalf("a watcher's write reached the store: %s = %q", k, got.Value)
		}
	}
}

func testWatchCancel(t *testing.T, s kv.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	mustPut(t, s, "c.a", "1")
	ch, err := s.Watch(ctx, "c.")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	waitMarker(t, ch)
	cancel()
	// Writes after the cancel may or may not arrive; the channel must close.
	mustPut(t, s, "c.b", "2")
	deadline := time.After(WaitTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("watch channel still open %v after its context was cancelled", WaitTimeout)
		}
	}
}

// testWatchSlowReceiver writes without reading the watch: writers must not
// block. Reading afterwards yields changes in revision order, each one the
// value really written at that revision, ending with every key's last write.
// Intermediate values of a key overwritten meanwhile may be skipped.
func testWatchSlowReceiver(t *testing.T, s kv.Store) {
	const writes, keys = 1000, 10
	ctx := t.Context()
	ch, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	waitMarker(t, ch)
	written := make(map[uint64]string, writes) // revision -> value
	last := make(map[string]uint64, keys)      // key -> last revision
	for i := range writes {
		key, val := "k."+strconv.Itoa(i%keys), strconv.Itoa(i)
		rev, err := s.Put(ctx, key, []byte(val))
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		written[rev], last[key] = val, rev
	}
	var prev uint64
	for len(last) > 0 {
		e := next(t, ch)
		if e.Revision <= prev || written[e.Revision] != string(e.Value) {
			t.Fatalf("entry %+v after revision %d: want increasing revisions, each with the value written at it", e, prev)
		}
		prev = e.Revision
		if last[e.Key] == e.Revision {
			delete(last, e.Key)
		}
	}
}

func testConcurrentCAS(t *testing.T, s kv.Store) {
	const workers, increments = 8, 50
	ctx := t.Context()
	if _, err := s.Create(ctx, "counter", []byte{0, 0}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	errs := make(chan error, workers)
	for range workers {
		go func() {
			errs <- increment(ctx, s, "counter", increments)
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := mustGet(t, s, "counter")
	if n := int(got.Value[0])<<8 | int(got.Value[1]); n != workers*increments {
		t.Fatalf("counter = %d, want %d: a compare-and-set lost an update", n, workers*increments)
	}
}

// increment adds 1 to the big-endian uint16 at key n times with a
// read/compare-and-set loop, retrying on ErrConflict.
func increment(ctx context.Context, s kv.Store, key string, n int) error {
	for range n {
		for {
			e, err := s.Get(ctx, key)
			if err != nil {
				return err
			}
			v := int(e.Value[0])<<8 | int(e.Value[1]) + 1
			_, err = s.Update(ctx, key, []byte{byte(v >> 8), byte(v)}, e.Revision)
			if err == nil {
				break
			}
			if !errors.Is(err, kv.ErrConflict) {
				return err
			}
		}
	}
	return nil
}

// next receives one entry, failing the test if the channel closes or
// nothing arrives within WaitTimeout.
func next(t *testing.T, ch <-chan kv.Entry) kv.Entry {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed early")
		}
		return e
	case <-time.After(WaitTimeout):
		t.Fatalf("no watch entry within %v", WaitTimeout)
	}
	panic("unreachable")
}

// waitMarker receives up to and including the end-of-initial-values marker.
func waitMarker(t *testing.T, ch <-chan kv.Entry) []kv.Entry {
	t.Helper()
	var initial []kv.Entry
	for {
		e := next(t, ch)
		if e.Key == "" {
			return initial
		}
		initial = append(initial, e)
	}
}
