// Package coordinator is the engine's NATS face: it serves the FlowStone API
// over request/reply (nats micro), plans runs from the manifests workers
// publish, dispatches ready tasks on JetStream, handles their completions,
// runs scheduled (scheduled_at) and async runs, and resumes in-flight runs
// after a restart.
//
// Several coordinators may serve one fleet: API requests are load-balanced
// by a queue group, each completion is handled by the coordinator that
// dispatched its task, and task publication is deduplicated by task id.
package coordinator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/batcher"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/kv/jskv"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"
)

// Defaults of Config.
const (
	// PollIntervalDefault is how often a dispatched task's record is read
	// back from KV in case its completion message was missed.
	PollIntervalDefault = 2 * time.Second
	// DispatchConcurrencyDefault bounds the tasks one coordinator has in
	// flight at once.
	DispatchConcurrencyDefault = 100_000
)

// Config configures a Coordinator.
type Config struct {
	// Conn is the NATS connection. Required.
	Conn *nats.Conn
	// Stores are the result stores by name, as the workers have them; the
	// coordinator reads results from them to answer get. Required.
	Stores map[string]objectstore.Store
	// DefaultStorage names the store used when neither asset nor run names
	// one. Defaults to the only store.
	DefaultStorage string
	// ID names this coordinator in run records and logs. Defaults to
	// "coord-<hostname>-<pid>".
	ID string
	// Logger receives the coordinator's logs. Defaults to no logging.
	Logger *zerolog.Logger
	// PollInterval is how often an in-flight task's record is re-read from
	// KV, in case its completion was missed. Defaults to
	// PollIntervalDefault.
	PollInterval time.Duration
	// Replicas is how many servers hold each stream, KV bucket and object
	// store the coordinator creates when it is missing, 1 to 5 (3 on a
	// cluster survives losing a server); it never changes one that
	// exists. Defaults to 1.
	Replicas int
}

// Coordinator serves the FlowStone API over NATS and drives runs on the
// fleet. Create it with New, then Start; Stop drains it.
type Coordinator struct {
	cfg    Config
	log    zerolog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream
	tasks  *batcher.Publisher // task publishes, batched per subject
	mats   *jskv.Store
	runs   *jskv.Store
	mfs    *jskv.Store
	engine *flowstone.Engine
	disp   *dispatcher
	reg    *registry

	ctx    context.Context // lives until Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // background loops, stopped by cancel
	runWG  sync.WaitGroup // runs this coordinator drives
	svc    micro.Service
	stager *stager // copies large results for clients (get with Stage)
	subs   []*nats.Subscription
	starts jetstream.ConsumeContext

	mu        sync.Mutex
	scheduled map[string]string // run id -> target materialization key, for cancel
	stopOnce  sync.Once
}

// New checks cfg and returns a Coordinator; it talks to NATS only in Start.
func New(cfg Config) (*Coordinator, error) {
	if cfg.Conn == nil {
		return nil, errors.New("coordinator: Config.Conn is required")
	}
	if len(cfg.Stores) == 0 {
		return nil, errors.New("coordinator: Config.Stores needs at least one object store (the workers' result store)")
	}
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = fmt.Sprintf("coord-%s-%d", host, os.Getpid())
	}
	cfg.ID = sanitizeID(cfg.ID)
	if err := fleet.CheckReplicas("coordinator: Config.Replicas", cfg.Replicas); err != nil {
		return nil, err
	}
	cfg.PollInterval = cmp.Or(cfg.PollInterval, PollIntervalDefault)
	log := zerolog.Nop()
	if cfg.Logger != nil {
		log = cfg.Logger.With().Str("coordinator", cfg.ID).Logger()
	}
	return &Coordinator{cfg: cfg, log: log, nc: cfg.Conn, scheduled: map[string]string{}}, nil
}

// ID returns the coordinator's id.
func (c *Coordinator) ID() string { return c.cfg.ID }

// Start sets up streams and buckets, loads the manifests, resumes in-flight
// runs and starts serving the API. It returns once serving.
func (c *Coordinator) Start(ctx context.Context) error {
	js, err := jetstream.New(c.nc)
	if err != nil {
		return fmt.Errorf("coordinator: jetstream: %w", err)
	}
	c.js = js
	fleetOpts := []fleet.Option{fleet.WithReplicas(c.cfg.Replicas), fleet.WithLogger(c.log)}
	c.stager = newStager(js, c.log, fleetOpts...)
	c.tasks = batcher.New(js, protocol.JoinTaskBatch)
	c.tasks.Stored = c.ring
	if err := fleet.Ensure(ctx, js, fleetOpts...); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	if c.mats, c.runs, c.mfs, err = fleet.Buckets(ctx, js, fleetOpts...); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.disp = &dispatcher{c: c, waiters: map[string]chan protocol.Completion{}, poll: make(chan struct{})}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.disp.pollTicks(c.ctx)
	}()
	c.engine, err = flowstone.NewEngine(flowstone.EngineConfig{
		KV: c.mats, Stores: c.cfg.Stores, DefaultStorage: c.cfg.DefaultStorage,
		Concurrency: DispatchConcurrencyDefault, Dispatcher: c.disp, Logger: &c.log,
	})
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	c.reg = newRegistry(c.mfs, c.log)
	if err := c.reg.start(c.ctx, &c.wg); err != nil {
		c.cancel()
		return fmt.Errorf("coordinator: manifests: %w", err)
	}
	sub, err := c.nc.Subscribe(protocol.DoneSubjects, c.disp.onCompletion)
	if err != nil {
		c.cancel()
		return fmt.Errorf("coordinator: subscribe completions: %w", err)
	}
	sub.SetPendingLimits(-1, -1)
	c.subs = append(c.subs, sub)
	if sub, err = c.nc.Subscribe(cancelBroadcast, c.onCancelBroadcast); err != nil {
		c.cancel()
		return fmt.Errorf("coordinator: subscribe cancels: %w", err)
	}
	c.subs = append(c.subs, sub)
	if err := c.watchDeadLetters(); err != nil {
		c.cancel()
		return err
	}
	if err := c.startSchedules(ctx); err != nil {
		c.cancel()
		return err
	}
	if err := c.resume(ctx); err != nil {
		c.log.Error().Err(err).Msg("resume_failed")
	}
	if err := c.serve(); err != nil {
		c.cancel()
		return err
	}
	// Serving means the server has the API subscriptions: a request sent
	// on another connection right after Start returns must find them.
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	defer fcancel()
	if err := c.nc.FlushWithContext(fctx); err != nil {
		c.cancel()
		return fmt.Errorf("coordinator: flush subscriptions: %w", err)
	}
	c.log.Info().Msg("coordinator_started")
	return nil
}

// Stop stops serving and waits for the runs this coordinator drives, until
// ctx is done; then it abandons them (they are resumed by the next
// coordinator to start, from their records).
func (c *Coordinator) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		if c.svc != nil {
			c.svc.Stop()
		}
		if c.starts != nil {
			c.starts.Stop()
		}
		for _, s := range c.subs {
			s.Unsubscribe()
		}
		done := make(chan struct{})
		go func() { c.runWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
		}
		if c.cancel != nil {
			c.cancel()
		}
		c.wg.Wait()
		if c.engine != nil {
			c.engine.Close()
		}
		c.log.Info().Msg("coordinator_stopped")
	})
	return nil
}

// sanitizeID keeps an id within protocol.ValidID.
func sanitizeID(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-') {
			b[i] = '-'
		}
	}
	if len(b) > protocol.MaxIDBytes {
		b = b[:protocol.MaxIDBytes]
	}
	if len(b) == 0 {
		return "coord-" + nuid.Next()
	}
	return string(b)
}

// ring wakes idle workers once a message on taskSubject is stored (see
// protocol.BellSubject). A lost bell costs a worker's idle poll, no more.
func (c *Coordinator) ring(taskSubject string) {
	if err := c.cfg.Conn.Publish(protocol.BellSubject(taskSubject), nil); err != nil {
		c.log.Debug().Err(err).Str("subject", taskSubject).Msg("bell_failed")
	}
}
