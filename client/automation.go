package client

import (
	"context"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
)

// Schedules lists the fleet's schedules (of pipeline, or of every pipeline
// for ""), with their next and last ticks, as flowstone.Engine.Schedules
// does for an engine.
func (c *Client) Schedules(ctx context.Context, pipeline string) ([]flowstone.ScheduleStatus, error) {
	r, err := call[protocol.SchedulesReply](ctx, c, protocol.SchedulesRequest{V: protocol.Version, Pipeline: pipeline})
	if err != nil {
		return nil, err
	}
	out := make([]flowstone.ScheduleStatus, len(r.Schedules))
	for i, s := range r.Schedules {
		out[i] = flowstone.ScheduleStatus{Pipeline: s.Pipeline, Name: s.Name, Cron: s.Cron, TimeZone: s.TimeZone, Assets: s.Assets,
			Mapping: s.Mapping, CatchUp: s.CatchUp, Paused: s.Paused, NextTick: s.NextTick, LastTick: s.LastTick,
			LastPartition: s.LastPartition, LastRuns: s.LastRuns, Fired: s.Fired, Skipped: s.Skipped, Error: bridge.FromWire(s.Error)}
	}
	return out, nil
}

// Sensors lists the fleet's sensors (of pipeline, or of every pipeline for
// ""), with their cursors and latest evaluations.
func (c *Client) Sensors(ctx context.Context, pipeline string) ([]flowstone.SensorStatus, error) {
	r, err := call[protocol.SensorsReply](ctx, c, protocol.SensorsRequest{V: protocol.Version, Pipeline: pipeline})
	if err != nil {
		return nil, err
	}
	out := make([]flowstone.SensorStatus, len(r.Sensors))
	for i, s := range r.Sensors {
		out[i] = flowstone.SensorStatus{Pipeline: s.Pipeline, Name: s.Name, IntervalMS: s.IntervalMS, Paused: s.Paused, Cursor: s.Cursor,
			LastEvaluation: s.LastEvaluation, NextEvaluation: s.NextEvaluation, LastSuccess: s.LastSuccess, LastRuns: s.LastRuns,
			Evaluations: s.Evaluations, Failures: s.Failures, Error: bridge.FromWire(s.Error)}
	}
	return out, nil
}

// PauseAutomation pauses the pipeline's schedule or sensor name on the
// fleet: every coordinator stops firing it until ResumeAutomation. A
// name that is neither is a NotFound error listing those there are.
func (c *Client) PauseAutomation(ctx context.Context, pipeline, name string) error {
	_, err := call[protocol.PauseReply](ctx, c, protocol.PauseRequest{V: protocol.Version, Pipeline: pipeline, Name: name})
	return err
}

// ResumeAutomation resumes the pipeline's paused schedule or sensor name
// on the fleet; a schedule's ticks count from then (those of the pause
// are not caught up).
func (c *Client) ResumeAutomation(ctx context.Context, pipeline, name string) error {
	_, err := call[protocol.PauseReply](ctx, c, protocol.ResumeRequest{V: protocol.Version, Pipeline: pipeline, Name: name})
	return err
}
