package fleetbench

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/filestore"
	"github.com/flowstone-go/flowstone/objectstore/jsstore"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// setupTimeout bounds starting and stopping a fleet and the checks after
// the timed part; the timed part itself has no deadline of ours.
const setupTimeout = 2 * time.Minute

// Result stores a fleet can run with.
const (
	storeFile      = "file"      // filestore, fsync per object: fsctl dev's default
	storeJetStream = "jetstream" // JetStream object store: cmd/worker's default
	storeMemory    = "memory"    // in-process only: a diagnostic, it shows what storing costs
)

// fleetConfig shapes a benchmark fleet.
type fleetConfig struct {
	store       string // storeFile, storeJetStream or storeMemory
	workers     int    // in-process workers, each on its own connection
	concurrency int    // tasks per worker; 0 = worker.ConcurrencyDefault
	benchOnly   bool   // host only the bench pipeline, not every bundled one
	noEvents    bool   // workers publish no telemetry events
	progress    bool   // the backfill asks for progress (OnProgress)
}

// benchFleet is a coordinator and workers in this process, each part on its
// own NATS connection to an embedded server, as separate processes would be.
type benchFleet struct {
	srv     *server.Server
	coord   *coordinator.Coordinator
	workers []*worker.Worker
	client  *client.Client
	js      jetstream.JetStream  // the client's, for checks
	metrics *prometheus.Registry // the coordinator's
}

// taskMessages reports how many task messages the coordinator published
// and how many tasks they carried (batches hold several).
func (f *benchFleet) taskMessages(b *testing.B) (msgs, tasks float64) {
	mfs, err := f.metrics.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "flowstone_task_messages_published_total":
			msgs = mf.GetMetric()[0].GetCounter().GetValue()
		case "flowstone_tasks_published_total":
			tasks = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return msgs, tasks
}

// startFleet starts a fleet and waits until the coordinator knows the
// workers' pipelines. Everything stops when the benchmark ends.
func startFleet(b *testing.B, cfg fleetConfig) *benchFleet {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	f := &benchFleet{}
	// Each part runs under a pprof label (part=server, coordinator,
	// worker, client) that the goroutines it starts inherit, so a CPU
	// profile tells the parts apart: go tool pprof -tags, -tagfocus.
	as("server", func() { f.srv = natstest.Server(b) })
	dir := b.TempDir()
	memory := objectstore.NewMemory()
	// stores builds the result stores of one process on its connection.
	stores := func(nc *nats.Conn) map[string]objectstore.Store {
		var s objectstore.Store
		var err error
		switch cfg.store {
		case storeFile:
			s, err = filestore.New(filepath.Join(dir, "objects"))
		case storeJetStream:
			var js jetstream.JetStream
			if js, err = jetstream.New(nc); err == nil {
				s, err = jsstore.New(ctx, js, protocol.ResultsBucket)
			}
		case storeMemory:
			s = memory
		default:
			err = fmt.Errorf("unknown store %q", cfg.store)
		}
		if err != nil {
			b.Fatalf("object store %s: %v", cfg.store, err)
		}
		return map[string]objectstore.Store{cfg.store: s}
	}
	hosted := pipelines.All(pipelines.Options{})
	if cfg.benchOnly {
		hosted = []*flowstone.Pipeline{pipelines.Bench()}
	}

	as("coordinator", func() {
		cnc := connect(b, f.srv, "coordinator")
		coord, err := coordinator.New(coordinator.Config{Conn: cnc, Stores: stores(cnc), DefaultStorage: cfg.store, ID: "bench-coordinator"})
		if err != nil {
			b.Fatal(err)
		}
		if err := coord.Start(ctx); err != nil {
			b.Fatal(err)
		}
		f.coord = coord
		f.metrics = prometheus.NewRegistry()
		coord.RegisterMetrics(f.metrics)
	})
	b.Cleanup(func() { stopFleet(b, f) })
	as("worker", func() {
		for i := range cfg.workers {
			wnc := connect(b, f.srv, fmt.Sprintf("worker-%d", i+1))
			w, err := worker.New(worker.Config{Conn: wnc, Pipelines: hosted, Stores: stores(wnc), DefaultStorage: cfg.store,
				Concurrency: cfg.concurrency, ID: fmt.Sprintf("bench-worker-%d", i+1), NoEvents: cfg.noEvents})
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Start(ctx); err != nil {
				b.Fatal(err)
			}
			f.workers = append(f.workers, w)
		}
	})
	as("client", func() {
		clnc := connect(b, f.srv, "client")
		var err error
		if f.client, err = client.New(clnc); err != nil {
			b.Fatal(err)
		}
		if f.js, err = jetstream.New(clnc); err != nil {
			b.Fatal(err)
		}
	})
	for {
		got, err := f.client.Pipelines(ctx)
		if err == nil && slices.ContainsFunc(got, func(s protocol.PipelineSummary) bool { return s.Name == "bench" && s.Workers == cfg.workers }) {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("the coordinator never saw %d workers host bench: %v %v", cfg.workers, got, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return f
}

// as runs fn, and every goroutine it starts, under the pprof label
// part=name.
func as(part string, fn func()) {
	pprof.Do(context.Background(), pprof.Labels("part", part), func(context.Context) { fn() })
}

func stopFleet(b *testing.B, f *benchFleet) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	for _, w := range f.workers {
		if err := w.Stop(ctx); err != nil {
			b.Errorf("stop worker %s: %v", w.ID(), err)
		}
	}
	if err := f.coord.Stop(ctx); err != nil {
		b.Errorf("stop coordinator: %v", err)
	}
}

func connect(b *testing.B, s *server.Server, name string) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name("fleetbench-"+name))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

// awaitSucceeded waits until the workers have counted n succeeded tasks
// in all. A worker counts a task once JetStream has stored its completion,
// which may be after the coordinator has acted on that completion.
func (f *benchFleet) awaitSucceeded(b *testing.B, n int) {
	b.Helper()
	deadline := time.Now().Add(setupTimeout)
	for {
		var got, failed uint64
		for _, w := range f.workers {
			st := w.Stats()
			got, failed = got+st.Succeeded, failed+st.Failed
		}
		switch {
		case failed > 0:
			b.Fatalf("the workers failed %d tasks", failed)
		case got == uint64(n):
			return
		case got > uint64(n) || time.Now().After(deadline):
			b.Fatalf("the workers succeeded %d tasks, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// completedRecords counts the completed materialization records of
// pipeline/asset in the fleet's KV bucket, and reports each other state it
// meets.
func (f *benchFleet) completedRecords(b *testing.B, pipeline, asset string) int {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	mats, err := f.js.KeyValue(ctx, protocol.MaterializationsBucket)
	if err != nil {
		b.Fatal(err)
	}
	key := bridge.MaterializationKey(pipeline, asset, "x")
	w, err := mats.Watch(ctx, key[:strings.LastIndexByte(key, '.')]+".*", jetstream.IgnoreDeletes())
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	n := 0
	for e := range w.Updates() {
		if e == nil {
			return n
		}
		rec, err := bridge.UnmarshalRecord(e.Value())
		if err != nil {
			b.Fatalf("record %s: %v", e.Key(), err)
		}
		if rec.State != flowstone.StateCompleted {
			b.Errorf("record %s is %s", e.Key(), rec.State)
			continue
		}
		n++
	}
	b.Fatalf("the watch of %s/%s ended early: %v", pipeline, asset, ctx.Err())
	return 0
}

// reportPercentiles reports the p50 and p99 (nearest rank) of ds in
// microseconds.
func reportPercentiles(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		return float64(ds[min(max(i, 0), len(ds)-1)]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	b.ReportMetric(at(1), "max-µs") // a stall shows here, not in the p99
}

// msgMeter counts the messages the server receives and sends (publishes,
// API requests and replies, acks, deliveries; clients and JetStream's
// internal ones alike) over the timed part of a benchmark.
type msgMeter struct {
	srv     *server.Server
	in, out int64
}

func startMsgs(b *testing.B, srv *server.Server) msgMeter {
	in, out := serverMsgs(b, srv)
	return msgMeter{srv: srv, in: in, out: out}
}

// report reports the messages per operation, in and out of the server.
func (m msgMeter) report(b *testing.B, n int, op string) {
	in, out := serverMsgs(b, m.srv)
	b.ReportMetric(float64(in-m.in)/float64(n), "srv-in/"+op)
	b.ReportMetric(float64(out-m.out)/float64(n), "srv-out/"+op)
}

func serverMsgs(b *testing.B, srv *server.Server) (in, out int64) {
	v, err := srv.Varz(&server.VarzOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return v.InMsgs, v.OutMsgs
}

// cpuMeter measures the CPU time this process spends (every part of the
// fleet and the server are in it) over the timed part of a benchmark.
type cpuMeter struct{ start time.Duration }

func startCPU() cpuMeter { return cpuMeter{start: processCPU()} }

// report reports the CPU time per operation in microseconds, under unit.
func (m cpuMeter) report(b *testing.B, n int, unit string) {
	used := processCPU() - m.start
	if used > 0 && n > 0 {
		b.ReportMetric(float64(used)/float64(time.Microsecond)/float64(n), unit)
	}
}
