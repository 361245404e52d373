package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/fleettest"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every wait of these tests: generous, so a slow machine does
// not fail them, while a hang still ends.
const wait = 30 * time.Second

// fleetEnv is an embedded nats-server with the fleet's streams and buckets,
// a memory object store, and a stream of the completions published.
type fleetEnv struct {
	t      testing.TB
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	stores map[string]objectstore.Store
	mats   kv.Store
	done   chan protocol.Completion
}

func newFleet(t testing.TB) *fleetEnv {
	t.Helper()
	f := fleettest.Start(t)
	e := &fleetEnv{t: t, srv: f.Srv, nc: f.NC, js: f.JS, mats: f.Mats, done: make(chan protocol.Completion, 100000),
		stores: map[string]objectstore.Store{"memory": objectstore.NewMemory()}}
	f.Completions(t, func(m jetstream.Msg, c protocol.Completion) {
		if m.Headers().Get(protocol.BatchHeader) == "" {
			if got, want := m.Headers().Get(jetstream.MsgIDHeader), c.TaskID+"."+fmt.Sprint(c.Attempt); got != want {
				t.Errorf("completion Nats-Msg-Id = %q, want %q", got, want)
			}
		}
		e.done <- c
	})
	return e
}

// start starts a worker on its own connection with cfg (Conn and Stores
// filled in when empty) and stops it when the test ends.
func (e *fleetEnv) start(cfg worker.Config) *worker.Worker {
	e.t.Helper()
	w := e.newWorker(cfg)
	if err := w.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.Stop(ctx)
	})
	return w
}

func (e *fleetEnv) newWorker(cfg worker.Config) *worker.Worker {
	e.t.Helper()
	if cfg.Conn == nil {
		cfg.Conn = natstest.Connect(e.t, e.srv)
	}
	if cfg.Stores == nil {
		cfg.Stores = e.stores
	}
	if cfg.IdlePoll == 0 {
		cfg.IdlePoll = 100 * time.Millisecond
	}
	w, err := worker.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

var runSeq atomic.Int64

// task returns a valid task of a fresh run.
func task(pipeline, asset, partition string, priority int) protocol.Task {
	run := fmt.Sprintf("run%d", runSeq.Add(1))
	return protocol.Task{V: protocol.Version, ID: protocol.TaskID(run, asset, partition, 1), RunID: run, Pipeline: pipeline,
		Asset: asset, Partition: partition, Priority: priority, Attempt: 1, EnqueuedAt: time.Now().UTC()}
}

// publish publishes t where the coordinator would, and waits for the
// stream to store it.
func (e *fleetEnv) publish(t protocol.Task) {
	e.t.Helper()
	body, perr := protocol.EncodeTask(t)
	if perr != nil {
		e.t.Fatal(perr)
	}
	e.publishRaw(protocol.TaskSubject(t.Pipeline, t.Priority), body, t.ID)
}

func (e *fleetEnv) publishRaw(subject string, body []byte, id string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := e.js.Publish(ctx, subject, body, jetstream.WithMsgID(id)); err != nil {
		e.t.Fatal(err)
	}
	e.ring(subject)
}

// ring rings the bell of a task subject, as a coordinator does once it has
// stored a task message there.
func (e *fleetEnv) ring(subject string) {
	e.t.Helper()
	if err := e.js.Conn().Publish(protocol.BellSubject(subject), nil); err != nil {
		e.t.Fatal(err)
	}
}

// completion returns the next completion.
func (e *fleetEnv) completion() protocol.Completion {
	e.t.Helper()
	select {
	case c := <-e.done:
		return c
	case <-time.After(wait):
		e.t.Fatal("no completion")
		return protocol.Completion{}
	}
}

// record reads the materialization record of an asset/partition.
func (e *fleetEnv) record(pipeline, asset, partition string) *flowstone.Materialization {
	e.t.Helper()
	ent, err := e.mats.Get(context.Background(), bridge.MaterializationKey(pipeline, asset, partition))
	if err != nil {
		e.t.Fatalf("record of %s/%s/%s: %v", pipeline, asset, partition, err)
	}
	m, err := bridge.UnmarshalRecord(ent.Value)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// recordIfAny reads the materialization record of an asset/partition, or
// returns nil if it has none yet.
func (e *fleetEnv) recordIfAny(pipeline, asset, partition string) *flowstone.Materialization {
	e.t.Helper()
	ent, err := e.mats.Get(context.Background(), bridge.MaterializationKey(pipeline, asset, partition))
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatalf("record of %s/%s/%s: %v", pipeline, asset, partition, err)
	}
	m, err := bridge.UnmarshalRecord(ent.Value)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// consumerInfo returns the state of a task consumer.
func (e *fleetEnv) consumerInfo(pipeline string, priority int) *jetstream.ConsumerInfo {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := e.js.Consumer(ctx, protocol.TaskStream, fleet.ConsumerName(pipeline, priority))
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return info
}

// streamMsgs is how many tasks the task stream holds.
func (e *fleetEnv) streamMsgs() uint64 {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), protocol.TaskStream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

// gate is an asset function that reports each call on started and
// returns when a token arrives on release (or its context ends).
type gate struct {
	started chan string // partitions, in call order
	release chan struct{}
	calls   atomic.Int64
	active  atomic.Int64
	peak    atomic.Int64
}

func newGate() *gate {
	return &gate{started: make(chan string, 10000), release: make(chan struct{}, 10000)}
}

func (g *gate) fn(c *flowstone.Context) (any, error) {
	g.calls.Add(1)
	n := g.active.Add(1)
	defer g.active.Add(-1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	g.started <- c.Partition()
	select {
	case <-g.release:
		return c.Partition(), nil
	case <-c.Context().Done():
		return nil, c.Context().Err()
	}
}

// next waits for the next call to start and returns its partition.
func (g *gate) next(t testing.TB) string {
	t.Helper()
	select {
	case p := <-g.started:
		return p
	case <-time.After(wait):
		t.Fatal("the asset never started")
		return ""
	}
}

func gatePipeline(g *gate) *flowstone.Pipeline {
	return flowstone.MustPipeline("gated", flowstone.Asset("gate", g.fn))
}

func errCode(c protocol.Completion) string {
	if c.Error == nil {
		return ""
	}
	return c.Error.Code
}

func itoa(i int) string { return strconv.Itoa(i) }

// waitStopping waits until Stop has begun on w.
func waitStopping(t testing.TB, w *worker.Worker) {
	t.Helper()
	select {
	case <-worker.StopBegun(w):
	case <-time.After(wait):
		t.Fatal("Stop never began")
	}
}

// waitFor waits until cond holds, checking every few milliseconds: for
// state that changes on the server or in a worker with no signal to wait on
// (an ack processed, a counter updated after the completion was published).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// waitSettled waits until a task consumer has nothing pending or
// unacknowledged.
func (e *fleetEnv) waitSettled(pipeline string, priority int) *jetstream.ConsumerInfo {
	e.t.Helper()
	var info *jetstream.ConsumerInfo
	waitFor(e.t, "the tasks of "+pipeline+" to be acked", func() bool {
		info = e.consumerInfo(pipeline, priority)
		return info.NumAckPending == 0 && info.NumPending == 0
	})
	return info
}

// scatterKeys lists the keys of the scatter bucket.
func (e *fleetEnv) scatterKeys() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	kvb, err := e.js.KeyValue(ctx, protocol.ScatterBucket)
	if err != nil {
		return nil, err
	}
	keys, err := kvb.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range keys.Keys() {
		out = append(out, k)
	}
	return out, nil
}

// value reads a completed record's value.
func (e *fleetEnv) value(rec *flowstone.Materialization) []byte {
	e.t.Helper()
	v := rec.Value
	if v == nil {
		e.t.Fatalf("record %s/%s has no value", rec.Asset, rec.Partition)
	}
	if len(v.Inline) > 0 {
		return v.Inline
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	rc, _, err := e.stores[v.Storage].Get(ctx, v.ObjectKey)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}
