package flowstone

import (
	"context"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/rs/zerolog"
)

// The fleet's side of the scheduler, reached through internal/bridge: a
// coordinator runs the same scheduler over the fleet's automation bucket
// (keys protocol.AutomationKey), starting runs as fleet runs and asking a
// worker to evaluate sensors; a worker evaluates them with
// evaluateSensor.

// Start runs the scheduler (see automation.start).
func (a *automation) Start() { a.start() }

// Stop ends the scheduler and waits for it.
func (a *automation) Stop() { a.stop() }

// Schedules lists p's schedules' states.
func (s autoStore) Schedules(ctx context.Context, p *Pipeline) ([]ScheduleStatus, error) {
	return s.schedules(ctx, p)
}

// Sensors lists p's sensors' states.
func (s autoStore) Sensors(ctx context.Context, p *Pipeline) ([]SensorStatus, error) {
	return s.sensors(ctx, p)
}

// SetPaused pauses or resumes p's schedule or sensor name.
func (s autoStore) SetPaused(ctx context.Context, p *Pipeline, name string, paused bool) error {
	return s.setPaused(ctx, p, name, paused)
}

// fleetAutoPrefix: the fleet's automation bucket holds nothing else, so
// its keys are protocol.AutomationKey's, without a prefix.
const fleetAutoPrefix = ""

// newFleetAutomation returns a scheduler (not started) over store, for a
// fleet coordinator named owner.
func newFleetAutomation(store kv.Store, clock hook.Clock, pipelines func() []*Pipeline, launch hook.Launcher[Pipeline],
	evaluate func(ctx context.Context, p *Pipeline, sensor, cursor string, now time.Time) (SensorResult, *Error), log zerolog.Logger, owner string) *automation {
	if clock == nil {
		clock = realClock{}
	}
	return &automation{
		autoStore: autoStore{kv: store, prefix: fleetAutoPrefix, clock: clock},
		pipelines: pipelines,
		launch:    launch,
		evaluate: func(ctx context.Context, p *Pipeline, s *sensorSpec, cursor string, now time.Time) (SensorResult, *Error) {
			ctx, cancel := context.WithTimeout(ctx, s.def.timeout+evalMargin)
			defer cancel()
			return evaluate(ctx, p, s.def.name, cursor, now)
		},
		log:   log.With().Str("component", "automation").Logger(),
		owner: owner,
		poll:  autoPoll,
	}
}

// evalMargin is what a coordinator waits for a worker's answer beyond the
// sensor's timeout.
const evalMargin = 5 * time.Second

// evaluateSensor evaluates p's sensor name in this process (a worker
// hosting p): see runSensor.
func evaluateSensor(ctx context.Context, p *Pipeline, name, cursor string, now time.Time, log zerolog.Logger) (SensorResult, *Error) {
	for _, s := range p.sensors {
		if s.def.name == name {
			return runSensor(ctx, p, s, cursor, now, log)
		}
	}
	return SensorResult{}, newError(TypeNotFound, map[string]any{"pipeline": p.name, "sensor": name, "available": p.SensorNames()},
		"pipeline %s hosted here has no sensor %q (available: %v): its workers run another version", p.name, name, p.SensorNames())
}

// manifestAutomation adds p's schedules and sensors to m.
func (p *Pipeline) manifestAutomation(m *protocol.Manifest) {
	for _, s := range p.schedules {
		m.Schedules = append(m.Schedules, protocol.ScheduleSpec{Name: s.def.name, Cron: s.def.cron, TimeZone: s.def.tz,
			Assets: s.def.targets, Mapping: s.mapping.String(), CatchUp: s.def.catchUp.String()})
	}
	for _, s := range p.sensors {
		m.Sensors = append(m.Sensors, protocol.SensorSpec{Name: s.def.name, IntervalMS: s.def.interval.Milliseconds(), TimeoutMS: s.def.timeout.Milliseconds()})
	}
}

// automationFromManifest declares m's schedules and sensors on p, a
// pipeline rebuilt from m: its sensors' functions stay with the workers.
func automationFromManifest(p *Pipeline, m protocol.Manifest) (*Pipeline, error) {
	var defs []Automation
	for _, s := range m.Schedules {
		mapping, ok := parseTickMapping(s.Mapping)
		if !ok {
			return nil, newError(TypeConfigError, map[string]any{"pipeline": p.name, "schedule": s.Name, "mapping": s.Mapping},
				"schedule %q: unknown tick mapping %q", s.Name, s.Mapping)
		}
		policy, ok := parseCatchUp(s.CatchUp)
		if !ok {
			return nil, newError(TypeConfigError, map[string]any{"pipeline": p.name, "schedule": s.Name, "catch_up": s.CatchUp},
				"schedule %q: unknown catch-up policy %q", s.Name, s.CatchUp)
		}
		defs = append(defs, Schedule(s.Name, s.Cron, Select(s.Assets...), InTimeZone(s.TimeZone), MapTick(mapping), CatchUp(policy)))
	}
	for _, s := range m.Sensors {
		defs = append(defs, Sensor(s.Name, time.Duration(s.IntervalMS)*time.Millisecond, remoteSensor, Timeout(time.Duration(s.TimeoutMS)*time.Millisecond)))
	}
	if len(defs) == 0 {
		return p, nil
	}
	q, err := p.Automate(defs...)
	if err != nil {
		return nil, err
	}
	for _, s := range q.sensors {
		s.remote = true
	}
	return q, nil
}

// remoteSensor stands for a sensor's function that lives on the workers.
func remoteSensor(*SensorContext, string) (SensorResult, error) { return SensorResult{}, nil }
