package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/objectstore"
)

// stream yields n pseudo-random bytes determined by seed, produced as they
// are read so large objects never sit in the test's memory.
func stream(seed uint64, n int64) io.Reader {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return opaque{io.LimitReader(rand.NewChaCha8(s), n)}
}

// payload is stream read into memory, for objects small enough to compare.
func payload(seed uint64, n int) []byte {
	b, err := io.ReadAll(stream(seed, int64(n)))
	if err != nil {
		panic(err)
	}
	return b
}

// opaque hides every method but Read, so a backend cannot learn the size
// from the reader's type the way it could from *bytes.Reader.
type opaque struct{ r io.Reader }

func (o opaque) Read(p []byte) (int, error) { return o.r.Read(p) }

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func put(t testing.TB, s objectstore.Store, key string, data []byte) objectstore.Info {
	t.Helper()
	info, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
	checkInfo(t, "Put", info, key, data)
	return info
}

func get(t testing.TB, s objectstore.Store, key string) ([]byte, objectstore.Info) {
	t.Helper()
	b, info, err := objectstore.ReadAll(context.Background(), s, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return b, info
}

func checkInfo(t testing.TB, op string, got objectstore.Info, key string, data []byte) {
	t.Helper()
	want := objectstore.Info{Key: key, Size: int64(len(data)), SHA256: sumHex(data)}
	if got != want {
		t.Errorf("%s(%q) info = %+v, want %+v", op, key, got, want)
	}
}

func checkGet(t testing.TB, s objectstore.Store, key string, want []byte) {
	t.Helper()
	got, info := get(t, s, key)
	if !bytes.Equal(got, want) {
		t.Errorf("Get(%q) = %d bytes (sha %s), want %d bytes (sha %s)", key, len(got), sumHex(got), len(want), sumHex(want))
	}
	checkInfo(t, "Get", info, key, want)
}

func checkNotFound(t testing.TB, s objectstore.Store, key string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Stat(ctx, key); !errors.Is(err, objectstore.ErrNotFound) || transient.Is(err) {
		t.Errorf("Stat(%q) error = %v, want ErrNotFound, not transient", key, err)
	}
	rc, _, err := s.Get(ctx, key)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, objectstore.ErrNotFound) || transient.Is(err) {
		t.Errorf("Get(%q) error = %v, want ErrNotFound, not transient", key, err)
	}
}
