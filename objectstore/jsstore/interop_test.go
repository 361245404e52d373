package jsstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/flowstone-go/flowstone/objectstore"
)

// TestInteropWithNATSClient shows that the wire layout Put writes and Get
// reads is the NATS object store's: each side reads what the other wrote.
func TestInteropWithNATSClient(t *testing.T) {
	t.Parallel()
	s := newStore(t, newJetStream(t), WithChunkSize(64<<10))
	ctx := context.Background()
	for _, size := range []int{0, 1, 64 << 10, 300<<10 + 7} {
		data := bytes.Repeat([]byte{byte(size)}, size)
		sum := sha256.Sum256(data)

		if _, err := s.Put(ctx, "ours", bytes.NewReader(data), int64(size)); err != nil {
			t.Fatal(err)
		}
		got, err := (*s.obs.Load()).GetBytes(ctx, "ours")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("nats.go reading %d bytes we wrote: %d bytes, %v", size, len(got), err)
		}

		if _, err := (*s.obs.Load()).PutBytes(ctx, "theirs", data); err != nil {
			t.Fatal(err)
		}
		got, info, err := objectstore.ReadAll(ctx, s, "theirs")
		if err != nil || !bytes.Equal(got, data) || info.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("reading %d bytes nats.go wrote: %d bytes, %+v, %v", size, len(got), info, err)
		}
	}
}
