package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
)

// Sensors: a sensor's function is the pipeline's Go code, so the
// coordinator that claimed a sensor's interval asks a worker hosting the
// pipeline to evaluate it, with a protocol.SensorEvaluation on
// protocol.SensorSubject(pipeline). The workers hosting it serve that
// subject in a queue group: one of them evaluates (bounded by the
// sensor's timeout, a panic made an error, the result checked against
// the pipeline) and answers a protocol.SensorOutcome. The coordinator
// keeps the cursor and starts the runs.

// sensorServer answers sensor evaluations for the hosted pipelines that
// declare sensors.
type sensorServer struct {
	w      *Worker
	subs   []*nats.Subscription
	ctx    context.Context
	cancel context.CancelFunc
	calls  sync.WaitGroup
}

// serveSensors subscribes to the sensor subjects of the hosted pipelines
// that have sensors.
func (w *Worker) serveSensors() (*sensorServer, error) {
	s := &sensorServer{w: w}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, h := range w.hosted {
		if len(h.p.SensorNames()) == 0 {
			continue
		}
		sub, err := w.cfg.Conn.QueueSubscribe(protocol.SensorSubject(h.name), protocol.SensorQueueGroup, func(m *nats.Msg) { s.evaluate(h, m) })
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("worker: subscribe to %s: %w", protocol.SensorSubject(h.name), err)
		}
		s.subs = append(s.subs, sub)
	}
	return s, nil
}

// stop unsubscribes, cancels the evaluations under way and waits for
// them.
func (s *sensorServer) stop() {
	for _, sub := range s.subs {
		sub.Unsubscribe()
	}
	s.cancel()
	s.calls.Wait()
}

func (s *sensorServer) evaluate(h *hosted, m *nats.Msg) {
	s.calls.Add(1)
	defer s.calls.Done()
	if s.ctx.Err() != nil {
		return // stopping: the coordinator's request times out, the cursor stays
	}
	req, perr := protocol.DecodeSensorEvaluation(m.Data)
	out := protocol.SensorOutcome{V: protocol.Version}
	switch {
	case perr != nil:
		out.Error = perr
	case req.Pipeline != h.name:
		out.Error = protocol.Errorf(protocol.CodeBadRequest, "pipeline %q asked on the subject of %q", req.Pipeline, h.name)
	default:
		start := time.Now()
		res, fe := bridge.EvaluateSensor(s.ctx, h.p, req.Sensor, req.Cursor, req.Now, s.w.log)
		if fe != nil {
			out.Error = bridge.WireError(fe)
		} else {
			out.Cursor = res.Cursor
			for _, r := range res.Runs {
				out.Runs = append(out.Runs, protocol.SensorRun{Asset: r.Asset, Partition: r.Partition, RunKey: r.RunKey})
			}
		}
		ev := s.w.log.Info()
		if fe != nil {
			ev = s.w.log.Warn().Str("error_type", string(fe.Type)).Str("error", fe.Message)
		}
		ev.Str("pipeline", h.name).Str("sensor", req.Sensor).Int("runs", len(out.Runs)).Dur("duration", time.Since(start)).Msg("sensor_evaluated")
	}
	body, perr := protocol.EncodeSensorOutcome(out)
	if perr != nil {
		body, _ = protocol.EncodeSensorOutcome(protocol.SensorOutcome{V: protocol.Version, Error: perr})
	}
	if err := m.Respond(body); err != nil {
		s.w.log.Warn().Err(err).Str("pipeline", h.name).Msg("sensor_reply_failed")
	}
}
