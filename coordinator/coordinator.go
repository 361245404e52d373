// Package coordinator is the engine's NATS face: it serves the FlowStone API
// over request/reply (nats micro), plans runs from the manifests workers
// publish, dispatches ready tasks on JetStream, handles their completions,
// runs scheduled (scheduled_at) and async runs, and resumes in-flight runs
// after a restart.
//
// Several coordinators may serve one fleet: API requests are load-balanced
// by a queue group, each completion is handled by the coordinator that
// dispatched its task, and task publication is deduplicated by task id.
//
// The coordinator role of deploy/nats.conf is what a coordinator needs
// (internal/security runs one on it): it answers only the requests it
// receives (allow_responses), publishes tasks, bells, schedules, cancels
// and dead letters, owns the runs bucket, and never consumes tasks.
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
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/startstop"
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
	// ScheduleHorizon is how far ahead a run may be scheduled
	// (scheduled_at); a run scheduled later is refused as a bad request.
	// The schedules stream keeps its messages a day longer; start-up fails
	// if an existing one keeps them for less than the horizon. Defaults to
	// 366 days.
	ScheduleHorizon time.Duration
	// Limits bounds the streams, buckets and object stores the
	// coordinator creates when they are missing (existing ones are kept
	// as they are); its ScheduleHorizon is ScheduleHorizon's. Give every
	// daemon of a fleet the same. Defaults to protocol.StreamLimits'
	// defaults.
	Limits protocol.StreamLimits
	// SignalSecret signs the tokens of signal gates (flowstone.WaitForSignal)
	// and verifies the signals delivered with them: at least 16 bytes,
	// the same on every coordinator of the fleet, and never logged. There
	// is no default: without it, runs that may reach a signal gate are
	// refused with a config error, and so are signals.
	SignalSecret []byte
	// Clock tells the scheduler of schedules and sensors the time.
	// Defaults to the wall clock; tests give a fake one, and move it
	// instead of sleeping until a tick.
	Clock Clock
}

// Coordinator serves the FlowStone API over NATS and drives runs on the
// fleet. Create it with New, then Start; Stop drains it.
//
// Its lifecycle: Start returns once serving, or with an error after undoing
// all it did (subscriptions, the API service, the schedule consumer, the
// stores it opened, its goroutines). Stop stops taking requests and
// scheduled runs, lets the runs and requests under way finish until its
// context ends, then cancels them (their runs are resumed by the next
// coordinator, from their records) and waits for every goroutine the
// coordinator started before it closes the stores it opened.
type Coordinator struct {
	cfg    Config
	log    zerolog.Logger
	obs    *observations
	nc     *nats.Conn
	js     jetstream.JetStream
	tasks  *batcher.Publisher // task publishes, batched per subject
	mats   *jskv.Store
	runs   *jskv.Store
	mfs    *jskv.Store
	autoKV *jskv.Store
	// auto runs the fleet's schedules and sensors (see automation.go).
	auto   bridge.Automation
	engine *flowstone.Engine
	// records writes materialization records (the engine's writer: one
	// cache of decoded records for planning and dispatch).
	records *bridge.Records
	disp    *dispatcher
	reg     *registry

	ctx    context.Context // lives until Stop: runs, requests and loops
	cancel context.CancelCauseFunc
	loops  sync.WaitGroup  // background loops, started by Start only, ended by cancel
	work   startstop.Group // runs this coordinator drives, and requests it serves
	calls  startstop.Group // subscription callbacks under way (NATS's goroutines)
	svc    micro.Service
	stager *stager // copies large results for clients (get with Stage)
	subs   []*nats.Subscription
	starts jetstream.ConsumeContext

	bf backfills // the backfills this coordinator drives

	mu        sync.Mutex
	scheduled map[string]string // run id -> target materialization key, for cancel
	started   bool

	autoRunning bool // auto was started

	stopOnce sync.Once
	stopErr  error
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
	if cfg.ScheduleHorizon < 0 {
		return nil, fmt.Errorf("coordinator: Config.ScheduleHorizon is negative (%v); 0 means the default, %v", cfg.ScheduleHorizon, fleet.ScheduleHorizonDefault)
	}
	cfg.ScheduleHorizon = cmp.Or(cfg.ScheduleHorizon, fleet.ScheduleHorizonDefault)
	if err := cfg.Limits.Check(); err != nil {
		return nil, fmt.Errorf("coordinator: Config.Limits: %w", err)
	}
	log := zerolog.Nop()
	if cfg.Logger != nil {
		log = cfg.Logger.With().Str("coordinator", cfg.ID).Logger()
	}
	return &Coordinator{cfg: cfg, log: log, nc: cfg.Conn, scheduled: map[string]string{}, obs: newObservations()}, nil
}

// limits are the stream limits the coordinator creates with: Config's,
// with its schedule horizon.
func (c *Coordinator) limits() fleet.Limits {
	l := c.cfg.Limits
	l.ScheduleHorizon = c.cfg.ScheduleHorizon
	return l
}

// ID returns the coordinator's id.
func (c *Coordinator) ID() string { return c.cfg.ID }

// Start sets up streams and buckets, loads the manifests, starts serving
// the API and resumes in-flight runs. It returns once serving. If it
// fails, it undoes what it did before it returns: nothing keeps running.
// A Coordinator starts once.
func (c *Coordinator) Start(ctx context.Context) (err error) {
	c.mu.Lock()
	again := c.started
	c.started = true
	c.mu.Unlock()
	if again {
		return errors.New("coordinator: Start called twice: a Coordinator runs once; build another with New")
	}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	defer func() {
		if err == nil {
			return
		}
		// Undo at once: an ended context makes the stop hard.
		now, cancel := context.WithCancel(context.Background())
		cancel()
		var undo error
		c.stopOnce.Do(func() { undo = c.teardown(now) })
		if undo != nil {
			err = errors.Join(err, fmt.Errorf("coordinator: undo a failed start: %w", undo))
		}
	}()
	js, err := jetstream.New(c.nc)
	if err != nil {
		return fmt.Errorf("coordinator: jetstream: %w", err)
	}
	c.js = js
	fleetOpts := []fleet.Option{fleet.WithReplicas(c.cfg.Replicas), fleet.WithLogger(c.log),
		fleet.WithLimits(c.limits())}
	c.stager = newStager(js, c.log, fleetOpts...)
	c.tasks = batcher.New(js, protocol.JoinTaskBatch)
	c.tasks.Stored = c.ring
	if err := fleet.Ensure(ctx, js, fleetOpts...); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	if c.mats, c.runs, c.mfs, err = fleet.Buckets(ctx, js, fleetOpts...); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	c.disp = &dispatcher{c: c, waiters: map[string]chan protocol.Completion{}, poll: make(chan struct{})}
	c.loops.Add(1)
	go func() {
		defer c.loops.Done()
		c.disp.pollTicks(c.ctx)
	}()
	c.engine, err = bridge.NewEngine(flowstone.EngineConfig{
		KV: c.mats, Stores: c.cfg.Stores, DefaultStorage: c.cfg.DefaultStorage,
		Concurrency: DispatchConcurrencyDefault, Logger: &c.log, SignalSecret: c.cfg.SignalSecret,
	}, c.disp)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	c.records = bridge.EngineExecutor(c.engine).Records()
	c.reg = newRegistry(c.mfs, c.log)
	if err := c.reg.start(c.ctx, &c.loops); err != nil {
		return fmt.Errorf("coordinator: manifests: %w", err)
	}
	if err := c.openAutomation(ctx, fleetOpts...); err != nil {
		return err
	}
	if err := c.subscribe(protocol.DoneSubjects, "", c.disp.onCompletion); err != nil {
		return fmt.Errorf("coordinator: subscribe completions: %w", err)
	}
	c.subs[len(c.subs)-1].SetPendingLimits(-1, -1)
	if err := c.subscribe(cancelBroadcast, "", c.onCancelBroadcast); err != nil {
		return fmt.Errorf("coordinator: subscribe cancels: %w", err)
	}
	if err := c.startGates(); err != nil {
		return err
	}
	if err := c.watchDeadLetters(); err != nil {
		return err
	}
	if err := c.startSchedules(ctx); err != nil {
		return err
	}
	if err := c.serve(); err != nil {
		return err
	}
	// Serving means the server has the API subscriptions: a request sent
	// on another connection right after Start returns must find them.
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	defer fcancel()
	if err := c.nc.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("coordinator: flush subscriptions: %w", err)
	}
	// Last, once nothing can fail: a failed Start never drives a run.
	c.startBackfills()
	if err := c.resume(ctx); err != nil {
		c.log.Error().Err(err).Msg("resume_failed")
	}
	c.auto.Start()
	c.mu.Lock()
	c.autoRunning = true
	c.mu.Unlock()
	c.log.Info().Msg("coordinator_started")
	return nil
}

// subscribe subscribes h to subject (in queue group queue, if not empty),
// its calls counted so that Stop can wait for them.
func (c *Coordinator) subscribe(subject, queue string, h nats.MsgHandler) error {
	counted := func(m *nats.Msg) { c.calls.Do(func() { h(m) }) }
	var sub *nats.Subscription
	var err error
	if queue == "" {
		sub, err = c.nc.Subscribe(subject, counted)
	} else {
		sub, err = c.nc.QueueSubscribe(subject, queue, counted)
	}
	if err != nil {
		return err
	}
	c.subs = append(c.subs, sub)
	return nil
}

// Stop stops serving the API and taking scheduled runs, and waits for the
// runs this coordinator drives and the requests it is answering, until ctx
// is done; then it cancels them: their runs are resumed by the next
// coordinator to start (or adopt them), from their records. Then it waits
// for its goroutines and closes the stores it opened.
//
// It returns what went wrong, joined: an error wrapping ctx's cause if
// runs or requests were cut short (errors.Is(err,
// context.DeadlineExceeded) for a grace period that ran out), and any
// failure to stop a part. Stop may be called more than once, and
// concurrently: every call returns once the first is done, with its
// result. Stop without a successful Start does nothing.
func (c *Coordinator) Stop(ctx context.Context) error {
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if !started {
		return nil
	}
	c.stopOnce.Do(func() {
		c.stopErr = c.teardown(ctx)
		c.log.Info().AnErr("error", c.stopErr).Msg("coordinator_stopped")
	})
	return c.stopErr
}

// teardown stops whatever Start got to, in the order that lets the work
// under way end well: intake first, then the work (soft until ctx ends,
// then hard), then what the work needed (completions, the poll clock,
// heartbeats, task publishing, the engine), then the stores.
func (c *Coordinator) teardown(ctx context.Context) error {
	var errs []error
	if c.svc != nil {
		if err := c.svc.Stop(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("coordinator: stop the API service: %w", err))
		}
	}
	if c.starts != nil {
		c.starts.Stop()
	}
	c.mu.Lock()
	autoRunning := c.autoRunning
	c.mu.Unlock()
	if autoRunning {
		// No tick fires and no sensor is evaluated from now on; a tick
		// due is fired by the other coordinators, or caught up.
		c.auto.Stop()
	}
	// A request or a scheduled run arriving from now on is refused (the
	// client retries; the run stays in its record for adoption).
	if err := c.work.Drain(ctx, c.handBack); err != nil {
		errs = append(errs, fmt.Errorf("coordinator: stop: runs and requests under way were cut short; their runs are resumed from their records: %w", err))
	}
	for _, s := range c.subs {
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			errs = append(errs, fmt.Errorf("coordinator: unsubscribe %s: %w", s.Subject, err))
		}
	}
	if c.cancel != nil {
		c.cancel(startstop.ErrStopped)
	}
	// Callbacks end quickly once the context is cancelled.
	c.calls.Wait(context.Background())
	c.loops.Wait()
	if c.tasks != nil {
		if err := c.tasks.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("coordinator: %w", err))
		}
	}
	if c.engine != nil {
		if err := c.engine.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("coordinator: %w", err))
		}
	}
	for _, s := range []*jskv.Store{c.mats, c.runs, c.mfs, c.autoKV} {
		if s != nil {
			s.Close()
		}
	}
	return errors.Join(errs...)
}

// handBack is the hard stop of the runs under way: they are left to the
// next coordinator, which resumes them from their records. So the records
// are fenced first: the materializations store is closed, and every write
// the cancelled runs still attempt fails, instead of recording their
// steps cancelled (a terminal state that clients would take for the
// outcome, and that the resumed run would find as its own).
func (c *Coordinator) handBack() {
	if c.mats != nil {
		c.mats.Close()
	}
	c.cancel(errHandedBack)
}

// errHandedBack is the cause of a coordinator's hard stop: its runs are not
// over, they are handed to the next coordinator.
var errHandedBack = fmt.Errorf("%w: %w", startstop.ErrStopped, bridge.ErrHandedBack)

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
