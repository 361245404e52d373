package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

// backfillOut is what fsctl backfill prints with --json.
type backfillOut struct {
	ID         string                `json:"id"`
	Succeeded  int                   `json:"succeeded"`
	Failed     int                   `json:"failed"`
	Skipped    int                   `json:"skipped"`
	NotStarted int                   `json:"not_started"`
	Errors     map[string]*jsonError `json:"errors"`
}

// TestBackfillSurvivesCoordinatorSIGKILL: with two coordinators and three
// workers as processes, the coordinator driving a backfill is SIGKILLed
// mid-way and restarted with the same --id. The restarted one adopts the
// backfill, the fsctl backfill that was waiting (its status requests
// answered by the other coordinator meanwhile) exits 0 with every
// partition succeeded, no record is left pending or running, and fsctl
// backfill --follow ID afterwards prints the same counts.
func TestBackfillSurvivesCoordinatorSIGKILL(t *testing.T) {
	f := newFleet(t)
	coords := map[string]*proc{"c1": f.coordinator("c1"), "c2": f.coordinator("c2")}
	for _, id := range []string{"w1", "w2", "w3"} {
		f.worker(id, "--source-latency", "150ms")
	}
	f.waitReady(3)

	const days = 200
	from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, days-1)
	bf := f.fsctlProc("fsctl backfill", "backfill", "daily_sales", "revenue",
		"--partitions", from.Format(time.DateOnly)+".."+to.Format(time.DateOnly), "--parallel", "8")

	// The backfill's record says who drives it and how far it got.
	runs := f.kv(protocol.RunsBucket)
	var rec protocol.BackfillRecord
	f.eventually("the backfill to be a quarter done", func() (bool, string) {
		if !bf.running() {
			t.Fatalf("fsctl backfill ended before the kill: %s", bf.result(t))
		}
		recs := backfillRecords(t, runs)
		if len(recs) != 1 {
			return false, "no backfill record yet"
		}
		rec = recs[0]
		return rec.Succeeded >= days/4, "not yet"
	})
	if rec.Succeeded > days*3/4 {
		t.Fatalf("the backfill was %d/%d done before the kill: too fast to prove anything", rec.Succeeded, days)
	}
	driver := rec.Coordinator
	coords[driver].kill(t)
	restarted := f.coordinator(driver)
	adopted := restarted.waitLog(t, "backfill_adopted")
	if adopted["backfill_id"] != rec.ID {
		t.Errorf("adopted %v, want backfill %s", adopted, rec.ID)
	}

	r := bf.result(t)
	if r.code != 0 {
		t.Fatalf("fsctl backfill across the kill: %s", r)
	}
	var stats backfillOut
	decode(t, r, &stats)
	if stats.ID != rec.ID || stats.Succeeded != days || stats.Failed+stats.Skipped+stats.NotStarted != 0 {
		t.Errorf("fsctl backfill across the kill = %+v, want %d succeeded of backfill %s", stats, days, rec.ID)
	}
	t.Logf("killed %s with %d of %d partitions counted", driver, rec.Succeeded, days)

	// Every record is completed; none was left pending by the dead driver.
	mats := f.kv(protocol.MaterializationsBucket)
	completed := 0
	for _, m := range materializations(t, mats, "daily_sales") {
		if m.State != flowstone.StateCompleted {
			t.Errorf("%s [%s] is %s (run %s, worker %q)", m.Asset, m.Partition, m.State, m.RunID, m.Worker)
		}
		if m.Asset == "revenue" {
			completed++
		}
	}
	if completed != days {
		t.Errorf("%d completed revenue records, want %d", completed, days)
	}
	if got := backfillRecords(t, runs); len(got) != 1 || got[0].State != protocol.StateCompleted {
		t.Errorf("backfill records after the end: %+v", got)
	}

	// Re-attaching after the fact prints the final counts.
	var again backfillOut
	f.ok(&again, "backfill", "--follow", rec.ID)
	if again.ID != rec.ID || again.Succeeded != days || again.Failed+again.Skipped+again.NotStarted != 0 {
		t.Errorf("fsctl backfill --follow = %+v, want %d succeeded", again, days)
	}
}

// kv opens one of the fleet's buckets.
func (f *fleet) kv(bucket string) jetstream.KeyValue {
	f.t.Helper()
	js, err := jetstream.New(f.nc)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var b jetstream.KeyValue
	f.eventually("bucket "+bucket, func() (bool, string) {
		b, err = js.KeyValue(ctx, bucket)
		return err == nil, errString(err)
	})
	return b
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// backfillRecords reads every backfill record in the runs bucket.
func backfillRecords(t *testing.T, runs jetstream.KeyValue) []protocol.BackfillRecord {
	t.Helper()
	var out []protocol.BackfillRecord
	for _, e := range entries(t, runs, protocol.BackfillPrefix) {
		rec, perr := protocol.DecodeBackfillRecord(e.Value())
		if perr != nil {
			t.Fatalf("backfill record %s: %v", e.Key(), perr)
		}
		out = append(out, rec)
	}
	return out
}

// materializations reads every materialization record of a pipeline.
func materializations(t *testing.T, mats jetstream.KeyValue, pipeline string) []*flowstone.Materialization {
	t.Helper()
	var out []*flowstone.Materialization
	for _, e := range entries(t, mats, "mat."+pipeline+".") {
		m, err := bridge.UnmarshalRecord(e.Value())
		if err != nil {
			t.Fatalf("record %s: %v", e.Key(), err)
		}
		out = append(out, m)
	}
	return out
}

// entries reads the current entries of the keys below prefix (a prefix
// ending in a dot, or a full first token followed by one).
func entries(t *testing.T, b jetstream.KeyValue, prefix string) []jetstream.KeyValueEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	filter := prefix + ">"
	w, err := b.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return out
			}
			if strings.HasPrefix(e.Key(), prefix) {
				out = append(out, e)
			}
		case <-ctx.Done():
			t.Fatal(errors.New("reading bucket " + b.Bucket() + ": " + ctx.Err().Error()))
		}
	}
}
