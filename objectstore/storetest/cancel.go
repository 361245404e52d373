package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/objectstore"
)

func testContextCanceled(t *testing.T, s objectstore.Store) {
	put(t, s, "present", []byte("here"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := s.Put(ctx, "new", strings.NewReader("data"), 4)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: error = %v, want context.Canceled", err)
	}
	notTransient(t, "Put", err)
	if _, err := s.Put(ctx, "present", strings.NewReader("data"), 4); !errors.Is(err, context.Canceled) {
		t.Errorf("Put over an object with a canceled context: error = %v, want context.Canceled", err)
	}
	rc, _, err := s.Get(ctx, "present")
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context: error = %v, want context.Canceled", err)
	}
	if _, err := s.Stat(ctx, "present"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a canceled context: error = %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, "present"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a canceled context: error = %v, want context.Canceled", err)
	}
	checkNotFound(t, s, "new")
	checkGet(t, s, "present", []byte("here"))
}

// notTransient fails t if err, from a call whose context the caller
// canceled, claims to be worth retrying: the caller gave up.
func notTransient(t *testing.T, op string, err error) {
	t.Helper()
	if transient.Is(err) {
		t.Errorf("%s with a canceled context: %v is transient; the caller's cancellation never is", op, err)
	}
}

// testCanceledPut cancels a Put, or breaks its reader, halfway through: the
// key must keep its previous object, and a new key must stay absent.
func testCanceledPut(t *testing.T, s objectstore.Store) {
	const size, cancelAfter = 3 << 20, 1 << 20
	old := []byte("previous")
	put(t, s, "overwritten", old)
	for _, key := range []string{"overwritten", "created"} {
		ctx, cancel := context.WithCancel(context.Background())
		r := &cancelingReader{r: stream(9, size), after: cancelAfter, cancel: cancel}
		_, err := s.Put(ctx, key, r, -1)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put(%q) canceled after %d bytes: error = %v, want context.Canceled", key, r.n, err)
		}
		notTransient(t, "Put canceled halfway", err)

		broken := &failingReader{r: stream(9, size), err: errSourceBroke}
		if _, err := s.Put(context.Background(), key, broken, -1); !errors.Is(err, errSourceBroke) {
			t.Errorf("Put(%q) from a reader that fails at the end: error = %v, want the reader's error", key, err)
		}
	}
	checkGet(t, s, "overwritten", old)
	checkNotFound(t, s, "created")
}
