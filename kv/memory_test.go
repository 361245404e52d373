package kv_test

import (
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/kv/kvtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestMemoryConformance(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store {
		s := kv.NewMemory()
		t.Cleanup(s.Close)
		return s
	})
}

func TestMemoryCloseEndsWatchesAndCalls(t *testing.T) {
	ctx := t.Context()
	s := kv.NewMemory()
	ch, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	s.Close()
	for range ch { // Close returns after the channel is closed: no wait needed
	}
	s.Close() // idempotent
	if _, err := s.Get(ctx, "a"); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Get after Close error = %v, want ErrClosed", err)
	}
	if _, err := s.Put(ctx, "a", nil); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Put after Close error = %v, want ErrClosed", err)
	}
	if _, err := s.Create(ctx, "a", nil); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Create after Close error = %v, want ErrClosed", err)
	}
	if _, err := s.Update(ctx, "a", nil, 1); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Update after Close error = %v, want ErrClosed", err)
	}
	if err := s.Delete(ctx, "a", 0); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Delete after Close error = %v, want ErrClosed", err)
	}
	if _, err := s.Keys(ctx, ""); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Keys after Close error = %v, want ErrClosed", err)
	}
	if _, err := s.Watch(ctx, ""); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Watch after Close error = %v, want ErrClosed", err)
	}
}

// A watcher that does not receive must not block writers; it later gets
// every change in revision order.
func TestMemorySlowWatcherDoesNotBlockWriters(t *testing.T) {
	const writes = 10_000
	ctx := t.Context()
	s := kv.NewMemory()
	t.Cleanup(s.Close)
	ch, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	for i := range writes {
		if _, err := s.Put(ctx, "k."+strconv.Itoa(i%10), []byte(strconv.Itoa(i))); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	if e := <-ch; e.Key != "" {
		t.Fatalf("first entry = %+v, want the marker", e)
	}
	for i := range writes {
		e := <-ch
		if e.Revision != uint64(i+1) || string(e.Value) != strconv.Itoa(i) {
			t.Fatalf("entry %d = %+v, want revision %d value %d", i, e, i+1, i)
		}
	}
}

func TestMemoryWatchInitialValuesInKeyOrder(t *testing.T) {
	ctx := t.Context()
	s := kv.NewMemory()
	t.Cleanup(s.Close)
	for _, k := range []string{"c", "a", "b.2", "b.1"} {
		if _, err := s.Put(ctx, k, []byte(k)); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	ch, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	var got []string
	for e := <-ch; e.Key != ""; e = <-ch {
		got = append(got, e.Key)
	}
	if want := []string{"a", "b.1", "b.2", "c"}; !slices.Equal(got, want) {
		t.Fatalf("initial keys = %q, want %q", got, want)
	}
}
