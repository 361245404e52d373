package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/objectstore"
)

func testCorruption(t *testing.T, s objectstore.Store) {
	c, ok := s.(Corrupter)
	if !ok {
		t.Skipf("%T does not implement storetest.Corrupter", s)
	}
	ctx := context.Background()
	data := payload(11, 200<<10)
	put(t, s, "rotten/object", data)
	put(t, s, "rotten/neighbour", data)
	if err := c.Corrupt(ctx, "rotten/object"); err != nil {
		t.Fatalf("Corrupt: %v", err)
	}
	got, _, err := objectstore.ReadAll(ctx, s, "rotten/object")
	if !errors.Is(err, objectstore.ErrChecksum) || transient.Is(err) {
		t.Errorf("Get of a corrupted object: %d bytes, error = %v, want ErrChecksum, not transient", len(got), err)
	}
	checkGet(t, s, "rotten/neighbour", data)
}
