package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/batcher"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/gopool"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/kv/jskv"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// HardStopWait bounds how long Stop waits, once its context is done and the
// running tasks' contexts are cancelled, for the tasks to return. Tasks whose
// assets ignore their context longer than this are handed back to the queue
// anyway and left to finish in the background.
const HardStopWait = 5 * time.Second

// publishTimeout bounds the wait for JetStream to confirm a completion.
const publishTimeout = 10 * time.Second

// flushTimeout bounds a flush of the connection when the caller's context
// has no deadline.
const flushTimeout = 5 * time.Second

// retryDelay is how long a task whose completion could not be published
// waits before it is delivered again.
const retryDelay = time.Second

// Worker consumes the tasks of the pipelines it hosts from JetStream and
// executes them with the shared executor. See the package documentation.
//
// A Worker is safe for concurrent use. It runs from Start to Stop, once.
type Worker struct {
	cfg     Config
	log     zerolog.Logger
	js      jetstream.JetStream
	x       *bridge.Executor
	hosted  []*hosted
	metrics *metrics
	stats   counters

	slots *slots        // one per executing task
	pool  gopool.Pool   // goroutines for tasks, reused
	wake  chan struct{} // rung when a task is published while idle

	// bells maps each bell subject to its consumer (built by Start, read
	// only after); rung collects the consumers rung while idle.
	bells   map[string]*source
	rungMu  sync.Mutex
	rung    map[*source]bool
	rungAll bool

	// Set by Start.
	done       *batcher.Publisher // completions, batched per pipeline
	sources    [protocol.MaxPriority + 1][]*source
	manifests  kv.Store
	scatter    kv.Store // batch outcomes of scatters (protocol.ScatterBucket)
	itemSrcs   []*itemSource
	closers    []*jskv.Store
	cancelSub  *nats.Subscription
	sensors    *sensorServer
	events     *eventBatcher // nil with Config.NoEvents
	unsubEvent func()
	stopFetch  context.CancelFunc // ends the dispatcher
	queue      context.Context    // tasks wait for a slot under it
	stopQueue  context.CancelFunc // hands back the tasks waiting for a slot
	stopBG     context.CancelFunc // ends heartbeats and manifest refresh
	fetchLoop  sync.WaitGroup
	background sync.WaitGroup
	tasks      sync.WaitGroup

	mu        sync.Mutex
	started   bool // Start was called
	live      bool // Start succeeded
	stopping  bool
	running   map[*task]struct{}
	messages  map[*delivery]struct{} // delivered messages not yet settled
	cancelled map[string]time.Time   // run id → until when its tasks are refused
	stopBegun chan struct{}          // closed when Stop begins
	stopped   chan struct{}
	stopErr   error
}

// hosted is one pipeline this worker hosts.
type hosted struct {
	p    *flowstone.Pipeline
	name string
	// optional lists each asset's optional dependencies (optional branches
	// of a join included): the coordinator
	// leaves a missing one out of the task, the executor wants it marked.
	optional map[string][]string
	// scatters are its scatter assets: their items go out to the fleet.
	scatters map[string]bool
}

// source is the shared durable consumer of one pipeline's tasks at one
// priority.
type source struct {
	h        *hosted
	priority int
	c        jetstream.Consumer
	// Dispatch's view, touched by its goroutine only: the last look found
	// the consumer empty, and when that look was.
	empty    bool
	lookedAt time.Time
}

// New checks cfg and returns a Worker; Start starts it. Errors are
// *flowstone.Error of type config_error whose Details["field"] names the
// Config field at fault.
func New(cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w := &Worker{
		cfg:       cfg,
		log:       zerolog.Nop(),
		slots:     newSlots(cfg.Concurrency),
		wake:      make(chan struct{}, 1),
		bells:     map[string]*source{},
		rung:      map[*source]bool{},
		running:   map[*task]struct{}{},
		messages:  map[*delivery]struct{}{},
		cancelled: map[string]time.Time{},
		stopBegun: make(chan struct{}),
		stopped:   make(chan struct{}),
	}
	if cfg.Logger != nil {
		w.log = cfg.Logger.With().Str("worker", cfg.ID).Logger()
	}
	for _, p := range cfg.Pipelines {
		h := &hosted{p: p, name: p.Name(), optional: map[string][]string{}, scatters: map[string]bool{}}
		for _, a := range bridge.Manifest(p, cfg.ID).Assets {
			optional := slices.Clone(a.OptionalDeps)
			for _, b := range a.Branches {
				if b.Optional {
					optional = append(optional, b.Asset)
				}
			}
			if len(optional) > 0 {
				h.optional[a.Name] = optional
			}
			if a.Scatter {
				h.scatters[a.Name] = true
			}
		}
		w.hosted = append(w.hosted, h)
	}
	m, err := newMetrics(cfg.Registerer, w.hosted)
	if err != nil {
		return nil, configError("Registerer", fmt.Sprintf("register the worker's metrics: %v", err))
	}
	w.metrics = m
	return w, nil
}

// ID returns the worker's id.
func (w *Worker) ID() string { return w.cfg.ID }

// Start binds the fleet's streams, buckets and consumers (creating them if
// missing), publishes the manifests, subscribes to cancellations and starts
// consuming. It returns once the worker is consuming; ctx bounds that setup
// only. The worker then runs until Stop.
//
// A Start that fails undoes what it did before it returns (the manifests
// it published, the cancel subscription, the stores it opened): nothing of
// the worker keeps running, and no coordinator counts on it.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return errors.New("worker: Start called twice: a Worker runs once; build another with New")
	}
	w.started = true
	w.mu.Unlock()
	var undo []func()
	if err := w.start(ctx, &undo); err != nil {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return err
	}
	w.mu.Lock()
	w.live = true
	w.mu.Unlock()
	w.log.Info().Int("concurrency", w.cfg.Concurrency).Dur("ack_wait", w.cfg.AckWait).
		Strs("pipelines", w.pipelineNames()).Msg("worker_started")
	return nil
}

// start does Start's work; undo collects what undoes each step done, for
// Start to run (last first) if a later step fails.
func (w *Worker) start(ctx context.Context, undo *[]func()) error {
	js, err := jetstream.New(w.cfg.Conn, jetstream.WithPublishAsyncTimeout(publishTimeout))
	if err != nil {
		return fmt.Errorf("worker: jetstream: %w", err)
	}
	w.js = js
	w.done = batcher.New(js, protocol.JoinCompletionBatch)
	if err := fleet.Ensure(ctx, js, w.cfg.fleetOptions(w.log)...); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	mats, runs, manifests, err := fleet.Buckets(ctx, js, w.cfg.fleetOptions(w.log)...)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	w.closers = append(w.closers, mats, runs, manifests)
	*undo = append(*undo, w.closeStores)
	w.manifests = manifests
	scatter, err := fleet.ScatterBucket(ctx, js, w.cfg.fleetOptions(w.log)...)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	w.closers = append(w.closers, scatter)
	w.scatter = scatter
	store := w.cfg.KV
	if store == nil {
		store = mats
	}
	w.x, err = bridge.NewExecutor(bridge.ExecutorConfig{
		KV: store, Stores: w.cfg.Stores, DefaultStorage: w.cfg.DefaultStorage, Worker: w.cfg.ID, Logger: w.cfg.Logger,
		// A record's claim lapses when the task's delivery does.
		Lease: w.cfg.AckWait,
	})
	if err != nil {
		return err
	}
	for prio := protocol.MaxPriority; prio >= 0; prio-- {
		for _, h := range w.hosted {
			c, err := fleet.TaskConsumer(ctx, js, h.name, prio, w.cfg.AckWait)
			if err != nil {
				return fmt.Errorf("worker: %w", err)
			}
			s := &source{h: h, priority: prio, c: c}
			w.sources[prio] = append(w.sources[prio], s)
			w.bells[protocol.BellSubject(protocol.TaskSubject(h.name, prio))] = s
		}
	}
	for _, h := range w.hosted {
		if len(h.scatters) == 0 {
			continue
		}
		c, err := fleet.ItemConsumer(ctx, js, h.name, w.cfg.AckWait)
		if err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		w.itemSrcs = append(w.itemSrcs, &itemSource{h: h, c: c})
	}
	// Some manifests may be written even if a later one fails: remove
	// them, so that no coordinator waits for this worker.
	*undo = append(*undo, func() {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		defer cancel()
		w.deleteManifests(cleanup)
	})
	if err := w.putManifests(ctx); err != nil {
		return err
	}
	if w.cancelSub, err = w.cfg.Conn.Subscribe(protocol.CancelSubjects, w.onCancel); err != nil {
		return fmt.Errorf("worker: subscribe to %s: %w", protocol.CancelSubjects, err)
	}
	*undo = append(*undo, func() { w.cancelSub.Unsubscribe() })
	if w.sensors, err = w.serveSensors(); err != nil {
		return err
	}
	*undo = append(*undo, func() { w.sensors.stop() })
	// A cancel published once Start has returned must reach this worker.
	fctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if err := w.cfg.Conn.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("worker: flush: %w", err)
	}
	// Nothing below fails: the goroutines start only once it is sure.
	if !w.cfg.NoEvents {
		w.events = newEventBatcher(w.cfg.Conn, w.log, eventBatchDelay)
		w.unsubEvent = w.x.Subscribe(w.forwardEvent)
	}

	bg, stopBG := context.WithCancel(context.Background())
	w.stopBG = stopBG
	w.background.Add(2)
	go w.heartbeats(bg)
	go w.refreshManifests(bg)
	w.queue, w.stopQueue = context.WithCancel(context.Background())
	fetch, stopFetch := context.WithCancel(context.Background())
	w.stopFetch = stopFetch
	w.fetchLoop.Add(1)
	go w.dispatch(fetch)
	for _, s := range w.itemSrcs {
		w.fetchLoop.Add(1)
		go w.takeItems(fetch, s, make(chan struct{}, w.cfg.ScatterBatches))
	}
	return nil
}

// Stop drains the worker: it stops taking tasks and waits for the running
// ones to finish and be acknowledged. If ctx ends first, it cancels the
// running tasks and hands them back to the queue (a Nak, so another worker
// takes them at once), and returns an error wrapping ctx's. Then it
// publishes what is left (completions, events), deletes the worker's
// manifests and closes the stores it opened. The NATS connection stays
// open.
//
// Stop waits for every goroutine the worker started (fetching, tasks,
// heartbeats, manifest refresh, completion and event batching, the
// reused task goroutines) with one exception: a task whose asset ignores
// its cancelled context for HardStopWait is handed back and left to
// finish in the background, with the goroutine that ran it. The error
// says so.
//
// Stop returns once the worker has stopped; later calls wait for the first
// and return its result. Stop before a successful Start does nothing.
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	if !w.live {
		w.mu.Unlock()
		return nil
	}
	if w.stopping {
		w.mu.Unlock()
		<-w.stopped
		return w.stopErr
	}
	w.stopping = true
	close(w.stopBegun)
	w.mu.Unlock()
	defer close(w.stopped)

	// No new tasks: the dispatcher ends after launching what it fetched.
	w.stopFetch()
	w.fetchLoop.Wait()
	// Tasks fetched but not started go back to the queue at once, for
	// workers that are not stopping.
	w.stopQueue()

	done := make(chan struct{})
	go func() {
		w.tasks.Wait()
		close(done)
	}()
	var errs []error
	abandoned := false
	select {
	case <-done:
	case <-ctx.Done():
		n := w.cancelRunning(errStopping)
		w.log.Warn().Int("tasks", n).Msg("worker_stop_grace_ended")
		errs = append(errs, fmt.Errorf("worker: stop: the grace period ended with %d tasks running; they were cancelled and handed back to the queue: %w", n, context.Cause(ctx)))
		timer := time.NewTimer(HardStopWait)
		select {
		case <-done:
		case <-timer.C:
			abandoned = true
			n := w.abandonRunning()
			errs = append(errs, fmt.Errorf("worker: stop: %d tasks ignored their cancelled context for %v; handed back, they finish in the background", n, HardStopWait))
		}
		timer.Stop()
	}
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	// Every completion of a task that ended is acknowledged by now (the
	// task waited for it); this waits for the goroutines that sent them.
	if err := w.done.Stop(cleanup); err != nil {
		errs = append(errs, fmt.Errorf("worker: completions: %w", err))
	}

	// The batched events go out with the rest: no event of a task that
	// ended is lost on a graceful stop. (A task abandoned above may still
	// emit; the batcher publishes such late events at once.)
	if w.unsubEvent != nil {
		w.unsubEvent()
		w.events.close()
	}
	// Acks and events sit in the connection's buffer: send them.
	if err := w.cfg.Conn.FlushWithContext(cleanup); err != nil {
		w.log.Warn().Err(err).Msg("worker_flush_failed")
	}
	w.cancelSub.Unsubscribe()
	w.sensors.stop()
	w.stopBG()
	w.background.Wait()
	// The pool's goroutines are those of the tasks, ended above, and idle
	// ones; an abandoned task keeps its goroutine until its asset returns,
	// and is not waited for again.
	pool := context.Background()
	if abandoned {
		var none context.CancelFunc
		pool, none = context.WithCancel(pool)
		none()
	}
	w.pool.Stop(pool)
	w.x.Close()
	w.deleteManifests(cleanup)
	w.closeStores()
	w.stopErr = errors.Join(errs...)
	w.log.Info().Uint64("succeeded", w.stats.succeeded.Load()).Uint64("failed", w.stats.failed.Load()).Msg("worker_stopped")
	return w.stopErr
}

// withDefaultTimeout bounds ctx by flushTimeout if it has no deadline.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, flushTimeout)
}

func (w *Worker) closeStores() {
	for _, s := range w.closers {
		s.Close()
	}
}

func (w *Worker) pipelineNames() []string {
	out := make([]string, len(w.hosted))
	for i, h := range w.hosted {
		out[i] = h.name
	}
	return out
}

// heartbeats tells JetStream every AckWait/3 that the messages this worker
// holds (tasks running or waiting for a slot) are in progress, so none is
// redelivered while this worker is alive.
func (w *Worker) heartbeats(ctx context.Context) {
	defer w.background.Done()
	t := time.NewTicker(w.cfg.AckWait / 3)
	defer t.Stop()
	var msgs []jetstream.Msg
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msgs = msgs[:0]
		w.mu.Lock()
		for d := range w.messages {
			msgs = append(msgs, d.msg)
		}
		w.mu.Unlock()
		for _, m := range msgs {
			// An error means the task was acked meanwhile, or the
			// connection is down and the task will be redelivered anyway.
			m.InProgress()
		}
	}
}
