package worker_test

import (
	"context"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

// A Start that fails after opening the stores (here: a task consumer it
// cannot bind) closes them again: no subscription or goroutine of the
// worker is left, and Stop afterwards has nothing to do.
func TestFailedStartLeavesNothingRunning(t *testing.T) {
	e := newFleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	p := flowstone.MustPipeline("doomed", flowstone.Asset("a", func(c *flowstone.Context) (any, error) { return 1, nil }))
	// The pipeline's durable at the top priority, with a replay policy
	// an update cannot change: the worker's CreateOrUpdateConsumer fails.
	if _, err := e.js.CreateConsumer(ctx, protocol.TaskStream, jetstream.ConsumerConfig{
		Durable: fleet.ConsumerName("doomed", protocol.MaxPriority), FilterSubject: protocol.TaskSubject("doomed", protocol.MaxPriority),
		AckPolicy: jetstream.AckExplicitPolicy, ReplayPolicy: jetstream.ReplayOriginalPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	conn := natstest.Connect(t, e.srv)
	// The connection's own subscription for replies (nats.go makes it at
	// the first request) is the connection's, not the worker's.
	cjs, err := jetstream.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cjs.AccountInfo(ctx); err != nil {
		t.Fatal(err)
	}
	subs := conn.NumSubscriptions()
	before := goleak.IgnoreCurrent()
	w := e.newWorker(worker.Config{Conn: conn, Pipelines: []*flowstone.Pipeline{p}})
	if err := w.Start(ctx); err == nil {
		t.Fatal("Start succeeded with a task consumer it cannot bind")
	}
	if n := conn.NumSubscriptions(); n != subs {
		t.Errorf("%d subscriptions on the connection after a failed Start, %d before", n, subs)
	}
	goleak.VerifyNone(t, before)
	if err := w.Stop(ctx); err != nil {
		t.Errorf("Stop after a failed Start = %v", err)
	}
}
