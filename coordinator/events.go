package coordinator

import (
	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
)

// The coordinator's engine executes nothing (the workers do, and publish
// those events), but it decides what a run skips (see flowstone.Route):
// its run.skipped events are published here, where fsctl watch sees them.

// startEvents publishes the engine's own events until the coordinator
// stops.
func (c *Coordinator) startEvents() {
	unsubscribe := bridge.EngineExecutor(c.engine).Subscribe(c.publishEngineEvent)
	c.loops.Add(1)
	go func() {
		defer c.loops.Done()
		<-c.ctx.Done()
		unsubscribe()
	}()
}

// publishEngineEvent publishes one of the engine's own events in a batch
// of its own. A dropped event is logged at debug level: events are
// telemetry, the records say what happened.
func (c *Coordinator) publishEngineEvent(ev flowstone.Event) {
	if ev.Kind != flowstone.EventRunSkipped || ev.Pipeline == "" {
		return // the workers publish everything else
	}
	kind := protocol.EventKind(ev.Kind)
	body, perr := protocol.EncodeEventBatch(protocol.EventBatch{V: protocol.Version, Pipeline: ev.Pipeline, Kind: kind, Events: []protocol.Event{{
		V: protocol.Version, Kind: kind, Pipeline: ev.Pipeline, Asset: ev.Asset, Partition: ev.Partition, RunID: ev.RunID,
		Time: ev.Time.UTC(), DurationNS: int64(ev.Duration), Metadata: ev.Metadata, Error: bridge.WireError(ev.Err),
	}}})
	if perr != nil {
		c.log.Debug().Str("error", perr.Message).Str("kind", string(kind)).Msg("event_dropped")
		return
	}
	if err := c.nc.Publish(protocol.EventSubject(ev.Pipeline, kind), body); err != nil {
		c.log.Debug().Err(err).Str("kind", string(kind)).Msg("event_dropped")
	}
}
