package bridge

import (
	"context"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge/hook"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/rs/zerolog"
)

// autoRoot lists the root package's hooks for schedules and sensors (see
// root).
type autoRoot interface {
	NewAutomation(store kv.Store, clock hook.Clock, pipelines func() []*flowstone.Pipeline, launch hook.Launcher[flowstone.Pipeline],
		evaluate func(ctx context.Context, p *flowstone.Pipeline, sensor, cursor string, now time.Time) (flowstone.SensorResult, *flowstone.Error),
		log zerolog.Logger, owner string) any
	AutomationStore(store kv.Store, clock hook.Clock) any
	EvaluateSensor(ctx context.Context, p *flowstone.Pipeline, name, cursor string, now time.Time, log zerolog.Logger) (flowstone.SensorResult, *flowstone.Error)
	SetClock(e *flowstone.Engine, c hook.Clock)
}

var ar = hook.Root.(autoRoot)

type (
	// Clock tells the scheduler the time (see hook.Clock).
	Clock = hook.Clock
	// Launcher starts the scheduler's runs (see hook.Launcher).
	Launcher = hook.Launcher[flowstone.Pipeline]
)

// AutomationConfig configures a fleet coordinator's scheduler.
type AutomationConfig struct {
	// Store is the fleet's automation bucket.
	Store kv.Store
	// Clock defaults to the wall clock.
	Clock Clock
	// Pipelines returns the pipelines to run the automations of.
	Pipelines func() []*flowstone.Pipeline
	// Launcher starts a run once per id.
	Launcher Launcher
	// Evaluate asks a worker hosting p to evaluate its sensor.
	Evaluate func(ctx context.Context, p *flowstone.Pipeline, sensor, cursor string, now time.Time) (flowstone.SensorResult, *flowstone.Error)
	// Logger receives the scheduler's logs.
	Logger zerolog.Logger
	// Owner names the coordinator in sensors' claims.
	Owner string
}

// AutomationStore reads and changes the states of schedules and sensors.
type AutomationStore interface {
	Schedules(ctx context.Context, p *flowstone.Pipeline) ([]flowstone.ScheduleStatus, error)
	Sensors(ctx context.Context, p *flowstone.Pipeline) ([]flowstone.SensorStatus, error)
	SetPaused(ctx context.Context, p *flowstone.Pipeline, name string, paused bool) error
}

// Automation is a fleet coordinator's scheduler of schedules and sensors:
// the embedded engine's (Engine.StartAutomation), over the fleet's
// bucket.
type Automation interface {
	AutomationStore
	// Start runs it until Stop.
	Start()
	// Stop ends it and waits for it; the runs it started go on.
	Stop()
}

// NewAutomation returns a scheduler, not started.
func NewAutomation(cfg AutomationConfig) Automation {
	return ar.NewAutomation(cfg.Store, cfg.Clock, cfg.Pipelines, cfg.Launcher, cfg.Evaluate, cfg.Logger, cfg.Owner).(Automation)
}

// NewAutomationStore returns the states in store (the fleet's automation
// bucket), read with clock (nil: the wall clock).
func NewAutomationStore(store kv.Store, clock Clock) AutomationStore {
	return ar.AutomationStore(store, clock).(AutomationStore)
}

// EvaluateSensor evaluates p's sensor name in this process, as a worker
// hosting p does for a coordinator: bounded by the sensor's timeout, a
// panic made an error, the result checked against p.
func EvaluateSensor(ctx context.Context, p *flowstone.Pipeline, name, cursor string, now time.Time, log zerolog.Logger) (flowstone.SensorResult, *flowstone.Error) {
	return ar.EvaluateSensor(ctx, p, name, cursor, now, log)
}

// SetClock gives e's scheduler (Engine.StartAutomation) a clock: tests
// move a fake one (internal/fakeclock).
func SetClock(e *flowstone.Engine, c Clock) { ar.SetClock(e, c) }
