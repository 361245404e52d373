package readers_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/internal/s3test"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/readers"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/nats-io/nats.go/jetstream"
)

// scatterOver runs a scatter fed by open, whose items echo their key, and
// returns the gathered value.
func scatterOver(t *testing.T, open func(c *flowstone.Context) (flowstone.ItemReader, error)) map[string]string {
	t.Helper()
	e := flowstone.MustEngine(flowstone.EngineConfig{})
	t.Cleanup(func() { e.Close() })
	p := flowstone.MustPipeline("p", flowstone.Asset("each", func(c *flowstone.Context) (any, error) {
		return "seen " + c.ScatterItem(), nil
	}, flowstone.ScatterFrom(open, flowstone.ScatterConfig{Parallel: 64})))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := e.Run(ctx, p, "each")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := res.Decode(&got); err != nil {
		t.Fatal(err)
	}
	st, err := e.Status(ctx, p, "each")
	if err != nil || st.Scatter == nil || st.Scatter.Total != len(got) || st.Scatter.Completed != len(got) {
		t.Fatalf("status = %+v, %v", st, err)
	}
	return got
}

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("k%04d", i)
	}
	return out
}

func wantAll(t *testing.T, got map[string]string, items []string) {
	t.Helper()
	if len(got) != len(items) {
		t.Fatalf("%d items ran, want %d", len(got), len(items))
	}
	for _, it := range items {
		if got[it] != "seen "+it {
			t.Fatalf("item %s: %q", it, got[it])
		}
	}
}

func TestSliceFeedsEveryItem(t *testing.T) {
	items := names(1000)
	got := scatterOver(t, func(*flowstone.Context) (flowstone.ItemReader, error) { return readers.Slice(items), nil })
	wantAll(t, got, items)
}

func TestKeysReadsAStoresKeysUnderAPrefix(t *testing.T) {
	store := kv.NewMemory()
	ctx := context.Background()
	for _, k := range names(300) {
		if _, err := store.Put(ctx, "orders."+k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Put(ctx, "other.k9999", []byte("x")); err != nil {
		t.Fatal(err)
	}
	got := scatterOver(t, func(*flowstone.Context) (flowstone.ItemReader, error) { return readers.Keys(store, "orders."), nil })
	wantAll(t, got, names(300))
}

func TestStreamReadsAStreamsMessages(t *testing.T) {
	srv := natstest.Server(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.>"}}); err != nil {
		t.Fatal(err)
	}
	items := names(500)
	for i, it := range items {
		subject := "work.items"
		if i%2 == 0 {
			// Another subject in between: only work.items is read.
			if _, err := js.Publish(ctx, "work.other", []byte("skip-"+it)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := js.Publish(ctx, subject, []byte(it)); err != nil {
			t.Fatal(err)
		}
	}
	got := scatterOver(t, func(*flowstone.Context) (flowstone.ItemReader, error) {
		return readers.Stream(js, "WORK", "work.items"), nil
	})
	wantAll(t, got, items)
}

func TestS3PrefixReadsObjectKeys(t *testing.T) {
	s3 := s3test.Start(t)
	client, err := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Region: s3.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := client.MakeBucket(ctx, "landing", minio.MakeBucketOptions{Region: s3.Region}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, n := range names(120) {
		k := "in/" + n + ".csv"
		keys = append(keys, k)
		if _, err := client.PutObject(ctx, "landing", k, bytes.NewReader([]byte("a,b")), 3, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.PutObject(ctx, "landing", "out/ignored.csv", bytes.NewReader([]byte("a")), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	got := scatterOver(t, func(*flowstone.Context) (flowstone.ItemReader, error) {
		return readers.S3Prefix(client, "landing", "in/"), nil
	})
	wantAll(t, got, keys)
}
