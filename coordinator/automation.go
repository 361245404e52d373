package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
)

// Schedules and sensors on the fleet. Every coordinator runs the root
// package's scheduler (the embedded engine's) over the automation bucket,
// for the pipelines its registry knows from the workers' manifests:
//
//   - a schedule's tick starts its runs with run ids made of the
//     schedule, the asset and the tick; accept creates a run record by
//     compare-and-set on its id, so of the coordinators that see a tick,
//     one starts each run, and one that dies after creating it leaves a
//     record that adoption resumes. Then the schedule's last tick moves,
//     by compare-and-set.
//   - a sensor's interval is claimed by compare-and-set; the winner asks a
//     worker hosting the pipeline to evaluate it (protocol.SensorSubject),
//     starts the runs it returns (ids made of the run keys), and keeps the
//     cursor it returned. A failed evaluation (no worker, a timeout, an
//     error, a panic, garbage) keeps the cursor.

// Clock tells the scheduler of schedules and sensors the time, and wakes
// it.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// startAutomation opens the automation bucket and starts the scheduler.
func (c *Coordinator) openAutomation(ctx context.Context, opts ...fleet.Option) error {
	store, err := fleet.AutomationBucket(ctx, c.js, opts...)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	c.autoKV = store
	var clock bridge.Clock
	if c.cfg.Clock != nil {
		clock = c.cfg.Clock
	}
	c.auto = bridge.NewAutomation(bridge.AutomationConfig{
		Store: store, Clock: clock, Pipelines: c.reg.all, Launcher: fleetLauncher{c},
		Evaluate: c.evaluateSensor, Logger: c.log, Owner: c.cfg.ID,
	})
	return nil
}

// fleetLauncher starts the scheduler's runs as fleet runs.
type fleetLauncher struct{ c *Coordinator }

// Launch accepts and drives a run whose id the scheduler made: a run that
// has this id already is left alone (started is false).
func (l fleetLauncher) Launch(ctx context.Context, p *flowstone.Pipeline, runID, asset, partition string) (bool, error) {
	c := l.c
	req := protocol.RunRequest{V: protocol.Version, RunID: runID, Pipeline: p.Name(), Asset: asset, Partition: partition}
	if perr := req.Validate(); perr != nil {
		return false, bridge.FromWire(perr)
	}
	if err := c.engine.Validate(p, asset, runOptions(runID, req)...); err != nil {
		return false, err
	}
	if _, _, err := c.loadRun(ctx, runID); err == nil {
		return false, nil
	} else if !errors.Is(err, kv.ErrNotFound) {
		return false, bridge.FromWire(wire(unreachable(err, "read run")))
	}
	rec, perr := c.accept(ctx, req)
	if perr != nil {
		if perr.Code == protocol.CodeBadRequest && perr.Details["field"] == "run_id" {
			return false, nil // another coordinator created it meanwhile
		}
		return false, bridge.FromWire(perr)
	}
	c.drive(p, rec)
	return true, nil
}

// evaluateSensor asks a worker hosting p to evaluate its sensor.
func (c *Coordinator) evaluateSensor(ctx context.Context, p *flowstone.Pipeline, sensor, cursor string, now time.Time) (flowstone.SensorResult, *flowstone.Error) {
	details := map[string]any{"pipeline": p.Name(), "sensor": sensor}
	body, perr := protocol.EncodeSensorEvaluation(protocol.SensorEvaluation{V: protocol.Version, Pipeline: p.Name(), Sensor: sensor, Cursor: cursor, Now: now.UTC()})
	if perr != nil {
		return flowstone.SensorResult{}, bridge.FromWire(perr)
	}
	m, err := c.nc.RequestWithContext(ctx, protocol.SensorSubject(p.Name()), body)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return flowstone.SensorResult{}, &flowstone.Error{Type: flowstone.TypeUnavailable, Details: details,
			Message: fmt.Sprintf("no worker hosting pipeline %s is up to evaluate sensor %q: start one", p.Name(), sensor)}
	case errors.Is(err, context.DeadlineExceeded):
		return flowstone.SensorResult{}, &flowstone.Error{Type: flowstone.TypeTimeout, Details: details,
			Message: fmt.Sprintf("no worker answered the evaluation of sensor %q of pipeline %s in time", sensor, p.Name())}
	case err != nil:
		return flowstone.SensorResult{}, &flowstone.Error{Type: flowstone.TypeUnavailable, Details: details,
			Message: fmt.Sprintf("sensor %q of pipeline %s: ask a worker: %v", sensor, p.Name(), err)}
	}
	out, perr := protocol.DecodeSensorOutcome(m.Data)
	if perr != nil {
		return flowstone.SensorResult{}, &flowstone.Error{Type: flowstone.TypeBadRequest, Details: details,
			Message: fmt.Sprintf("sensor %q of pipeline %s: the worker's answer does not check: %s", sensor, p.Name(), perr.Message)}
	}
	if out.Error != nil {
		return flowstone.SensorResult{}, bridge.FromWire(out.Error)
	}
	res := flowstone.SensorResult{Cursor: out.Cursor}
	for _, r := range out.Runs {
		res.Runs = append(res.Runs, flowstone.SensorRun{Asset: r.Asset, Partition: r.Partition, RunKey: r.RunKey})
	}
	return res, nil
}

// automationPipelines returns the pipeline named (all when "").
func (c *Coordinator) automationPipelines(name string) ([]*flowstone.Pipeline, *protocol.Error) {
	if name == "" {
		return c.reg.all(), nil
	}
	p, perr := c.pipeline(name)
	if perr != nil {
		return nil, perr
	}
	return []*flowstone.Pipeline{p}, nil
}

func (c *Coordinator) apiSchedules(ctx context.Context, req protocol.SchedulesRequest) (protocol.SchedulesReply, *protocol.Error) {
	ps, perr := c.automationPipelines(req.Pipeline)
	if perr != nil {
		return protocol.SchedulesReply{}, perr
	}
	ctx, cancel := withStoreBudget(ctx)
	defer cancel()
	reply := protocol.SchedulesReply{Schedules: []protocol.ScheduleStatus{}}
	for _, p := range ps {
		list, err := c.auto.Schedules(ctx, p)
		if err != nil {
			return protocol.SchedulesReply{}, wireStore(err)
		}
		for _, s := range list {
			reply.Schedules = append(reply.Schedules, protocol.ScheduleStatus{Pipeline: s.Pipeline,
				ScheduleSpec: protocol.ScheduleSpec{Name: s.Name, Cron: s.Cron, TimeZone: s.TimeZone, Assets: s.Assets, Mapping: s.Mapping, CatchUp: s.CatchUp},
				Paused:       s.Paused, NextTick: utc(s.NextTick), LastTick: utc(s.LastTick), LastPartition: s.LastPartition, LastRuns: s.LastRuns,
				Fired: s.Fired, Skipped: s.Skipped, Error: bridge.WireError(s.Error)})
		}
	}
	return reply, nil
}

func (c *Coordinator) apiSensors(ctx context.Context, req protocol.SensorsRequest) (protocol.SensorsReply, *protocol.Error) {
	ps, perr := c.automationPipelines(req.Pipeline)
	if perr != nil {
		return protocol.SensorsReply{}, perr
	}
	ctx, cancel := withStoreBudget(ctx)
	defer cancel()
	reply := protocol.SensorsReply{Sensors: []protocol.SensorStatus{}}
	for _, p := range ps {
		list, err := c.auto.Sensors(ctx, p)
		if err != nil {
			return protocol.SensorsReply{}, wireStore(err)
		}
		for _, s := range list {
			reply.Sensors = append(reply.Sensors, protocol.SensorStatus{Pipeline: s.Pipeline, Name: s.Name, IntervalMS: s.IntervalMS, Paused: s.Paused,
				Cursor: s.Cursor, LastEvaluation: utc(s.LastEvaluation), NextEvaluation: utc(s.NextEvaluation), LastSuccess: utc(s.LastSuccess),
				LastRuns: s.LastRuns, Evaluations: s.Evaluations, Failures: s.Failures, Error: bridge.WireError(s.Error)})
		}
	}
	return reply, nil
}

func (c *Coordinator) apiPause(ctx context.Context, req protocol.PauseRequest) (protocol.PauseReply, *protocol.Error) {
	return c.setPaused(ctx, req.Pipeline, req.Name, true)
}

func (c *Coordinator) apiResume(ctx context.Context, req protocol.ResumeRequest) (protocol.PauseReply, *protocol.Error) {
	return c.setPaused(ctx, req.Pipeline, req.Name, false)
}

func (c *Coordinator) setPaused(ctx context.Context, pipeline, name string, paused bool) (protocol.PauseReply, *protocol.Error) {
	p, perr := c.pipeline(pipeline)
	if perr != nil {
		return protocol.PauseReply{}, perr
	}
	if err := c.auto.SetPaused(ctx, p, name, paused); err != nil {
		return protocol.PauseReply{}, wireStore(err)
	}
	c.log.Info().Str("pipeline", pipeline).Str("name", name).Bool("paused", paused).Msg("automation_paused")
	return protocol.PauseReply{Paused: paused}, nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
