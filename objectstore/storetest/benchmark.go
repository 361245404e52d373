package storetest

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/flowstone-go/flowstone/objectstore"
)

// Benchmark measures Put and Get of 1 MiB and 64 MiB objects; the reported
// MB/s is object bytes per second. newStore must return an empty store and
// release it with b.Cleanup.
func Benchmark(b *testing.B, newStore func(b *testing.B) objectstore.Store) {
	pattern := payload(42, 1<<20)
	for _, size := range []int64{1 << 20, 64 << 20} {
		name := fmt.Sprintf("%dMiB", size>>20)
		b.Run("Put/"+name, func(b *testing.B) {
			s := newStore(b)
			ctx := context.Background()
			b.SetBytes(size)
			for b.Loop() {
				if _, err := s.Put(ctx, "bench/object", &repeatReader{pattern: pattern, left: size}, size); err != nil {
					b.Fatalf("Put: %v", err)
				}
			}
		})
		b.Run("Get/"+name, func(b *testing.B) {
			s := newStore(b)
			ctx := context.Background()
			if _, err := s.Put(ctx, "bench/object", &repeatReader{pattern: pattern, left: size}, size); err != nil {
				b.Fatalf("Put: %v", err)
			}
			b.SetBytes(size)
			for b.Loop() {
				rc, _, err := s.Get(ctx, "bench/object")
				if err != nil {
					b.Fatalf("Get: %v", err)
				}
				n, err := io.Copy(io.Discard, rc)
				rc.Close()
				if err != nil || n != size {
					b.Fatalf("read %d of %d bytes: %v", n, size, err)
				}
			}
		})
	}
}

// repeatReader yields left bytes by cycling through pattern, cheaply enough
// not to show in the measurement.
type repeatReader struct {
	pattern []byte
	off     int
	left    int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := copy(p, r.pattern[r.off:])
	r.off = (r.off + n) % len(r.pattern)
	r.left -= int64(n)
	return n, nil
}
