package jskv

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// leaderReads turns off direct gets on stream, so that every read of a key
// is answered by the stream's leader. nats.go creates KV buckets with
// direct gets on, which any replica answers, a follower from what it has
// applied so far: on a replicated bucket a read right after a write, even
// by the writer, may then miss the write (NATS documents KV reads as not
// reading one's own writes for this reason; the same on an object store,
// measured on a three-node cluster: a few objects in a hundred not found
// just after their Put).
// Leader reads see every acknowledged write. A stream of one replica has
// no follower, so New leaves its direct gets on. Handles bound to the
// stream before keep the setting they were bound with: bind again after.
func leaderReads(ctx context.Context, js jetstream.JetStream, stream string) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("jskv: leader reads on %s: %w", stream, err)
	}
	cfg := s.CachedInfo().Config
	if !cfg.AllowDirect {
		return nil
	}
	cfg.AllowDirect = false
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("jskv: leader reads on %s: %w", stream, err)
	}
	return nil
}
