package jsstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowstone-go/flowstone/internal/natstest"
)

// On a three-node cluster at R3, every object can be read back at once
// after its Put, by the writer, whole. Two things used to break that, each
// about one read in a hundred: a metadata read answered by a follower that
// had not applied the Put yet (not found), and a reader's first pull lost
// on its way to a consumer on another node (the read hung until its
// deadline).
func TestReplicatedReadsItsOwnWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := natstest.NewCluster(t, 3)
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := New(ctx, js, "replicated", WithReplicas(3))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.stream.CachedInfo().Config; cfg.Replicas != 3 || cfg.AllowDirect {
		t.Fatalf("bucket created with %d replicas, direct gets %v; want 3, off", cfg.Replicas, cfg.AllowDirect)
	}

	const writers, objects = 8, 30
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range objects {
				key := fmt.Sprintf("w%d/o%d", w, i)
				data := bytes.Repeat([]byte{byte(w), byte(i)}, 1500)
				if _, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
					t.Errorf("put %s: %v", key, err)
					return
				}
				// A lost pull would wait for this deadline, far beyond a
				// heartbeat's recovery.
				rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
				got, err := readAll(rctx, s, key)
				rcancel()
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("read %s right after its put: %d bytes, %v", key, len(got), err)
				}
			}
		})
	}
	wg.Wait()
}

func readAll(ctx context.Context, s *Store, key string) ([]byte, error) {
	r, _, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
