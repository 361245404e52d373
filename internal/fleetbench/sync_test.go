package fleetbench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/kv/jskv"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// syncWriters is how many writers the concurrent variants run, about what a
// busy coordinator and its workers have in flight.
const syncWriters = 64

// BenchmarkSyncInterval measures what fsyncing every write costs the
// operations the fleet does most, on an embedded server with a file store:
// JetStream's default (sync_interval 2 minutes: writes are acknowledged
// once in the page cache) against sync_interval: always (SyncAlways: each
// write is fsynced before its acknowledgement). kv_update is a
// compare-and-set Update of a record, as the record writes of the fleet
// are; publish_ack is a 128-byte publish to a file stream awaited for its
// acknowledgement, as tasks and completions are. "serial" is one writer
// waiting for each write, "parallel" syncWriters writers at once (the
// server then syncs several writes together). See docs/REPLICATION.md.
func BenchmarkSyncInterval(b *testing.B) {
	for _, mode := range []struct {
		name   string
		always bool
	}{{"default", false}, {"always", true}} {
		for _, op := range []struct {
			name string
			run  func(b *testing.B, js jetstream.JetStream, writers int)
		}{{"kv_update", benchKVUpdate}, {"publish_ack", benchPublishAck}} {
			for _, writers := range []int{1, syncWriters} {
				shape := "serial"
				if writers > 1 {
					shape = fmt.Sprintf("parallel%d", writers)
				}
				b.Run(mode.name+"/"+op.name+"/"+shape, func(b *testing.B) {
					srv := natstest.ServerWith(b, b.TempDir(), func(o *server.Options) { o.SyncAlways = mode.always })
					js, err := jetstream.New(connect(b, srv, "sync"))
					if err != nil {
						b.Fatal(err)
					}
					op.run(b, js, writers)
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				})
			}
		}
	}
}

// spread runs b.N calls of op over writers goroutines, each with its own
// index, and fails b on the first error.
func spread(b *testing.B, writers int, op func(w int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	for w := range writers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(w); err != nil {
					once.Do(func() { b.Error(err) })
					return
				}
			}
		})
	}
	wg.Wait()
}

func benchKVUpdate(b *testing.B, js jetstream.JetStream, writers int) {
	ctx := context.Background()
	store, err := jskv.New(ctx, js, "sync_bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(store.Close)
	value := make([]byte, 256) // about a materialization record
	revs := make([]uint64, writers)
	for w := range writers {
		if revs[w], err = store.Create(ctx, fmt.Sprintf("record.%d", w), value); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	spread(b, writers, func(w int) error {
		rev, err := store.Update(ctx, fmt.Sprintf("record.%d", w), value, revs[w])
		revs[w] = rev
		return err
	})
}

func benchPublishAck(b *testing.B, js jetstream.JetStream, writers int) {
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SYNC_BENCH", Subjects: []string{"sync.>"},
		Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, rawMsgBytes)
	b.ResetTimer()
	spread(b, writers, func(w int) error {
		_, err := js.Publish(ctx, fmt.Sprintf("sync.%d", w), payload)
		return err
	})
}
