package transient_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/objectstore"
)

func TestIs(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	timeout := &transient.TimeoutError{Op: "jetstream request", After: time.Second}

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"unknown", errors.New("boom"), false},
		{"refused by a real closed port", refused(t), true},
		{"reset by a real peer", reset(t), true},
		{"broken pipe on a real socket", brokenPipe(t), true},
		{"read deadline on a real socket", readTimeout(t), true},
		{"http body cut off by a real server", truncatedBody(t), true},
		{"http request to a closed port", httpRefused(t), true},
		{"wrapped refused", fmt.Errorf("s3store: put %q: %w", "k", refused(t)), true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"our own time limit", timeout, true},
		{"our own time limit, wrapped", fmt.Errorf("jskv: get %q: %w", "k", timeout), true},
		{"marked", transient.Mark(errors.New("nats: timeout")), true},
		{"marked, wrapped", fmt.Errorf("op: %w", transient.Mark(errors.New("503"))), true},
		{"the caller cancelled", canceled.Err(), false},
		{"the caller's deadline", expired.Err(), false},
		{"the caller cancelled a refused call", fmt.Errorf("put: %w: %w", canceled.Err(), refused(t)), false},
		{"the caller's deadline ended a marked call", fmt.Errorf("%w: %w", expired.Err(), transient.Mark(errors.New("x"))), false},
		{"the caller's deadline ended our timeout", fmt.Errorf("%w: %w", expired.Err(), timeout), false},
		{"http request past the caller's deadline", httpPastDeadline(t), false},
		{"kv conflict", fmt.Errorf("jskv: update: %w", kv.ErrConflict), false},
		{"kv not found", kv.ErrNotFound, false},
		{"kv invalid key", kv.ValidKey("a b"), false},
		{"kv closed", kv.ErrClosed, false},
		{"object not found", objectstore.ErrNotFound, false},
		{"checksum mismatch", objectstore.ErrChecksum, false},
		{"invalid object key", objectstore.ValidKey("../x"), false},
		{"permission denied", permissionDenied(t), false},
		{"plain EOF", io.EOF, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := transient.Is(tt.err); got != tt.want {
				t.Errorf("Is(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestMarkKeepsTheChain(t *testing.T) {
	if transient.Mark(nil) != nil {
		t.Fatal("Mark(nil) is not nil")
	}
	base := fmt.Errorf("publish: %w", io.ErrClosedPipe)
	m := transient.Mark(base)
	if !errors.Is(m, io.ErrClosedPipe) || m.Error() != base.Error() {
		t.Errorf("Mark(%v) = %v, lost the chain or the message", base, m)
	}
}

func TestTimeoutErrorIsNotTheCallersDeadline(t *testing.T) {
	var err error = &transient.TimeoutError{Op: "s3 read", After: 30 * time.Second}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Error("TimeoutError matches context.DeadlineExceeded: callers would take it for their own deadline")
	}
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Error("TimeoutError does not report Timeout()")
	}
	if got := err.Error(); got != "s3 read: no progress within 30s" {
		t.Errorf("Error() = %q", got)
	}
}

func TestCallTellsOwnLimitFromCallersDeadline(t *testing.T) {
	block := func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, fmt.Errorf("request: %w", ctx.Err())
	}
	// The call's own limit runs out while the caller has time.
	_, err := transient.Call(context.Background(), "request", time.Millisecond, block)
	var te *transient.TimeoutError
	if !errors.As(err, &te) || te.After != time.Millisecond || !transient.Is(err) {
		t.Errorf("own limit: %v, want a transient TimeoutError", err)
	}
	// The caller's deadline comes first.
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err = transient.Call(ctx, "request", time.Hour, block)
	if !errors.Is(err, context.DeadlineExceeded) || transient.Is(err) {
		t.Errorf("caller's deadline: %v, want context.DeadlineExceeded, not transient", err)
	}
	// Success and other failures pass through.
	if v, err := transient.Call(context.Background(), "request", time.Hour, func(context.Context) (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Errorf("success: %d, %v", v, err)
	}
	other := errors.New("not found")
	if _, err := transient.Call(context.Background(), "request", time.Hour, func(context.Context) (int, error) { return 0, other }); err != other {
		t.Errorf("failure: %v, want %v", err, other)
	}
}

// refused dials a loopback port nobody listens on.
func refused(t *testing.T) error {
	t.Helper()
	addr := closedAddr(t)
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Fatalf("dial %s succeeded", addr)
	}
	return err
}

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// reset reads from a connection its peer aborted (SO_LINGER 0 sends RST).
func reset(t *testing.T) error {
	t.Helper()
	client, server := tcpPair(t)
	defer client.Close()
	server.(*net.TCPConn).SetLinger(0)
	server.Close()
	for {
		if _, err := client.Read(make([]byte, 1)); err != nil {
			return err
		}
	}
}

// brokenPipe writes to a connection its peer aborted until the kernel
// refuses.
func brokenPipe(t *testing.T) error {
	t.Helper()
	client, server := tcpPair(t)
	defer client.Close()
	server.(*net.TCPConn).SetLinger(0)
	server.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := client.Write(buf); err != nil {
			return err
		}
	}
}

func readTimeout(t *testing.T) error {
	t.Helper()
	client, server := tcpPair(t)
	defer client.Close()
	defer server.Close()
	client.SetReadDeadline(time.Now())
	_, err := client.Read(make([]byte, 1))
	return err
}

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	server = <-accepted
	if err != nil || server == nil {
		t.Fatalf("connect: %v", err)
	}
	return client, server
}

// truncatedBody reads a response whose server promised more bytes than it
// sent before hanging up.
func truncatedBody(t *testing.T) error {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(buf, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
		buf.Flush()
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(bufio.NewReader(resp.Body))
	return err
}

func httpRefused(t *testing.T) error {
	t.Helper()
	resp, err := http.Get("http://" + closedAddr(t) + "/")
	if err == nil {
		resp.Body.Close()
		t.Fatal("GET of a closed port succeeded")
	}
	return err
}

// httpPastDeadline is a request to a server that never answers, ended by
// the caller's deadline: net/http reports it as a timeout, which must not
// pass for a transient one.
func httpPastDeadline(t *testing.T) error {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("request past its deadline succeeded")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("request past its deadline: %v is not a net.Error timeout; the case no longer tests what it should", err)
	}
	return err
}

func permissionDenied(t *testing.T) error {
	t.Helper()
	if os.Geteuid() == 0 {
		// root reads anything: use the error the kernel gives others.
		return &os.PathError{Op: "open", Path: "/secret", Err: os.ErrPermission}
	}
	p := t.TempDir() + "/secret"
	if err := os.WriteFile(p, nil, 0); err != nil {
		t.Fatal(err)
	}
	_, err := os.ReadFile(p)
	return err
}
