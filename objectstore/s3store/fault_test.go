package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/flowstone-go/flowstone/internal/retry"
	"github.com/flowstone-go/flowstone/internal/s3test"
	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/objectstore"
)

// faultLimits keep failing attempts short; a spurious timeout on a busy
// machine only adds an attempt.
var faultLimits = Config{RequestTimeout: 2 * time.Second, StallTimeout: 2 * time.Second}

func randomBytes(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:])
}

// restartOnRetry is a retry policy that starts srv again after a failed
// attempt and keeps every failure for checkFailures.
func restartOnRetry(t *testing.T, srv *s3test.Server, failures *[]error) retry.Policy {
	return retry.Policy{
		InitialDelay: 10 * time.Millisecond,
		MaxDelay:     100 * time.Millisecond,
		OnRetry: func(a retry.Attempt) {
			t.Logf("attempt %d failed: %v", a.N, a.Err)
			*failures = append(*failures, a.Err)
			if err := srv.Start(); err != nil {
				t.Error(err)
			}
		},
	}
}

func checkFailures(t *testing.T, err error, failures []error) {
	t.Helper()
	if err != nil {
		t.Fatalf("retry.Do around the operation: %v", err)
	}
	if len(failures) == 0 {
		t.Fatal("no attempt failed although the server was down")
	}
	for _, e := range failures {
		if !transient.Is(e) {
			t.Errorf("attempt failed with %v, which is not transient", e)
		}
	}
}

func TestPutAndGetWaitOutServerDown(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	s := newStore(t, srv, faultLimits)
	data, sum := randomBytes(t, 100<<10)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	srv.Stop()
	var failures []error
	var info objectstore.Info
	err := restartOnRetry(t, srv, &failures).Do(ctx, func(ctx context.Context) error {
		var err error
		info, err = s.Put(ctx, "k", bytes.NewReader(data), int64(len(data)))
		return err
	})
	checkFailures(t, err, failures)
	if info.SHA256 != sum {
		t.Fatalf("Put = %+v, want SHA-256 %s", info, sum)
	}

	srv.Stop()
	failures = nil
	var got []byte
	err = restartOnRetry(t, srv, &failures).Do(ctx, func(ctx context.Context) error {
		var err error
		got, info, err = objectstore.ReadAll(ctx, s, "k")
		return err
	})
	checkFailures(t, err, failures)
	if !bytes.Equal(got, data) || info.SHA256 != sum {
		t.Fatalf("Get = %d bytes, %+v; want %d bytes with SHA-256 %s", len(got), info, len(data), sum)
	}
}

// stopAfter yields r's bytes and calls stop (once) when n bytes have been
// read.
type stopAfter struct {
	r       io.Reader
	n, read int64
	stop    func()
	stopped bool
}

func (s *stopAfter) Read(p []byte) (int, error) {
	if s.read >= s.n && !s.stopped {
		s.stopped = true
		s.stop()
	}
	n, err := s.r.Read(p)
	s.read += int64(n)
	return n, err
}

// TestLargePutWaitsOutServerKilledMidUpload kills the server while a
// multipart upload is under way.
func TestLargePutWaitsOutServerKilledMidUpload(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	cfg := faultLimits
	cfg.PartSize = PartSizeMin
	s := newStore(t, srv, cfg)
	data, sum := randomBytes(t, 2*PartSizeMin+PartSizeMin/2)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	var failures []error
	killed := false
	err := restartOnRetry(t, srv, &failures).Do(ctx, func(ctx context.Context) error {
		var r io.Reader = bytes.NewReader(data)
		if !killed {
			r = &stopAfter{r: r, n: PartSizeMin + PartSizeMin/2, stop: func() { killed = true; srv.Stop() }}
		}
		_, err := s.Put(ctx, "big", r, -1)
		return err
	})
	if !killed {
		t.Fatal("the server was never killed: the test did not test a failure")
	}
	checkFailures(t, err, failures)
	var got []byte
	var info objectstore.Info
	err = retry.Do(ctx, func(ctx context.Context) (err error) { got, info, err = objectstore.ReadAll(ctx, s, "big"); return err })
	if err != nil || !bytes.Equal(got, data) || info.SHA256 != sum {
		t.Fatalf("reading back: %d bytes, %+v, %v", len(got), info, err)
	}
}

// TestGetWaitsOutServerKilledMidStream kills the server while a reader is
// halfway through an object larger than any socket buffer.
func TestGetWaitsOutServerKilledMidStream(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	cfg := faultLimits
	cfg.PartSize = 32 << 20
	s := newStore(t, srv, cfg)
	data, sum := randomBytes(t, 24<<20)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := retry.Do(ctx, func(ctx context.Context) error {
		_, err := s.Put(ctx, "big", bytes.NewReader(data), int64(len(data)))
		return err
	}); err != nil {
		t.Fatal(err)
	}

	var failures []error
	killed := false
	var got []byte
	err := restartOnRetry(t, srv, &failures).Do(ctx, func(ctx context.Context) error {
		rc, _, err := s.Get(ctx, "big")
		if err != nil {
			return err
		}
		defer rc.Close()
		var r io.Reader = rc
		if !killed {
			r = &stopAfter{r: rc, n: 1 << 20, stop: func() { killed = true; srv.Stop() }}
		}
		got, err = io.ReadAll(r)
		return err
	})
	if !killed {
		t.Fatal("the server was never killed: the test did not test a failure")
	}
	checkFailures(t, err, failures)
	if got := sha256.Sum256(got); hex.EncodeToString(got[:]) != sum {
		t.Fatal("read back other bytes")
	}
}

// TestHungServerTimesOut freezes the server: it accepts connections and
// answers nothing. Every call, and a reader in the middle of an object,
// returns a transient TimeoutError instead of hanging, also for a caller
// without a deadline.
func TestHungServerTimesOut(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	cfg := Config{RequestTimeout: 300 * time.Millisecond, StallTimeout: 300 * time.Millisecond, PartSize: 32 << 20}
	s := newStore(t, srv, cfg)
	data, _ := randomBytes(t, 24<<20)
	ctx := context.Background()
	// The short limits can run out on a busy machine: retry the setup.
	if err := retry.Do(ctx, func(ctx context.Context) error {
		_, err := s.Put(ctx, "big", bytes.NewReader(data), int64(len(data)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var rc io.ReadCloser
	if err := retry.Do(ctx, func(ctx context.Context) (err error) {
		if rc, _, err = s.Get(ctx, "big"); err != nil {
			return err
		}
		if _, err = io.ReadFull(rc, make([]byte, 1<<20)); err != nil {
			rc.Close()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	if err := srv.Freeze(); errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no SIGSTOP on this platform")
	} else if err != nil {
		t.Fatal(err)
	}
	defer srv.Thaw()

	isTimeout := func(op string, err error) {
		t.Helper()
		var te *transient.TimeoutError
		if !errors.As(err, &te) || !transient.Is(err) {
			t.Errorf("%s on a hung server: %v, want a transient TimeoutError", op, err)
		}
	}
	_, err := io.Copy(io.Discard, rc)
	isTimeout("reading on", err)
	_, err = s.Stat(ctx, "big")
	isTimeout("Stat", err)
	_, _, err = s.Get(ctx, "big")
	isTimeout("Get", err)
	_, err = s.Put(ctx, "small", bytes.NewReader([]byte("x")), 1)
	isTimeout("Put", err)
	isTimeout("Delete", s.Delete(ctx, "big"))
}

func TestTransientClassifiesS3Errors(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv, Config{})
	ctx := context.Background()
	_, denied := New(ctx, Config{Endpoint: srv.Endpoint, Bucket: "denied", AccessKey: srv.AccessKey, SecretKey: "wrong" + srv.SecretKey})
	_, notFound := s.Stat(ctx, "missing")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"access denied (real)", denied, false},
		{"not found (real)", notFound, false},
		{"SlowDown", s.fail(ctx, "put", "k", errResp(503, "SlowDown")), true},
		{"ServiceUnavailable", s.fail(ctx, "put", "k", errResp(503, "ServiceUnavailable")), true},
		{"InternalError", s.fail(ctx, "put", "k", errResp(500, "InternalError")), true},
		{"RequestTimeout", s.fail(ctx, "put", "k", errResp(400, "RequestTimeout")), true},
		{"502 from a proxy", s.fail(ctx, "get", "k", errResp(502, "BadGateway")), true},
		{"429", s.fail(ctx, "get", "k", errResp(429, "TooManyRequests")), true},
		{"501", s.fail(ctx, "get", "k", errResp(501, "NotImplemented")), false},
		{"403", s.fail(ctx, "get", "k", errResp(403, "AccessDenied")), false},
		{"400", s.fail(ctx, "get", "k", errResp(400, "InvalidArgument")), false},
	}
	for _, tt := range tests {
		if got := transient.Is(tt.err); got != tt.want {
			t.Errorf("%s: transient.Is(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// errResp is an S3 error response as minio-go parses it from a server's
// reply.
func errResp(status int, code string) error {
	return minio.ErrorResponse{StatusCode: status, Code: code, Message: code}
}
