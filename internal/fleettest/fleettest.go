// Package fleettest sets up the fleet's JetStream side for tests of the
// processes that join it: an embedded nats-server (internal/natstest) with
// the fleet's streams and buckets, and a reader of the completions workers
// publish.
package fleettest

import (
	"context"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/kv/jskv"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// setupTimeout bounds creating the streams and buckets.
const setupTimeout = 30 * time.Second

// Fleet is an embedded server with the fleet's streams and buckets, and a
// connection to it. Everything is closed when the test ends.
type Fleet struct {
	Srv  *server.Server
	NC   *nats.Conn
	JS   jetstream.JetStream
	Mats *jskv.Store // the materializations bucket
}

// Start starts a server and creates the fleet's streams and buckets.
func Start(t testing.TB) *Fleet {
	t.Helper()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := fleet.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	mats, runs, manifests, err := fleet.Buckets(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	runs.Close()
	manifests.Close()
	t.Cleanup(mats.Close)
	scatter, err := fleet.ScatterBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	scatter.Close()
	return &Fleet{Srv: srv, NC: nc, JS: js, Mats: mats}
}

// Completions calls fn, one call at a time, for every completion stored
// from now on, single or batched, with the message that carried it. A
// message that does not decode fails the test.
func (f *Fleet) Completions(t testing.TB, fn func(m jetstream.Msg, c protocol.Completion)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	oc, err := f.JS.OrderedConsumer(ctx, protocol.DoneStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := oc.Consume(func(m jetstream.Msg) {
		comps, perr := protocol.DecodeCompletions(m.Data(), m.Headers().Get(protocol.BatchHeader) != "")
		if perr != nil {
			t.Errorf("completion does not decode: %v", perr)
			return
		}
		for _, c := range comps {
			fn(m, c)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
}
