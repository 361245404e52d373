package fleet_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/natstest"
)

// A start-up that meets a JetStream not answering yet (the server
// restarting, a cluster forming) waits for it instead of failing: every
// daemon used to exit on a fresh cluster slower than one request.
func TestStartUpWaitsForJetStream(t *testing.T) {
	srv := natstest.RestartableServer(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	var logs logBuffer
	ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ensureAll(ctx, t, js, fleet.WithLogger(logs.logger())) }()
	// Once start-up has failed a step and logged its wait, the server
	// comes back.
	for !strings.Contains(logs.text(), "jetstream_not_ready") {
		select {
		case err := <-done:
			t.Fatalf("start-up with the server down ended with %v before retrying", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("start-up across the server's return: %v", err)
	}
}

// A server without JetStream also answers nobody, but no wait fixes that:
// start-up says so at once instead of retrying until its time is up.
func TestStartUpWithoutJetStreamFailsAtOnce(t *testing.T) {
	s := natstest.ServerWith(t, t.TempDir(), func(o *server.Options) { o.JetStream = false })
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
	defer cancel()
	err = fleet.Ensure(ctx, js)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "JetStream is not enabled") {
		t.Fatalf("Ensure without JetStream = %v; want its failure, not a wait until the deadline", err)
	}
	t.Log(err)
}
