package jskv_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowstone-go/flowstone/kv/jskv"
)

// A Store opened while its bucket answered direct gets keeps reading once
// direct gets are turned off (as the process that creates a replicated
// bucket does just after creating it, while others may open it).
func TestStoreSurvivesDirectGetsTurnedOff(t *testing.T) {
	js := newJetStream(t)
	ctx := context.Background()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "flipped"}); err != nil {
		t.Fatal(err)
	}
	s, err := jskv.Open(ctx, js, "flipped")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "KV_flipped")
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.AllowDirect = false
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Get(ctx, "a"); err != nil || string(e.Value) != "1" {
		t.Fatalf("get after direct gets went off: %+v, %v", e, err)
	}
	got, err := s.Present(ctx, []string{"a", "b"})
	if err != nil || !got["a"] || got["b"] {
		t.Fatalf("present after direct gets went off: %v, %v", got, err)
	}
}
