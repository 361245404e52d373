// Package devfleet assembles a whole FlowStone fleet in one process: an
// embedded nats-server with JetStream, object stores (files, the default,
// and the JetStream object store that cmd/worker uses by default), a
// coordinator and in-process workers hosting the bundled pipelines. It is what `fsctl
// dev` and `fsctl demo` run, and what the client's and the CLI's tests run
// against: every part is the real one, talking over NATS.
package devfleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/filestore"
	"github.com/flowstone-go/flowstone/objectstore/jsstore"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Defaults and names of a dev fleet.
const (
	// PortDefault is the NATS client port when Config.Port is 0: the
	// standard one, so fsctl and cmd/worker find the fleet without
	// --server.
	PortDefault = 4222
	// StorageName is the name of the fleet's default object store: files
	// under Dir/objects.
	StorageName = "file"
	// JetStreamStorageName is the name of its JetStream object store (bucket
	// protocol.ResultsBucket), the default store of cmd/worker, so that
	// workers started with their defaults can join the fleet.
	JetStreamStorageName = "jetstream"
	// ReadyTimeoutDefault bounds how long Start waits for the workers'
	// pipelines to be known to the coordinator.
	ReadyTimeoutDefault = 15 * time.Second
)

// Config configures a dev fleet.
type Config struct {
	// Port is the NATS client port on 127.0.0.1; -1 picks a free one.
	// Defaults to PortDefault.
	Port int
	// Dir holds the JetStream store (Dir/jetstream) and the results
	// (Dir/objects), so a fleet restarted on the same Dir keeps its data.
	// Defaults to a new temporary directory that Stop removes.
	Dir string
	// Workers is how many in-process workers host the bundled pipelines;
	// 0 leaves the work to workers started elsewhere (cmd/worker).
	// Defaults to 0.
	Workers int
	// Concurrency is how many tasks each worker runs at once. Defaults to
	// worker.ConcurrencyDefault.
	Concurrency int
	// SourceLatency is added to every execution of daily_sales.orders.
	// Defaults to 0.
	SourceLatency time.Duration
	// Pipelines are the pipelines the workers host. Defaults to the
	// bundled ones, pipelines.All(pipelines.Options{SourceLatency}).
	Pipelines []*flowstone.Pipeline
	// Logger receives the coordinator's and workers' logs. Defaults to no
	// logging.
	Logger *zerolog.Logger
	// SignalSecret is the coordinator's signal secret (signal gates'
	// tokens). Defaults to none: runs that reach a signal gate are
	// refused.
	SignalSecret []byte
}

// Fleet is a running dev fleet. Stop it with Stop.
type Fleet struct {
	srv     *server.Server
	dir     string
	tempDir bool
	conns   []*nats.Conn
	coord   *coordinator.Coordinator
	workers []*worker.Worker
}

// Start starts a fleet and returns once its coordinator serves the API and
// knows every pipeline its workers host. On failure it stops what it
// started.
func Start(ctx context.Context, cfg Config) (f *Fleet, err error) {
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("devfleet: Config.Workers is %d; use 0 or more", cfg.Workers)
	}
	f = &Fleet{dir: cfg.Dir}
	defer func() {
		if err != nil {
			f.Stop(context.WithoutCancel(ctx))
			f = nil
		}
	}()
	if f.dir == "" {
		if f.dir, err = os.MkdirTemp("", "flowstone-dev-"); err != nil {
			return f, fmt.Errorf("devfleet: temp dir: %w", err)
		}
		f.tempDir = true
	}
	if err := f.startServer(cfg); err != nil {
		return f, err
	}
	store, err := filestore.New(filepath.Join(f.dir, "objects"))
	if err != nil {
		return f, fmt.Errorf("devfleet: object store: %w", err)
	}
	nc, err := f.connect("flowstone-dev-coordinator")
	if err != nil {
		return f, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return f, fmt.Errorf("devfleet: jetstream: %w", err)
	}
	jstore, err := jsstore.New(ctx, js, protocol.ResultsBucket)
	if err != nil {
		return f, fmt.Errorf("devfleet: jetstream object store: %w", err)
	}
	stores := map[string]objectstore.Store{StorageName: store, JetStreamStorageName: jstore}

	if f.coord, err = coordinator.New(coordinator.Config{Conn: nc, Stores: stores, DefaultStorage: StorageName, ID: "dev-coordinator", Logger: cfg.Logger,
		SignalSecret: cfg.SignalSecret}); err != nil {
		return f, fmt.Errorf("devfleet: coordinator: %w", err)
	}
	if err := f.coord.Start(ctx); err != nil {
		f.coord = nil
		return f, fmt.Errorf("devfleet: start coordinator: %w", err)
	}
	hosted := cfg.Pipelines
	if len(hosted) == 0 {
		hosted = pipelines.All(pipelines.Options{SourceLatency: cfg.SourceLatency})
	}
	for i := range cfg.Workers {
		nc, err := f.connect(fmt.Sprintf("flowstone-dev-worker-%d", i+1))
		if err != nil {
			return f, err
		}
		w, err := worker.New(worker.Config{Conn: nc, Pipelines: hosted,
			Stores: stores, DefaultStorage: StorageName, Concurrency: cfg.Concurrency, ID: fmt.Sprintf("dev-worker-%d", i+1), Logger: cfg.Logger})
		if err != nil {
			return f, fmt.Errorf("devfleet: worker %d: %w", i+1, err)
		}
		if err := w.Start(ctx); err != nil {
			return f, fmt.Errorf("devfleet: start worker %d: %w", i+1, err)
		}
		f.workers = append(f.workers, w)
	}
	if cfg.Workers > 0 {
		names := make([]string, len(hosted))
		for i, p := range hosted {
			names[i] = p.Name()
		}
		if err := f.awaitPipelines(ctx, names); err != nil {
			return f, err
		}
	}
	return f, nil
}

func (f *Fleet) startServer(cfg Config) error {
	port := cfg.Port
	if port == 0 {
		port = PortDefault
	}
	if port > 0 {
		// nats-server only notices a taken port in its accept loop; ask
		// first, so the error is immediate and says what to do.
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("devfleet: port %d on 127.0.0.1 is not free (%v): pick another with --port, or -1 for any", port, err)
		}
		l.Close()
	}
	opts := &server.Options{
		ServerName: "flowstone-dev",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(f.dir, "jetstream"),
		NoLog:      true,
		NoSigs:     true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("devfleet: nats-server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("devfleet: nats-server did not start on 127.0.0.1:%d: is the port taken? pick another with --port (or -1 for any)", port)
	}
	f.srv = srv
	return nil
}

func (f *Fleet) connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect(f.srv.ClientURL(), nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("devfleet: connect %s: %w", name, err)
	}
	f.conns = append(f.conns, nc)
	return nc, nil
}

// awaitPipelines waits until the coordinator lists every named pipeline.
func (f *Fleet) awaitPipelines(ctx context.Context, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeoutDefault)
	defer cancel()
	nc, err := f.connect("flowstone-dev-ready")
	if err != nil {
		return err
	}
	c, err := client.New(nc)
	if err != nil {
		return err
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := c.Pipelines(ctx)
		if err == nil && hostsAll(got, names) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devfleet: the coordinator did not learn the workers' pipelines %v in time (last error: %v)", names, err)
		case <-tick.C:
		}
	}
}

func hostsAll(got []protocol.PipelineSummary, names []string) bool {
	for _, n := range names {
		if !slices.ContainsFunc(got, func(s protocol.PipelineSummary) bool { return s.Name == n && s.Workers > 0 }) {
			return false
		}
	}
	return true
}

// URL is the fleet's NATS URL, for client.Connect, fsctl --server and
// cmd/worker.
func (f *Fleet) URL() string { return f.srv.ClientURL() }

// Dir is the fleet's data directory.
func (f *Fleet) Dir() string { return f.dir }

// ObjectsDir is where the fleet's file object store keeps results.
func (f *Fleet) ObjectsDir() string { return filepath.Join(f.dir, "objects") }

// Workers is how many in-process workers the fleet runs.
func (f *Fleet) Workers() int { return len(f.workers) }

// Stop stops the workers (draining their tasks until ctx is done), the
// coordinator and the server, and removes the data directory if Start
// made it.
func (f *Fleet) Stop(ctx context.Context) error {
	var errs []error
	for _, w := range f.workers {
		errs = append(errs, w.Stop(ctx))
	}
	f.workers = nil
	if f.coord != nil {
		errs = append(errs, f.coord.Stop(ctx))
		f.coord = nil
	}
	for _, nc := range f.conns {
		nc.Close()
	}
	f.conns = nil
	if f.srv != nil {
		f.srv.Shutdown()
		f.srv.WaitForShutdown()
		f.srv = nil
	}
	if f.tempDir {
		errs = append(errs, os.RemoveAll(f.dir))
		f.tempDir = false
	}
	return errors.Join(errs...)
}
