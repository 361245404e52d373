package natstest

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Restartable is a JetStream-enabled nats-server that a test stops and
// starts again on the same port over the same file store, as an operator
// restarting a crashed server would: clients reconnect to the same URL and
// find the streams they had. Its methods are safe for concurrent use.
type Restartable struct {
	dir string

	mu   sync.Mutex
	port int // fixed by the first start
	srv  *server.Server
}

// RestartableServer starts a Restartable server with its file store in a
// fresh temp dir. It is shut down when the test ends.
func RestartableServer(t testing.TB) *Restartable {
	t.Helper()
	r := &Restartable{dir: t.TempDir(), port: -1}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// URL is the server's client URL; it stays the same across restarts.
func (r *Restartable) URL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", r.port)
}

// Server returns the running server, or nil while it is stopped.
func (r *Restartable) Server() *server.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.srv
}

// Stop shuts the server down, dropping every client connection, and waits
// until it is gone. Stopping a stopped server does nothing.
func (r *Restartable) Stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Start starts the server on its port over its store dir and returns once
// it accepts connections. Starting a running server does nothing.
func (r *Restartable) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		return nil
	}
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      r.port,
		JetStream: true,
		StoreDir:  r.dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		return fmt.Errorf("natstest: new server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("natstest: server on port %d not ready (port taken?)", r.port)
	}
	r.port = srv.Addr().(*net.TCPAddr).Port
	r.srv = srv
	return nil
}

// Restart stops the server and starts it again.
func (r *Restartable) Restart() error {
	r.Stop()
	return r.Start()
}

// Connect opens a client connection that reconnects without limit and
// quickly, so a test waits for a restart, not for the client's backoff.
// Further options apply after those. It is closed when the test ends.
func (r *Restartable) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond), nats.ReconnectJitter(0, 0)}, opts...)
	nc, err := nats.Connect(r.URL(), opts...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
