package flowstone

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
	"github.com/flowstone-go/flowstone/internal/gopool"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"
)

// dispatcher runs a materialization task somewhere and returns its final
// record. The embedded engine's dispatcher is its own executor; the fleet's
// coordinator publishes the task on JetStream and waits for a worker's
// completion (it builds its engine with bridge.NewEngine).
type dispatcher interface {
	// Dispatch materializes t.Asset of p and returns the record the executor
	// left. It must return when ctx is done, with ctx's cause.
	Dispatch(ctx context.Context, p *Pipeline, t task) (*Materialization, error)
}

// storageChecker is implemented by a dispatcher that can tell, before a
// run starts, whether the executors of a pipeline's tasks have a store of a
// given name. The engine asks it for the Storage option of every run, so a
// misspelt storage is refused up front and changes nothing, instead of
// failing the target's execution and leaving a failed record over a good
// one. A dispatcher without it gets no such check.
type storageChecker interface {
	// CheckStorage returns a TypeConfigError naming the stores there are
	// if the executors of p's tasks have no store named name.
	CheckStorage(p *Pipeline, name string) error
}

// AsyncRunner enqueues runs for later execution: the fleet client is one.
type AsyncRunner interface {
	// Enqueue persists the run request and returns its job.
	Enqueue(ctx context.Context, req RunRequest) (*Job, error)
}

// RunRequest is a run with its options spelled out: what an AsyncRunner
// receives.
type RunRequest struct {
	// RunID is WithRunID's id; "" for one the fleet picks.
	RunID       string
	Pipeline    string
	Asset       string
	Partition   string
	Force       bool
	WithDeps    bool
	Async       bool
	Storage     string
	Timeout     time.Duration
	Priority    int
	ScheduledAt time.Time
}

// Job describes an enqueued (async) run.
type Job struct {
	ID          string    `json:"id"`
	Pipeline    string    `json:"pipeline"`
	Asset       string    `json:"asset"`
	Partition   string    `json:"partition"`
	Priority    int       `json:"priority"`
	ScheduledAt time.Time `json:"scheduled_at,omitzero"`
	State       State     `json:"state"`
}

// EngineConfig configures an Engine. The zero value is a complete embedded
// engine: in-memory metadata and results, the in-process executor.
type EngineConfig struct {
	// KV holds the materialization records. Defaults to kv.NewMemory().
	KV kv.Store
	// Stores are the object stores by name. Defaults to one in-memory
	// store named "memory".
	Stores map[string]objectstore.Store
	// DefaultStorage names the store used when neither the asset nor the
	// run names one. Defaults to the only store, or "memory".
	DefaultStorage string
	// Codec encodes values. Defaults to JSONCodec.
	Codec Codec
	// Concurrency bounds how many assets execute at once. Defaults to
	// 4 × GOMAXPROCS, at least 8.
	Concurrency int
	// Async accepts Async runs. Defaults to none: Async is a ConfigError.
	Async AsyncRunner
	// Logger receives asset logs. Defaults to no logging.
	Logger *zerolog.Logger
	// SignalSecret signs the tokens of signal gates (WaitForSignal) and
	// verifies the tokens Signal is given: at least 16 bytes, best 32
	// random ones, kept secret, the same on every engine (every fleet
	// coordinator) that shares the store. There is no default: without
	// it, a run that reaches a signal gate is refused with a ConfigError
	// before anything runs, and so is every Signal.
	SignalSecret []byte
}

// Engine decides what to run and runs it: dependency resolution, caching per
// asset and partition, single-flight, force, with_deps, cancel, timeouts,
// invalidation and backfill. The package-level functions use Default();
// build your own for isolation (tests) or other stores.
//
// An Engine is safe for concurrent use.
type Engine struct {
	x        *executor
	kv       kv.Store
	dispatch dispatcher
	async    AsyncRunner
	sem      chan struct{}
	pool     gopool.Pool // goroutines for flights, steps and backfill partitions

	// secret signs signal tokens (nil: signal gates are refused).
	secret []byte
	// alive reports whether a run is still going (see runAliver).
	alive func(ctx context.Context, runID string) bool

	mu      sync.Mutex
	flights map[string]*flight   // by materialization key
	runs    map[string]activeRun // by run id
	// gates are the steps waiting at a gate, by materialization key.
	gates map[string]map[*gateWaiter]struct{}
	// auto is the running scheduler of StartAutomation (nil: none);
	// clock tells it the time.
	auto  *automation
	clock hook.Clock
}

// runAliver is implemented by a dispatcher that can tell whether a run is
// still going (the fleet's: its run record is not terminal). A gate that
// another run holds is waited for while that run lives; without it,
// every run is taken to live until its gate lapses.
type runAliver interface {
	RunAlive(ctx context.Context, runID string) bool
}

// NewEngine returns an engine for cfg (see EngineConfig for defaults).
func NewEngine(cfg EngineConfig) (*Engine, error) { return newEngine(cfg, nil) }

// newEngine returns an engine for cfg whose tasks d runs (nil: the
// engine's own executor).
func newEngine(cfg EngineConfig, d dispatcher) (*Engine, error) {
	if cfg.KV == nil {
		cfg.KV = kv.NewMemory()
	}
	if len(cfg.Stores) == 0 {
		cfg.Stores = map[string]objectstore.Store{"memory": objectstore.NewMemory()}
	}
	x, err := newExecutor(executorConfig{KV: cfg.KV, Stores: cfg.Stores, DefaultStorage: cfg.DefaultStorage, Codec: cfg.Codec, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = max(8, 4*runtime.GOMAXPROCS(0))
	}
	if cfg.SignalSecret != nil && len(cfg.SignalSecret) < minSecretLen {
		return nil, newError(TypeConfigError, map[string]any{"field": "SignalSecret", "length": len(cfg.SignalSecret), "minimum": minSecretLen},
			"the signal secret is %d bytes: give at least %d (32 random bytes are best)", len(cfg.SignalSecret), minSecretLen)
	}
	e := &Engine{
		x:        x,
		kv:       cfg.KV,
		dispatch: d,
		async:    cfg.Async,
		sem:      make(chan struct{}, cfg.Concurrency),
		flights:  map[string]*flight{},
		runs:     map[string]activeRun{},
		gates:    map[string]map[*gateWaiter]struct{}{},
		secret:   bytes.Clone(cfg.SignalSecret),
		alive:    func(context.Context, string) bool { return true },
		clock:    realClock{},
	}
	if e.dispatch == nil {
		e.dispatch = localDispatcher{x}
	}
	if a, ok := e.dispatch.(runAliver); ok {
		e.alive = a.RunAlive
	}
	return e, nil
}

// MustEngine is NewEngine that panics on error.
func MustEngine(cfg EngineConfig) *Engine {
	e, err := NewEngine(cfg)
	if err != nil {
		panic(err)
	}
	return e
}

var defaultEngine = sync.OnceValue(func() *Engine { return MustEngine(EngineConfig{}) })

// Default returns the process-wide embedded engine the package-level
// functions use: in-memory, zero configuration.
func Default() *Engine { return defaultEngine() }

// Stop stops the engine's automation (StartAutomation), then waits for
// every goroutine the engine started (the steps and flights of runs in
// flight, backfill partitions, and the idle goroutines it keeps for
// reuse) and lets them go. Runs in flight finish as usual
// until ctx ends; then Stop cancels them, and every execution they wait
// for, with a cancelled error that says the engine stopped (a hard stop),
// and waits for them to return. It returns nil after a soft stop, else an
// error wrapping ctx's cause.
//
// The engine stays usable: a Run after Stop works, on goroutines that
// exit when it ends (a later Stop waits for them too). The default engine
// (Default) is never stopped.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopAutomation(nil)
	err := e.pool.Stop(ctx)
	if err == nil {
		return nil
	}
	cause := newError(TypeCancelled, nil, "the engine was stopped before the run finished: %v", context.Cause(ctx))
	// A run that starts meanwhile (a backfill going on with its next
	// partition) is cancelled on the next round.
	for {
		e.mu.Lock()
		for _, ar := range e.runs {
			ar.cancel(cause)
		}
		for _, f := range e.flights {
			f.cancel(cause)
		}
		e.mu.Unlock()
		round, cancel := context.WithTimeout(context.Background(), hardStopRecheck)
		done := e.pool.Stop(round) == nil
		cancel()
		if done {
			return fmt.Errorf("flowstone: engine stop: runs in flight were cancelled: %w", err)
		}
	}
}

// hardStopRecheck is how often a hard Stop cancels again the runs that
// started since its last pass.
const hardStopRecheck = 50 * time.Millisecond

// Close is Stop without a limit: it returns once every run in flight has
// finished and the engine's goroutines have exited. Call it when done with
// an engine in a long-lived process, or before checking for goroutine
// leaks.
func (e *Engine) Close() { _ = e.Stop(context.Background()) }

// Subscribe registers fn for every telemetry event and returns a function
// that unregisters it. fn runs on the executing goroutine: keep it fast and
// never block. With no subscriber, events cost nothing.
func (e *Engine) Subscribe(fn func(Event)) (unsubscribe func()) { return e.x.Subscribe(fn) }

// localDispatcher runs tasks in this process.
type localDispatcher struct{ x *executor }

// CheckStorage looks the name up among the executor's stores.
func (d localDispatcher) CheckStorage(_ *Pipeline, name string) error {
	_, _, err := d.x.store(name)
	return err
}

// checkStorage refuses a run's Storage option the dispatcher knows it has
// no store for ("" is the default, always there).
func (e *Engine) checkStorage(p *Pipeline, name string) error {
	if name == "" {
		return nil
	}
	if c, ok := e.dispatch.(storageChecker); ok {
		return c.CheckStorage(p, name)
	}
	return nil
}

func (d localDispatcher) Dispatch(ctx context.Context, p *Pipeline, t task) (*Materialization, error) {
	return d.x.Execute(ctx, p, t)
}

// newRunID returns a unique run id.
func newRunID() string { return nuid.Next() }
