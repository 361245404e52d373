package jsstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/internal/retry"
	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/objectstore"
)

// restartRig is a store on a server the test stops in the middle of an
// operation and starts again when the operation has failed, as retry.Do
// sees it.
type restartRig struct {
	t   *testing.T
	srv *natstest.Restartable
	s   *Store

	// atOnce restarts the server the moment it is stopped, as a
	// supervisor would; otherwise it stays down until an attempt failed.
	atOnce bool

	mu       sync.Mutex
	stopped  bool    // the server was stopped mid-operation
	failures []error // the errors of attempts retry.Do retried
}

func newRestartRig(t *testing.T, opts ...Option) *restartRig {
	srv := natstest.RestartableServer(t)
	js, err := jetstream.New(srv.Connect(t), jetstream.WithDefaultTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// Short limits keep the failing attempt short; a spurious timeout on
	// a busy machine only adds an attempt.
	opts = append([]Option{WithRequestTimeout(2 * time.Second), WithStallTimeout(3 * time.Second)}, opts...)
	s, err := New(t.Context(), js, "restart", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &restartRig{t: t, srv: srv, s: s}
}

// stopOnce stops the server the first time it is called.
func (r *restartRig) stopOnce() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped {
		r.stopped = true
		r.srv.Stop()
		if r.atOnce {
			if err := r.srv.Start(); err != nil {
				r.t.Error(err)
			}
		}
	}
}

func (r *restartRig) wasStopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped
}

// policy retries quickly and restarts the server once an attempt failed.
func (r *restartRig) policy() retry.Policy {
	return retry.Policy{
		InitialDelay: 10 * time.Millisecond,
		MaxDelay:     100 * time.Millisecond,
		OnRetry: func(a retry.Attempt) {
			r.t.Logf("attempt %d failed: %v", a.N, a.Err)
			r.failures = append(r.failures, a.Err)
			if err := r.srv.Start(); err != nil {
				r.t.Error(err)
			}
		},
	}
}

// checkFailures asserts that the server went down mid-operation and that
// the operation then returned transient errors, which retry.Do retried. A
// server restarted at once may also go unnoticed.
func (r *restartRig) checkFailures(err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatalf("retry.Do around the operation: %v", err)
	}
	if !r.wasStopped() {
		r.t.Fatal("the server was never stopped: the test did not test a restart")
	}
	if len(r.failures) == 0 && !r.atOnce {
		r.t.Fatal("no attempt failed although the server went down mid-operation")
	}
	for _, e := range r.failures {
		if !transient.Is(e) {
			r.t.Errorf("attempt failed with %v, which is not transient", e)
		}
	}
}

// stopAfter yields r's bytes and stops the server (once) when n bytes
// have been read.
type stopAfter struct {
	r    io.Reader
	n    int64
	read int64
	stop func()
}

func (s *stopAfter) Read(p []byte) (int, error) {
	if s.read >= s.n {
		s.stop()
	}
	n, err := s.r.Read(p)
	s.read += int64(n)
	return n, err
}

func randomBytes(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:])
}

func TestPutWaitsOutServerRestart(t *testing.T) {
	t.Parallel()
	for _, atOnce := range []bool{false, true} {
		t.Run(restartName(atOnce), func(t *testing.T) { testPutWaitsOutServerRestart(t, atOnce) })
	}
}

func TestGetWaitsOutServerRestart(t *testing.T) {
	t.Parallel()
	for _, atOnce := range []bool{false, true} {
		t.Run(restartName(atOnce), func(t *testing.T) { testGetWaitsOutServerRestart(t, atOnce) })
	}
}

func restartName(atOnce bool) string {
	if atOnce {
		return "restarted_at_once"
	}
	return "down_until_the_attempt_failed"
}

func testPutWaitsOutServerRestart(t *testing.T, atOnce bool) {
	const chunk = 64 << 10
	rig := newRestartRig(t, WithChunkSize(chunk))
	rig.atOnce = atOnce
	data, sum := randomBytes(t, 40*chunk)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	var info objectstore.Info
	err := rig.policy().Do(ctx, func(ctx context.Context) error {
		// Every attempt puts the same bytes from the start; the first
		// loses its server after 5 chunks.
		var r io.Reader = bytes.NewReader(data)
		if !rig.wasStopped() {
			r = &stopAfter{r: r, n: 5 * chunk, stop: rig.stopOnce}
		}
		var err error
		info, err = rig.s.Put(ctx, "k", r, int64(len(data)))
		return err
	})
	rig.checkFailures(err)
	if info.SHA256 != sum || info.Size != int64(len(data)) {
		t.Fatalf("Put = %+v, want size %d and SHA-256 %s", info, len(data), sum)
	}
	var got []byte
	err = retry.Do(ctx, func(ctx context.Context) error {
		var err error
		got, _, err = objectstore.ReadAll(ctx, rig.s, "k")
		return err
	})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reading back: %d bytes, %v", len(got), err)
	}
	// The failed attempt's chunks were purged, if not at once then by the
	// Put that succeeded.
	oi, err := (*rig.s.obs.Load()).GetInfo(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	si, err := rig.s.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(oi.Chunks) + 1; si.State.Msgs != want {
		t.Errorf("stream holds %d messages, want %d: the failed Put left chunks behind", si.State.Msgs, want)
	}
}

func testGetWaitsOutServerRestart(t *testing.T, atOnce bool) {
	rig := newRestartRig(t)
	rig.atOnce = atOnce
	data, sum := randomBytes(t, bigObject)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := retry.Do(ctx, func(ctx context.Context) error {
		_, err := rig.s.Put(ctx, "k", bytes.NewReader(data), int64(len(data)))
		return err
	}); err != nil {
		t.Fatal(err)
	}

	var got []byte
	var info objectstore.Info
	err := rig.policy().Do(ctx, func(ctx context.Context) error {
		rc, i, err := rig.s.Get(ctx, "k")
		if err != nil {
			return err
		}
		defer rc.Close()
		info = i
		// The first attempt loses its server after 1 MiB, with most of
		// the object still on it.
		var r io.Reader = rc
		if !rig.wasStopped() {
			r = &stopAfter{r: rc, n: 1 << 20, stop: rig.stopOnce}
		}
		got, err = io.ReadAll(r)
		return err
	})
	rig.checkFailures(err)
	if !bytes.Equal(got, data) || info.SHA256 != sum {
		t.Fatalf("Get = %d bytes, %+v; want %d bytes with SHA-256 %s", len(got), info, len(data), sum)
	}
}
