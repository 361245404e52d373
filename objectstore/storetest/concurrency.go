package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/flowstone-go/flowstone/objectstore"
)

func testConcurrentDistinctKeys(t *testing.T, s objectstore.Store) {
	const workers, perWorker = 8, 4
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				key := fmt.Sprintf("worker-%d/object-%d", w, i)
				data := payload(uint64(100+w*perWorker+i), 10_000+w*1000+i)
				if _, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
					t.Errorf("Put(%q): %v", key, err)
					return
				}
				got, _, err := objectstore.ReadAll(ctx, s, key)
				if err != nil {
					t.Errorf("Get(%q): %v", key, err)
					return
				}
				if !bytes.Equal(got, data) {
					t.Errorf("Get(%q) returned another object's bytes", key)
				}
			}
		})
	}
	wg.Wait()
}

// testConcurrentOverwrite writes one key from many goroutines while others
// read it: every read that succeeds must return one written value whole, and
// the key must end up holding one of them.
func testConcurrentOverwrite(t *testing.T, s objectstore.Store) {
	const writers, readers = 6, 3
	ctx := context.Background()
	values := make([][]byte, writers)
	for i := range values {
		// Sizes span several chunks or parts in the chunked backends.
		values[i] = payload(uint64(200+i), 64<<10+i*(300<<10))
	}
	isValue := func(b []byte) bool {
		for _, v := range values {
			if bytes.Equal(b, v) {
				return true
			}
		}
		return false
	}

	done := make(chan struct{})
	var readersWG sync.WaitGroup
	for range readers {
		readersWG.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				got, _, err := objectstore.ReadAll(ctx, s, "contended")
				switch {
				case errors.Is(err, objectstore.ErrNotFound):
					// Not written yet, or the version being read was replaced.
				case err != nil:
					t.Errorf("Get during overwrite: %v", err)
					return
				case !isValue(got):
					t.Errorf("Get during overwrite returned %d bytes that are no written value", len(got))
					return
				}
			}
		})
	}

	var writersWG sync.WaitGroup
	for i := range writers {
		writersWG.Go(func() {
			for range 2 {
				if _, err := s.Put(ctx, "contended", bytes.NewReader(values[i]), int64(len(values[i]))); err != nil {
					t.Errorf("Put #%d: %v", i, err)
				}
			}
		})
	}
	writersWG.Wait()
	close(done)
	readersWG.Wait()

	got, info := get(t, s, "contended")
	if !isValue(got) {
		t.Fatalf("after concurrent overwrites the key holds %d bytes that are no written value", len(got))
	}
	checkInfo(t, "Get", info, "contended", got)
	stat, err := s.Stat(ctx, "contended")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	checkInfo(t, "Stat", stat, "contended", got)
}

// cancelingReader cancels its context once it has yielded after bytes, and
// keeps yielding as long as it is read.
type cancelingReader struct {
	r      io.Reader
	after  int64
	n      int64
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n >= c.after {
		c.cancel()
	}
	return n, err
}
