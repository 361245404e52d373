//go:build faults

package faults

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

// revision is one write of a materialization record as the recorder read
// it from the bucket's stream.
type revision struct {
	seq      uint64
	at       time.Time // when JetStream stored it
	key      string
	deleted  bool                       // a delete or purge marker
	rec      *flowstone.Materialization // nil when deleted or unreadable
	queuedBy string                     // the coordinator that queued a pending record
}

// recorder keeps every revision of the materializations bucket, read live
// from the bucket's stream (history 1 keeps only the last one per key, so
// the harness must read them as they come). It shows how each record
// changed: who executed what, and whether a completed value was ever
// replaced.
type recorder struct {
	cc jetstream.ConsumeContext

	mu         sync.Mutex
	revs       []revision
	latest     map[string]int // index in revs of each key's last revision
	lastSeq    uint64
	missed     uint64 // stream sequences never seen: revisions replaced before the recorder read them
	lastChange time.Time
	errs       int
}

// startRecorder starts reading the bucket's stream from its first message;
// it stops when the test ends.
func startRecorder(t *testing.T, js jetstream.JetStream) *recorder {
	t.Helper()
	r := &recorder{latest: map[string]int{}, lastChange: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), readyWait)
	defer cancel()
	// An ordered consumer re-creates itself after a server restart and
	// resumes after the last sequence it delivered.
	cons, err := js.OrderedConsumer(ctx, "KV_"+protocol.MaterializationsBucket, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatalf("recorder: consumer on the materializations bucket: %v", err)
	}
	r.cc, err = cons.Consume(r.add, jetstream.ConsumeErrHandler(func(jetstream.ConsumeContext, error) {
		r.mu.Lock()
		r.errs++
		r.mu.Unlock()
	}))
	if err != nil {
		t.Fatalf("recorder: consume the materializations bucket: %v", err)
	}
	t.Cleanup(r.stop)
	return r
}

// stop ends the consumer and waits for its last callback.
func (r *recorder) stop() {
	r.cc.Stop()
	<-r.cc.Closed()
}

const kvPrefix = "$KV." + protocol.MaterializationsBucket + "."

func (r *recorder) add(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	rv := revision{seq: md.Sequence.Stream, at: md.Timestamp, key: strings.TrimPrefix(m.Subject(), kvPrefix)}
	switch m.Headers().Get("KV-Operation") {
	case "DEL", "PURGE":
		rv.deleted = true
	default:
		if rec, err := bridge.UnmarshalRecord(m.Data()); err == nil {
			rv.rec = rec
			rv.queuedBy = queuedBy(rec, m.Data())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastSeq > 0 && rv.seq > r.lastSeq+1 {
		r.missed += rv.seq - r.lastSeq - 1
	}
	r.lastSeq = max(r.lastSeq, rv.seq)
	r.revs = append(r.revs, rv)
	r.latest[rv.key] = len(r.revs) - 1
	r.lastChange = time.Now()
}

// queuedBy is the coordinator that queued a pending record: today a
// "queued-by-<id>" prefix of Worker, or a queued_by field if the record
// grows one.
func queuedBy(rec *flowstone.Materialization, raw []byte) string {
	if rec.State != flowstone.StatePending {
		return ""
	}
	if id, ok := strings.CutPrefix(rec.Worker, "queued-by-"); ok {
		return id
	}
	var m struct {
		QueuedBy string `json:"queued_by"`
	}
	if json.Unmarshal(raw, &m) == nil {
		return m.QueuedBy
	}
	return ""
}

// states counts the latest state of each of keys ("missing" if never
// written, "deleted" if deleted).
func (r *recorder) states(keys []string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, k := range keys {
		i, ok := r.latest[k]
		if !ok {
			out["missing"]++
			continue
		}
		switch rv := r.revs[i]; {
		case rv.deleted || rv.rec == nil:
			out["deleted"]++
		default:
			out[string(rv.rec.State)]++
		}
	}
	return out
}

// quietFor is how long no revision has arrived.
func (r *recorder) quietFor() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Since(r.lastChange)
}

// driver names the coordinator that queued most of the records queued in
// the last window, "" if none did: the one driving the backfill.
func (r *recorder) driver(window time.Duration) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	count := map[string]int{}
	since := time.Now().Add(-window)
	for i := len(r.revs) - 1; i >= 0 && r.revs[i].at.After(since); i-- {
		if id := r.revs[i].queuedBy; id != "" {
			count[id]++
		}
	}
	best := ""
	for id, n := range count {
		if n > count[best] || n == count[best] && id < best {
			best = id
		}
	}
	return best
}

// history returns a copy of every revision read so far, and the count of
// stream sequences missed.
func (r *recorder) history() ([]revision, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]revision(nil), r.revs...), r.missed
}
