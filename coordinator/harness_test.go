package coordinator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/filestore"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// env is a real fleet in one process: an embedded nats-server with
// JetStream, a file object store, a coordinator and workers.
type env struct {
	t      *testing.T
	srv    *server.Server
	nc     *nats.Conn
	stores map[string]objectstore.Store
	coord  *coordinator.Coordinator
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.Server(t)
	fs, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, nc: natstest.Connect(t, srv), stores: map[string]objectstore.Store{"file": fs}}
	return e
}

func (e *env) startCoordinator(id string) *coordinator.Coordinator {
	e.t.Helper()
	return e.startCoordinatorWith(coordinator.Config{ID: id})
}

// startCoordinatorWith starts a coordinator with cfg, its connection and
// stores filled in (and a short poll interval unless cfg sets one).
func (e *env) startCoordinatorWith(cfg coordinator.Config) *coordinator.Coordinator {
	e.t.Helper()
	cfg.Conn, cfg.Stores = natstest.Connect(e.t, e.srv), e.stores
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	c, err := coordinator.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Stop(ctx)
	})
	e.coord = c
	return c
}

func (e *env) startWorker(ps ...*flowstone.Pipeline) *worker.Worker {
	e.t.Helper()
	return e.startWorkerWith(worker.Config{Concurrency: 8}, ps...)
}

// startWorkerWith starts a worker with cfg, its connection, pipelines and
// stores filled in.
func (e *env) startWorkerWith(cfg worker.Config, ps ...*flowstone.Pipeline) *worker.Worker {
	e.t.Helper()
	cfg.Conn, cfg.Pipelines, cfg.Stores = natstest.Connect(e.t, e.srv), ps, e.stores
	w, err := worker.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.Stop(ctx)
	})
	return w
}

// waitPipeline waits until a coordinator knows the pipeline.
func (e *env) waitPipeline(name string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		rep, err := call[protocol.PipelinesReply](e, protocol.VerbPipelines, protocol.PipelinesRequest{V: protocol.Version})
		if err == nil {
			for _, p := range rep.Pipelines {
				if p.Name == name {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("pipeline %s never registered", name)
}

// call sends a request and decodes the reply.
func call[T protocol.ReplyBody](e *env, verb string, req protocol.Request) (T, *protocol.Error) {
	e.t.Helper()
	body, perr := protocol.EncodeRequest(req)
	if perr != nil {
		var zero T
		return zero, perr
	}
	return callRaw[T](e, verb, body)
}

func callRaw[T protocol.ReplyBody](e *env, verb string, body []byte) (T, *protocol.Error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msg, err := e.nc.RequestWithContext(ctx, protocol.APISubject(verb), body)
	if err != nil {
		e.t.Fatalf("%s request: %v", verb, err)
	}
	return protocol.DecodeReply[T](msg.Data)
}

// waitRun watches a run record until it is terminal.
func (e *env) waitRun(runID string) protocol.RunRecord {
	e.t.Helper()
	js, _ := jetstream.New(e.nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, protocol.RunsBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := kv.Watch(ctx, protocol.RunKey(runID))
	if err != nil {
		e.t.Fatal(err)
	}
	defer w.Stop()
	for {
		select {
		case ent := <-w.Updates():
			if ent == nil {
				continue
			}
			rec, perr := protocol.DecodeRunRecord(ent.Value())
			if perr != nil {
				e.t.Fatal(perr)
			}
			if rec.State.Terminal() {
				return rec
			}
		case <-ctx.Done():
			e.t.Fatalf("run %s did not finish", runID)
		}
	}
}

// run starts a run and waits for its end.
func (e *env) run(req protocol.RunRequest) (protocol.RunReply, protocol.RunRecord) {
	e.t.Helper()
	req.V = protocol.Version
	rep, perr := call[protocol.RunReply](e, protocol.VerbRun, req)
	if perr != nil {
		e.t.Fatalf("run %s/%s: %v", req.Pipeline, req.Asset, perr)
	}
	if rep.Cached {
		return rep, protocol.RunRecord{State: protocol.StateCompleted, Cached: true}
	}
	return rep, e.waitRun(rep.RunID)
}

func wantCode(t *testing.T, err *protocol.Error, code string) {
	t.Helper()
	if err == nil || err.Code != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
	if err.Message == "" {
		t.Fatalf("error %s has no message", code)
	}
	if !errors.Is(err, &protocol.Error{Code: code}) {
		t.Fatalf("errors.Is failed for %s", code)
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
