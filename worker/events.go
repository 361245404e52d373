package worker

import (
	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/protocol"
)

// forwardEvent publishes one executor event on core NATS to
// protocol.EventSubject, where the fleet's events stream keeps it. It runs
// on the executing goroutine: a buffered publish, no round trip. Events that
// do not fit the wire are dropped (logged at debug level).
func (w *Worker) forwardEvent(ev flowstone.Event) {
	pipeline := ev.Pipeline
	if pipeline == "" {
		// Loads of dependencies do not name the pipeline; the run does.
		if pipeline = w.pipelineOfRun(ev.RunID); pipeline == "" {
			return
		}
	}
	md := make(map[string]any, len(ev.Metadata)+1)
	for k, v := range ev.Metadata {
		md[k] = v
	}
	md["worker"] = w.cfg.ID
	pe := protocol.Event{V: protocol.Version, Kind: protocol.EventKind(ev.Kind), Pipeline: pipeline, Asset: ev.Asset,
		Partition: ev.Partition, RunID: ev.RunID, Time: ev.Time.UTC(), DurationNS: int64(ev.Duration), Metadata: md,
		Error: ev.Err.WireError()}
	body, perr := protocol.EncodeEvent(pe)
	if perr != nil {
		w.log.Debug().Str("kind", string(ev.Kind)).Str("error", perr.Message).Msg("event_dropped")
		return
	}
	if err := w.cfg.Conn.Publish(protocol.EventSubject(pipeline, pe.Kind), body); err != nil {
		w.log.Debug().Err(err).Str("kind", string(ev.Kind)).Msg("event_dropped")
	}
}
