package sensors_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/fakeclock"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/internal/s3test"
	"github.com/flowstone-go/flowstone/sensors"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const passWait = 20 * time.Second

// loads records which partitions the load asset ran.
type loads struct {
	mu   sync.Mutex
	seen []string
}

func (l *loads) add(s string) {
	l.mu.Lock()
	l.seen = append(l.seen, s)
	l.mu.Unlock()
}

func (l *loads) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.seen)
	slices.Sort(out)
	return out
}

// runSensor runs pipeline ingest (load, partitioned by day) with def on
// an embedded engine, evaluates it at start and after each step in
// steps, calling between[i] before step i; it returns what load ran.
func runSensor(t *testing.T, def flowstone.SensorDef, between ...func()) (*loads, flowstone.SensorStatus) {
	t.Helper()
	l := &loads{}
	p := flowstone.MustPipeline("ingest", flowstone.Asset("load", func(c *flowstone.Context) (any, error) {
		l.add(c.Partition())
		return c.Partition(), nil
	}, flowstone.PartitionedBy(flowstone.Daily))).MustAutomate(def)
	e := flowstone.MustEngine(flowstone.EngineConfig{})
	defer e.Close()
	clock := fakeclock.New(time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC))
	bridge.SetClock(e, clock)
	if err := e.StartAutomation(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if !clock.WaitForWaiters(1, passWait) {
		t.Fatal("no first pass")
	}
	for _, f := range between {
		f()
		clock.Advance(time.Minute)
		if !clock.WaitForWaiters(1, passWait) {
			t.Fatal("no pass")
		}
	}
	list, err := e.Sensors(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	e.Close() // the runs started are done
	return l, list[0]
}

// day reads the date a key or message begins with.
func day(key string) (string, bool) {
	key = key[strings.LastIndexByte(key, '/')+1:]
	if len(key) < 10 {
		return "", false
	}
	return key[:10], true
}

// TestObjectsInAJetStreamObjectStore: new objects under the prefix run
// once each, in key order, a batch per evaluation; others are left out.
func TestObjectsInAJetStreamObjectStore(t *testing.T) {
	srv := natstest.Server(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "landing"})
	if err != nil {
		t.Fatal(err)
	}
	put := func(names ...string) func() {
		return func() {
			for _, n := range names {
				if _, err := store.PutBytes(ctx, n, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	def := sensors.Objects("landing", time.Minute, sensors.ObjectsConfig{Lister: sensors.ObjectStoreLister(store), Prefix: "orders/",
		Asset: "load", Partition: day, Batch: 2})
	l, st := runSensor(t, def,
		put("orders/2025-03-01.csv", "other/2025-03-09.csv"),
		put("orders/2025-03-02.csv", "orders/2025-03-03.csv", "orders/2025-03-04.csv"),
		func() {}, // the batch left one
		func() {}, // nothing new
	)
	if got, want := l.list(), []string{"2025-03-01", "2025-03-02", "2025-03-03", "2025-03-04"}; !slices.Equal(got, want) {
		t.Fatalf("load ran %v, want %v", got, want)
	}
	if st.Cursor != "orders/2025-03-04.csv" || st.Failures != 0 {
		t.Fatalf("sensor: %+v", st)
	}
}

// TestObjectsInS3: the same over an S3 bucket, listed from the cursor.
func TestObjectsInS3(t *testing.T) {
	srv := s3test.Start(t)
	client, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := client.MakeBucket(ctx, "landing", minio.MakeBucketOptions{Region: srv.Region}); err != nil {
		t.Fatal(err)
	}
	put := func(names ...string) func() {
		return func() {
			for _, n := range names {
				if _, err := client.PutObject(ctx, "landing", n, bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	def := sensors.Objects("landing", time.Minute, sensors.ObjectsConfig{Lister: sensors.S3Lister(client, "landing"), Prefix: "orders/",
		Asset: "load", Partition: day})
	l, st := runSensor(t, def,
		put("orders/2025-03-01.csv", "other/2025-03-09.csv"),
		put("orders/2025-03-02.csv"),
	)
	if got, want := l.list(), []string{"2025-03-01", "2025-03-02"}; !slices.Equal(got, want) {
		t.Fatalf("load ran %v, want %v", got, want)
	}
	if st.Cursor != "orders/2025-03-02.csv" {
		t.Fatalf("sensor: %+v", st)
	}
}

// TestStream: each new message on the subject runs once; the cursor is
// the stream sequence.
func TestStream(t *testing.T) {
	srv := natstest.Server(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ARRIVALS", Subjects: []string{"arrivals.>"}}); err != nil {
		t.Fatal(err)
	}
	pub := func(subject string, days ...string) func() {
		return func() {
			for _, d := range days {
				if _, err := js.Publish(ctx, subject, []byte(d)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	def := sensors.Stream("arrivals", time.Minute, sensors.StreamConfig{JetStream: js, Stream: "ARRIVALS", Subject: "arrivals.orders",
		Asset: "load", Partition: func(_ string, data []byte) (string, bool) { return string(data), true }, Wait: 200 * time.Millisecond})
	l, st := runSensor(t, def,
		pub("arrivals.orders", "2025-03-01", "2025-03-02"),
		pub("arrivals.refunds", "2025-03-09"),
		pub("arrivals.orders", "2025-03-03"),
	)
	if got, want := l.list(), []string{"2025-03-01", "2025-03-02", "2025-03-03"}; !slices.Equal(got, want) {
		t.Fatalf("load ran %v, want %v", got, want)
	}
	if st.Cursor != "4" || st.Failures != 0 {
		t.Fatalf("sensor: %+v", st)
	}
}
