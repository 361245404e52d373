package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/objectstore"
)

// testStreamUnknownSize streams just over 5 MiB, so that it spans two parts
// even at S3's minimum part size.
func testStreamUnknownSize(t *testing.T, s objectstore.Store) {
	const size = 5<<20 + 4096
	ctx := context.Background()
	want := sha256.New()
	if _, err := io.Copy(want, stream(5, size)); err != nil {
		t.Fatal(err)
	}
	wantSum := hex.EncodeToString(want.Sum(nil))

	info, err := s.Put(ctx, "big/stream", stream(5, size), -1)
	if err != nil {
		t.Fatalf("Put of %d bytes of unknown size: %v", size, err)
	}
	if info.Size != size || info.SHA256 != wantSum {
		t.Errorf("Put info = %+v, want size %d sha %s", info, size, wantSum)
	}

	rc, info, err := s.Get(ctx, "big/stream")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	if info.Size != size || info.SHA256 != wantSum {
		t.Errorf("Get info = %+v, want size %d sha %s", info, size, wantSum)
	}
	got := sha256.New()
	n, err := io.Copy(got, rc)
	if err != nil {
		t.Fatalf("reading the object after %d bytes: %v", n, err)
	}
	if n != size || hex.EncodeToString(got.Sum(nil)) != wantSum {
		t.Errorf("read %d bytes with sha %x, want %d bytes with sha %s", n, got.Sum(nil), size, wantSum)
	}
}

func testDeclaredSize(t *testing.T, s objectstore.Store) {
	ctx := context.Background()
	old := []byte("previous")
	put(t, s, "short", old)
	put(t, s, "long", old)
	data := payload(7, 1000)
	// Retrying cannot fix a wrong size: the errors are not transient.
	if _, err := s.Put(ctx, "short", bytes.NewReader(data), int64(len(data))+1); err == nil || transient.Is(err) {
		t.Errorf("Put with a size one past the data: error = %v, want a permanent one", err)
	}
	if _, err := s.Put(ctx, "long", bytes.NewReader(data), int64(len(data))-1); err == nil || transient.Is(err) {
		t.Errorf("Put with a size one short of the data: error = %v, want a permanent one", err)
	}
	if _, err := s.Put(ctx, "fresh", bytes.NewReader(data), int64(len(data))+1); err == nil || transient.Is(err) {
		t.Errorf("Put of a new key with a wrong size: error = %v, want a permanent one", err)
	}
	checkGet(t, s, "short", old)
	checkGet(t, s, "long", old)
	checkNotFound(t, s, "fresh")
}

// failingReader yields n bytes, then err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

var errSourceBroke = errors.New("storetest: source broke")
