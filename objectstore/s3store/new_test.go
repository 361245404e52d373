package s3store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/flowstone-go/flowstone/internal/s3test"
	"github.com/flowstone-go/flowstone/objectstore"
)

func TestUnreachableEndpointFailsClearly(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	cfg := Config{Endpoint: closed, Bucket: "results", AccessKey: "AKIDEXAMPLE", SecretKey: "never-shown-secret"}
	start := time.Now()
	_, err = New(context.Background(), cfg)
	t.Logf("New against a closed port failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil {
		t.Fatal("New against a closed port succeeded")
	}
	msg := err.Error()
	for _, want := range []string{closed, `"results"`, "unreachable", "Config.Endpoint"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, cfg.SecretKey) {
		t.Errorf("error reveals the secret key: %q", msg)
	}
	// Refused at once, not worn down by retries until the probe timeout.
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("New waited for its timeout instead of failing on the refused connection: %v", err)
	}
}

func TestWrongCredentialsFailClearly(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	cfg := Config{Endpoint: srv.Endpoint, Bucket: "results", AccessKey: srv.AccessKey, SecretKey: "wrong-" + srv.SecretKey}
	_, err := New(context.Background(), cfg)
	if err == nil {
		t.Fatal("New with a wrong secret succeeded")
	}
	t.Logf("New with a wrong secret: %v", err)
	msg := err.Error()
	for _, want := range []string{srv.Endpoint, `"results"`, "Config.SecretKey"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, cfg.SecretKey) {
		t.Errorf("error reveals the secret key: %q", msg)
	}
}

func TestNewCreatesBucketOnce(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	a := newStore(t, srv, Config{Bucket: "shared"})
	if _, err := a.Put(context.Background(), "k", strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
	// Opening the existing bucket keeps its objects.
	b := newStore(t, srv, Config{Bucket: "shared"})
	got, _, err := objectstore.ReadAll(context.Background(), b, "k")
	if err != nil || string(got) != "v" {
		t.Fatalf("Get through a second store = %q, %v", got, err)
	}
}

func TestPrefixSeparatesStores(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	ctx := context.Background()
	a := newStore(t, srv, Config{Bucket: "shared", Prefix: "team-a/"})
	b := newStore(t, srv, Config{Bucket: "shared", Prefix: "team-b/"})
	if _, err := a.Put(ctx, "run/out", strings.NewReader("a"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "run/out"); !errors.Is(err, objectstore.ErrNotFound) {
		t.Errorf("store with another prefix sees the object: %v", err)
	}
	root := newStore(t, srv, Config{Bucket: "shared"})
	if names := listNames(t, root, ""); len(names) != 1 || names[0] != "team-a/run/out" {
		t.Errorf("bucket holds %q, want [team-a/run/out]", names)
	}
	long := strings.Repeat("k", objectstore.MaxKeyLen)
	if _, err := a.Put(ctx, long, strings.NewReader("x"), 1); !errors.Is(err, objectstore.ErrInvalidKey) {
		t.Errorf("Put of a key that overflows S3's limit with the prefix: %v, want ErrInvalidKey", err)
	}
}

func TestObjectWithoutChecksumRejected(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	s := newStore(t, srv, Config{})
	ctx := context.Background()
	// Uploaded by some other tool, without our metadata.
	if _, err := s.client.PutObject(ctx, s.cfg.Bucket, "foreign", bytes.NewReader([]byte("data")), 4, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := objectstore.ReadAll(ctx, s, "foreign"); !errors.Is(err, objectstore.ErrChecksum) {
		t.Errorf("Get of an object without checksum: %v, want ErrChecksum", err)
	}
	if _, err := s.Stat(ctx, "foreign"); !errors.Is(err, objectstore.ErrChecksum) {
		t.Errorf("Stat of an object without checksum: %v, want ErrChecksum", err)
	}
}

func TestConfigRejected(t *testing.T) {
	t.Parallel()
	ok := Config{Endpoint: "127.0.0.1:1", Bucket: "results"}
	tests := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"no endpoint", func(c *Config) { c.Endpoint = "" }, "Config.Endpoint"},
		{"endpoint with scheme", func(c *Config) { c.Endpoint = "http://127.0.0.1:1" }, "Config.Endpoint"},
		{"no bucket", func(c *Config) { c.Bucket = "" }, "Config.Bucket"},
		{"bad bucket", func(c *Config) { c.Bucket = "Bad_Bucket" }, "Config.Bucket"},
		{"tiny parts", func(c *Config) { c.PartSize = 1 << 20 }, "Config.PartSize"},
		{"secret without access key", func(c *Config) { c.SecretKey = "s" }, "Config.AccessKey"},
		{"prefix with traversal", func(c *Config) { c.Prefix = "../" }, "Config.Prefix"},
		{"prefix with space", func(c *Config) { c.Prefix = "a b/" }, "Config.Prefix"},
	}
	for _, tt := range tests {
		cfg := ok
		tt.edit(&cfg)
		_, err := New(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: New error = %v, want one naming %s", tt.name, err, tt.field)
		}
	}
}

func TestReadUpTo(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789"), 100)
	tests := []struct {
		n, limit     int
		hint         int64
		wantLen      int
		wantComplete bool
	}{
		{0, 10, -1, 0, true},
		{10, 10, -1, 10, true},
		{10, 10, 10, 10, true},
		{11, 10, -1, 11, false},
		{1000, 10, -1, 11, false},
		{1000, 999, 1000, 1000, false},
		{1000, 1000, 5, 1000, true},
	}
	for _, tt := range tests {
		got, complete, err := readUpTo(struct{ io.Reader }{bytes.NewReader(data[:tt.n])}, tt.limit, tt.hint)
		if err != nil || len(got) != tt.wantLen || complete != tt.wantComplete || !bytes.Equal(got, data[:len(got)]) {
			t.Errorf("readUpTo(%d bytes, limit %d, hint %d) = %d bytes, complete %v, %v; want %d bytes, complete %v",
				tt.n, tt.limit, tt.hint, len(got), complete, err, tt.wantLen, tt.wantComplete)
		}
	}
}
