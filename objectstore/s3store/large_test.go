package s3store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/flowstone-go/flowstone/internal/s3test"
	"github.com/flowstone-go/flowstone/objectstore"
)

// randomStream yields n pseudo-random bytes and hides its length.
func randomStream(seed byte, n int64) io.Reader {
	return struct{ io.Reader }{io.LimitReader(rand.NewChaCha8([32]byte{seed}), n)}
}

func TestUnknownSize64MiBThroughMultipart(t *testing.T) {
	t.Parallel()
	const size = 64 << 20
	srv := s3test.Start(t)
	s := newStore(t, srv, Config{})
	ctx := context.Background()
	want := sha256.New()
	io.Copy(want, randomStream(1, size))
	wantSum := hex.EncodeToString(want.Sum(nil))

	info, err := s.Put(ctx, "results/big.bin", randomStream(1, size), -1)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if info.Size != size || info.SHA256 != wantSum {
		t.Fatalf("Put info = %+v, want size %d sha %s", info, size, wantSum)
	}
	rc, _, err := s.Get(ctx, "results/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := sha256.New()
	if n, err := io.Copy(got, rc); err != nil || n != size {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	if hex.EncodeToString(got.Sum(nil)) != wantSum {
		t.Fatalf("read back other bytes")
	}
	// 64 MiB exceed one 16 MiB part, so Put staged a multipart upload and
	// copied it into place: neither may linger.
	if staged := listNames(t, s, stagingDir); len(staged) != 0 {
		t.Errorf("staged uploads left behind: %q", staged)
	}
	assertNoUploads(t, s)
}

func TestCanceledLargePutLeavesNothing(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	s := newStore(t, srv, Config{PartSize: PartSizeMin})
	tests := []struct {
		name        string
		cancelAfter int64 // bytes read before the context ends
		wantErr     error
	}{
		{"during multipart upload", 8 << 20, context.Canceled},
		{"reader fails after staging began", -1, errBroken},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithCancel(context.Background())
		var r io.Reader = &cancelAfter{r: randomStream(2, 20<<20), after: tt.cancelAfter, cancel: cancel}
		if tt.cancelAfter < 0 {
			r = io.MultiReader(randomStream(2, 12<<20), errReader{errBroken})
		}
		_, err := s.Put(ctx, "k", r, -1)
		cancel()
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Put error = %v, want %v", tt.name, err, tt.wantErr)
		}
	}
	if _, err := s.Stat(context.Background(), "k"); !errors.Is(err, objectstore.ErrNotFound) {
		t.Errorf("Stat after failed Puts: %v, want ErrNotFound", err)
	}
	if names := listNames(t, s, ""); len(names) != 0 {
		t.Errorf("bucket holds %q after failed Puts", names)
	}
	assertNoUploads(t, s)
}

var errBroken = errors.New("broken reader")

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type cancelAfter struct {
	r      io.Reader
	after  int64
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n += int64(n); c.after >= 0 && c.n >= c.after {
		c.cancel()
	}
	return n, err
}

func listNames(t *testing.T, s *Store, prefix string) []string {
	t.Helper()
	var names []string
	for oi := range s.client.ListObjects(context.Background(), s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.cfg.Prefix + prefix, Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		names = append(names, oi.Key)
	}
	return names
}

func assertNoUploads(t *testing.T, s *Store) {
	t.Helper()
	res, err := s.core.ListMultipartUploads(context.Background(), s.cfg.Bucket, "", "", "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Uploads) != 0 {
		t.Errorf("%d incomplete multipart uploads left behind", len(res.Uploads))
	}
}
