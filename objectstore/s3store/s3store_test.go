package s3store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/flowstone-go/flowstone/internal/s3test"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/storetest"
)

var bucketSeq atomic.Int64

// newStore opens a store on srv in a bucket of its own; cfg's Endpoint,
// credentials and, if empty, Bucket are filled in.
func newStore(t testing.TB, srv *s3test.Server, cfg Config) *Store {
	t.Helper()
	cfg.Endpoint, cfg.AccessKey, cfg.SecretKey, cfg.Region = srv.Endpoint, srv.AccessKey, srv.SecretKey, srv.Region
	if cfg.Bucket == "" {
		cfg.Bucket = fmt.Sprintf("test-%d", bucketSeq.Add(1))
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// corruptible rewrites an object with one byte flipped and its old
// checksum metadata, as bit rot on the server would leave it.
type corruptible struct{ *Store }

func (c corruptible) Corrupt(ctx context.Context, key string) error {
	name, err := c.objectName(key)
	if err != nil {
		return err
	}
	body, oi, _, err := c.core.GetObject(ctx, c.cfg.Bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return err
	}
	data, err := io.ReadAll(body)
	body.Close()
	if err != nil {
		return err
	}
	data[0] ^= 0xff
	_, err = c.client.PutObject(ctx, c.cfg.Bucket, name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{UserMetadata: oi.UserMetadata})
	return err
}

func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	storetest.Run(t, func(t *testing.T) objectstore.Store {
		// The smallest part size sends the suite's larger objects through
		// the staged multipart path.
		return corruptible{newStore(t, srv, Config{PartSize: PartSizeMin})}
	})
}

func BenchmarkS3(b *testing.B) {
	srv := s3test.Start(b)
	storetest.Benchmark(b, func(b *testing.B) objectstore.Store { return newStore(b, srv, Config{}) })
}
