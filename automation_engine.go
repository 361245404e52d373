package flowstone

import (
	"context"
	"errors"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/nats-io/nuid"
)

// The embedded engine's schedules and sensors: its store keeps their
// state under "auto.", and the runs they start run in this process.

// embeddedAutoPrefix begins the keys of the embedded engine's automation
// state in its store.
const embeddedAutoPrefix = "auto."

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// autoStore returns the engine's automation state store.
func (e *Engine) autoStore() autoStore {
	e.mu.Lock()
	clock := e.clock
	e.mu.Unlock()
	return autoStore{kv: e.kv, prefix: embeddedAutoPrefix, clock: clock}
}

// StartAutomation runs the schedules and sensors of pipelines (see
// Pipeline.Automate) in this process until ctx ends or the engine stops
// (Engine.Stop, Engine.Close): at each schedule's tick, and each sensor's
// interval, it starts runs on this engine, each as Run would (with
// WithRunID: a schedule's run id names the schedule and the tick).
// Their state (last tick, cursor, pauses) lives in the engine's store
// (EngineConfig.KV), so that engines sharing a store fire each tick and
// evaluate each interval once between them, and an engine restarted over
// a persistent store catches up the ticks it missed (see CatchUpPolicy).
//
// It returns at once; the runs it starts are runs in flight, which
// Engine.Stop waits for. A second StartAutomation while one runs is a
// ConfigError, and so is a pipeline given twice.
func (e *Engine) StartAutomation(ctx context.Context, pipelines ...*Pipeline) error {
	seen := map[string]bool{}
	for _, p := range pipelines {
		if seen[p.name] {
			return newError(TypeConfigError, map[string]any{"pipeline": p.name}, "StartAutomation: pipeline %s is given twice", p.name)
		}
		seen[p.name] = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.auto != nil {
		return newError(TypeConfigError, nil, "StartAutomation: the engine's automation runs already; stop the engine (Engine.Stop) or end its context first")
	}
	ps := append([]*Pipeline(nil), pipelines...)
	a := &automation{
		autoStore: autoStore{kv: e.kv, prefix: embeddedAutoPrefix, clock: e.clock},
		pipelines: func() []*Pipeline { return ps },
		launch:    engineLauncher{e},
		evaluate: func(ctx context.Context, p *Pipeline, s *sensorSpec, cursor string, now time.Time) (SensorResult, *Error) {
			return runSensor(ctx, p, s, cursor, now, e.x.logger)
		},
		log:   e.x.logger.With().Str("component", "automation").Logger(),
		owner: "embedded-" + nuid.Next(),
		poll:  autoPoll,
	}
	a.start()
	e.auto = a
	e.pool.Go(func() {
		// Ends with ctx, or when Stop stops the automation.
		select {
		case <-ctx.Done():
			e.stopAutomation(a)
		case <-a.stopped():
		}
	})
	return nil
}

// stopAutomation stops a (nil: whichever runs) and waits for it.
func (e *Engine) stopAutomation(a *automation) {
	e.mu.Lock()
	if a == nil {
		a = e.auto
	}
	if a == nil || e.auto != a {
		e.mu.Unlock()
		return
	}
	e.auto = nil
	e.mu.Unlock()
	a.stop()
}

// Schedules lists p's schedules with their next and last ticks, from the
// engine's store (whether or not StartAutomation runs them here).
func (e *Engine) Schedules(ctx context.Context, p *Pipeline) ([]ScheduleStatus, error) {
	return e.autoStore().schedules(ctx, p)
}

// Sensors lists p's sensors with their cursors and latest evaluations,
// from the engine's store.
func (e *Engine) Sensors(ctx context.Context, p *Pipeline) ([]SensorStatus, error) {
	return e.autoStore().sensors(ctx, p)
}

// PauseAutomation pauses p's schedule or sensor name: no tick fires, no
// evaluation runs, until ResumeAutomation. The pause is kept in the
// store, so it holds for every engine (or coordinator) sharing it. A name
// that is neither is a NotFound error listing the names there are.
func (e *Engine) PauseAutomation(ctx context.Context, p *Pipeline, name string) error {
	return e.autoStore().setPaused(ctx, p, name, true)
}

// ResumeAutomation resumes p's paused schedule or sensor name. A resumed
// schedule's ticks count from now: the ticks that came while it was
// paused are not caught up (run them with Backfill if they are needed).
func (e *Engine) ResumeAutomation(ctx context.Context, p *Pipeline, name string) error {
	return e.autoStore().setPaused(ctx, p, name, false)
}

// engineLauncher starts the scheduler's runs on the engine, each id
// once: a marker key in the engine's store, created by compare-and-set,
// says which ids started.
type engineLauncher struct{ e *Engine }

func (l engineLauncher) Launch(ctx context.Context, p *Pipeline, runID, asset, partition string) (bool, error) {
	e := l.e
	opts := []RunOption{Partition(partition), WithRunID(runID)}
	if err := e.Validate(p, asset, opts...); err != nil {
		return false, err
	}
	if _, err := e.kv.Create(ctx, embeddedAutoPrefix+"run."+runID, []byte(time.Now().UTC().Format(time.RFC3339Nano))); errors.Is(err, kv.ErrConflict) {
		return false, nil
	} else if err != nil {
		return false, storeError(err, "record run "+runID)
	}
	log := e.x.logger
	e.pool.Go(func() {
		res, err := e.Run(context.Background(), p, asset, opts...)
		ev := log.Info()
		if err != nil {
			ev = log.Warn().Err(err)
		} else {
			ev = ev.Bool("cached", res.Cached)
		}
		ev.Str("pipeline", p.name).Str("asset", asset).Str("partition", partition).Str("run_id", runID).Msg("automation_run_finished")
	})
	return true, nil
}

var _ hook.Launcher[Pipeline] = engineLauncher{}
