package jsstore

import (
	"bytes"
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// A Store opened while its bucket answered direct gets keeps reading and
// writing once direct gets are turned off (as the process that creates a
// replicated bucket does just after creating it, while others may open
// it): its handle is bound again instead of asking a subject nobody
// answers any more.
func TestStoreSurvivesDirectGetsTurnedOff(t *testing.T) {
	t.Parallel()
	js := newJetStream(t)
	ctx := context.Background()
	if _, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "flipped"}); err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, js, "flipped")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("before the flip")
	if _, err := s.Put(ctx, "a", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := leaderReads(ctx, js, streamName("flipped")); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(ctx, s, "a"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get after direct gets went off: %q, %v", got, err)
	}
	if _, err := s.Put(ctx, "b", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("put after direct gets went off: %v", err)
	}
	if err := s.Delete(ctx, "b"); err != nil {
		t.Fatalf("delete after direct gets went off: %v", err)
	}
}
