package jskv_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/kv/jskv"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// On a three-node cluster a bucket New creates at R3 answers reads from its
// leader, and a Get right after a Put sees it, even through a follower.
// NATS documents direct gets (any replica answers, from what it has
// applied) as not reading one's own writes; this machine did not catch a
// stale KV read in a few thousand, but did catch stale object metadata
// the same way (see jsstore's TestReplicatedReadsItsOwnWrites).
func TestReplicatedReadsItsOwnWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := natstest.NewCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js := clusterJS(t, c.URLs())
	created, err := jskv.New(ctx, js, "replicated", jskv.WithReplicas(3))
	if err != nil {
		t.Fatal(err)
	}
	created.Close()
	// Talk to a follower: a direct get is answered by the replica nearest
	// the client, which is the follower the write may not have reached.
	follower := (c.StreamLeader("KV_replicated") + 1) % c.Size()
	js = clusterJS(t, c.Server(follower).ClientURL())
	s, err := jskv.New(ctx, js, "replicated", jskv.WithReplicas(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	stream, err := js.Stream(ctx, "KV_replicated")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := stream.CachedInfo().Config; cfg.Replicas != 3 || cfg.AllowDirect {
		t.Fatalf("bucket created with %d replicas, direct gets %v; want 3, off", cfg.Replicas, cfg.AllowDirect)
	}

	const writers, keys = 8, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range keys {
				key := fmt.Sprintf("w%d.k%d", w, i)
				for v := range 2 { // a create, then an overwrite
					value := []byte(fmt.Sprintf("%s=%d", key, v))
					rev, err := s.Put(ctx, key, value)
					if err != nil {
						t.Errorf("put %s: %v", key, err)
						return
					}
					e, err := s.Get(ctx, key)
					if err != nil || e.Revision != rev || !bytes.Equal(e.Value, value) {
						t.Errorf("get %s right after its put at revision %d: %q at %d, %v", key, rev, e.Value, e.Revision, err)
					}
				}
			}
		})
	}
	wg.Wait()
}

func clusterJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return js
}
