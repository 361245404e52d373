// Package natstest starts real, embedded nats-servers with JetStream for
// tests: file store in a temp dir, random loopback port, shut down by
// t.Cleanup.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server starts a JetStream-enabled nats-server with its file store in a
// fresh temp dir and returns it. It is shut down when the test ends.
func Server(t testing.TB) *server.Server {
	t.Helper()
	return ServerIn(t, t.TempDir())
}

// ServerIn is Server with the store dir given, so a test can restart a
// server over the same data.
func ServerIn(t testing.TB, dir string) *server.Server {
	t.Helper()
	return ServerWith(t, dir, nil)
}

// ServerWith is ServerIn with the options edit changes (nil: none), such as
// SyncAlways for a server that fsyncs every write.
func ServerWith(t testing.TB, dir string, edit func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	}
	if edit != nil {
		edit(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("natstest: server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect opens a client connection to s, closed when the test ends.
func Connect(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
