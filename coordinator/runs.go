package coordinator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/tracing"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Coordinator liveness: each coordinator refreshes a heartbeat key in the
// runs bucket; the runs of one whose heartbeat went stale are adopted.
const (
	heartbeatEvery = 5 * time.Second
	heartbeatStale = 30 * time.Second
	adoptEvery     = 15 * time.Second
	startsConsumer = "coordinator_starts"
	// refreshAfter is the age at which a live run's record (and its
	// live-index key) is written again, so that the runs bucket's TTL
	// (fleet.RunRetention) never removes a run still waiting for its
	// scheduled time or still running.
	refreshAfter = 24 * time.Hour
)

// finalSaveWait bounds how long a finished run's record waits out a NATS
// fault.
const finalSaveWait = 2 * time.Minute

func heartbeatKey(id string) string { return "coord." + id }

// runOptions turns a wire request into the engine's options.
func runOptions(runID string, req protocol.RunRequest) []flowstone.RunOption {
	opts := []flowstone.RunOption{flowstone.WithRunID(runID), flowstone.Partition(cmp.Or(req.Partition, flowstone.DefaultPartition)),
		flowstone.Priority(req.Priority), flowstone.WithDeps(req.RunsDeps())}
	if req.Force {
		opts = append(opts, flowstone.Force())
	}
	if req.Storage != "" {
		opts = append(opts, flowstone.Storage(req.Storage))
	}
	if req.TimeoutMS > 0 {
		opts = append(opts, flowstone.Timeout(time.Duration(req.TimeoutMS)*time.Millisecond))
	}
	return opts
}

// accept records a validated run; it does not start it.
func (c *Coordinator) accept(ctx context.Context, req protocol.RunRequest) (protocol.RunRecord, *protocol.Error) {
	now := time.Now().UTC()
	rec := protocol.RunRecord{V: protocol.Version, RunID: cmp.Or(req.RunID, nuid.Next()), Request: req, State: protocol.StatePending,
		CreatedAt: now, UpdatedAt: now, Coordinator: c.cfg.ID, TraceParent: tracing.TraceParent(ctx)}
	if req.ScheduledAt != nil && req.ScheduledAt.After(now) {
		if limit := now.Add(c.cfg.ScheduleHorizon); req.ScheduledAt.After(limit) {
			return rec, &protocol.Error{Code: protocol.CodeBadRequest,
				Message: fmt.Sprintf("scheduled_at %s is more than %v ahead (after %s): the fleet schedules runs at most that far ahead (a coordinator's schedule horizon)",
					req.ScheduledAt.Format(time.RFC3339), c.cfg.ScheduleHorizon, limit.Format(time.RFC3339)),
				Details: map[string]any{"field": "scheduled_at", "horizon_ms": c.cfg.ScheduleHorizon.Milliseconds()}}
		}
		rec.State = protocol.StateScheduled
	}
	if req.RunID != "" {
		// The caller's id: refused if another run has it, before its
		// live-run key is touched.
		if _, _, err := c.loadRun(ctx, req.RunID); err == nil {
			return rec, runIDTaken(req.RunID)
		} else if !errors.Is(err, kv.ErrNotFound) {
			return rec, wire(unreachable(err, "read run"))
		}
	}
	// The index key first: a run whose record exists is always found by
	// adoptOrphans.
	if err := c.markLive(ctx, rec.RunID); err != nil {
		return rec, wire(unreachable(err, "index run"))
	}
	if req.RunID != "" {
		return rec, c.createRun(ctx, &rec)
	}
	if err := c.saveRun(ctx, &rec); err != nil {
		c.runs.Erase(context.WithoutCancel(ctx), protocol.LiveRunKey(rec.RunID))
		return rec, err
	}
	return rec, nil
}

// createRun writes the first record of a run whose id the caller chose,
// by compare-and-set: of two requests with the same id, one gets it.
func (c *Coordinator) createRun(ctx context.Context, rec *protocol.RunRecord) *protocol.Error {
	b, perr := protocol.EncodeRunRecord(*rec)
	if perr != nil {
		return perr
	}
	err := natsRetry.Do(ctx, func(ctx context.Context) error {
		_, err := c.runs.Create(ctx, protocol.RunKey(rec.RunID), b)
		if errors.Is(err, kv.ErrConflict) {
			// Ours, if an earlier try was stored but its answer lost.
			if cur, _, lerr := c.loadRun(ctx, rec.RunID); lerr == nil && cur.Coordinator == rec.Coordinator && cur.CreatedAt.Equal(rec.CreatedAt) {
				return nil
			}
		}
		return err
	})
	switch {
	case errors.Is(err, kv.ErrConflict):
		// The other request's run has the live-run key too: leave it.
		return runIDTaken(rec.RunID)
	case err != nil:
		c.runs.Erase(context.WithoutCancel(ctx), protocol.LiveRunKey(rec.RunID))
		return wire(unreachable(err, "record run"))
	}
	return nil
}

func runIDTaken(id string) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeBadRequest, Details: map[string]any{"field": "run_id", "run_id": id},
		Message: fmt.Sprintf("run id %q is another run's: a run id must be unique (leave it out for a new one)", id)}
}

// markLive writes (or rewrites) a run's key in the live-run index.
func (c *Coordinator) markLive(ctx context.Context, runID string) error {
	_, err := c.runs.Put(ctx, protocol.LiveRunKey(runID), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	return err
}

// ended takes a run whose terminal record is stored out of the live-run
// index. If that fails, the next adoptOrphans pass does it.
func (c *Coordinator) ended(ctx context.Context, runID string) {
	if err := c.runs.Erase(ctx, protocol.LiveRunKey(runID)); err != nil && ctx.Err() == nil {
		c.log.Warn().Err(err).Str("run_id", runID).Msg("run_unindex_failed")
	}
}

func (c *Coordinator) saveRun(ctx context.Context, rec *protocol.RunRecord) *protocol.Error {
	rec.UpdatedAt = time.Now().UTC()
	b, perr := protocol.EncodeRunRecord(*rec)
	if perr != nil {
		return perr
	}
	// Waited out through a NATS fault, for as long as ctx allows.
	err := natsRetry.Do(ctx, func(ctx context.Context) error {
		_, err := c.runs.Put(ctx, protocol.RunKey(rec.RunID), b)
		return err
	})
	if err != nil {
		c.log.Warn().Err(err).Str("run_id", rec.RunID).Str("state", string(rec.State)).Msg("run_record_failed")
		return wire(unreachable(err, "record run"))
	}
	return nil
}

func (c *Coordinator) loadRun(ctx context.Context, runID string) (protocol.RunRecord, uint64, error) {
	e, err := c.runs.Get(ctx, protocol.RunKey(runID))
	if err != nil {
		return protocol.RunRecord{}, 0, err
	}
	rec, perr := protocol.DecodeRunRecord(e.Value)
	if perr != nil {
		return protocol.RunRecord{}, 0, perr
	}
	return rec, e.Revision, nil
}

// drive runs a recorded run to its end on this coordinator and records the
// outcome. Once Stop has begun it starts nothing: the run stays in its
// record, owned by this coordinator, and is resumed by the next one to
// start with this id or to find this one's heartbeat gone.
func (c *Coordinator) drive(p *flowstone.Pipeline, rec protocol.RunRecord) {
	ok := c.work.Go(func() {
		rec.State, rec.Coordinator = protocol.StateRunning, c.cfg.ID
		c.saveRun(c.ctx, &rec)
		start := time.Now()
		// The run continues the trace of the request that made it, on
		// whichever coordinator drives it; its tasks carry it on.
		rctx, span := tracing.Tracer().Start(tracing.WithTraceParent(c.ctx, rec.TraceParent), "flowstone.run "+rec.Request.Asset,
			trace.WithAttributes(attribute.String("flowstone.run_id", rec.RunID), attribute.String("flowstone.pipeline", p.Name()),
				attribute.String("flowstone.asset", rec.Request.Asset), attribute.String("flowstone.coordinator", c.cfg.ID)))
		defer span.End()
		res, err := c.engine.Run(rctx, p, rec.Request.Asset, runOptions(rec.RunID, rec.Request)...)
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		if c.ctx.Err() != nil && err != nil {
			// Stopping: leave the run to be resumed by the next coordinator.
			return
		}
		switch {
		case err == nil:
			rec.State, rec.Cached = protocol.StateCompleted, res.Cached
		case errors.Is(err, flowstone.ErrCancelled):
			rec.State, rec.Error = protocol.StateCancelled, wire(err)
		default:
			rec.State, rec.Error = protocol.StateFailed, wire(err)
		}
		// The outcome is recorded even while stopping; a record that
		// cannot be written in finalSaveWait is left live, and the run
		// resumed later finds its assets materialized.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), finalSaveWait)
		if c.saveRun(fctx, &rec) == nil {
			c.ended(fctx, rec.RunID)
		}
		cancel()
		c.obs.runs.WithLabelValues(p.Name(), rec.Request.Asset, string(rec.State)).Observe(time.Since(start).Seconds())
		c.log.Info().Str("run_id", rec.RunID).Str("pipeline", p.Name()).Str("asset", rec.Request.Asset).
			Str("state", string(rec.State)).Dur("duration", time.Since(start)).Msg("run_finished")
	})
	if !ok {
		c.log.Info().Str("run_id", rec.RunID).Msg("run_left_for_resume")
	}
}

// schedule publishes a delayed run; JetStream fires it onto the start
// subject at its time.
func (c *Coordinator) schedule(ctx context.Context, rec protocol.RunRecord) *protocol.Error {
	body, perr := protocol.EncodeScheduledRun(protocol.ScheduledRun{V: protocol.Version, RunID: rec.RunID, Request: rec.Request})
	if perr != nil {
		return perr
	}
	// Indexed first, so that status finds every scheduled run.
	target := schedTarget(rec.Request.Pipeline, rec.Request.Asset, rec.Request.Partition)
	if err := c.indexSchedule(ctx, target, &schedEntry{RunID: rec.RunID, At: rec.Request.ScheduledAt.UTC()}, ""); err != nil {
		return wire(unreachable(err, "index scheduled run"))
	}
	_, err := c.js.Publish(ctx, protocol.ScheduleSubject(rec.RunID), body,
		jetstream.WithScheduleAt(*rec.Request.ScheduledAt), jetstream.WithScheduleTarget(protocol.StartSubject(rec.Request.Pipeline)))
	if err != nil {
		c.unindexSchedule(context.WithoutCancel(ctx), rec.Request, rec.RunID)
		return wire(unreachable(err, "schedule run"))
	}
	c.trackScheduled(rec)
	return nil
}

func (c *Coordinator) trackScheduled(rec protocol.RunRecord) {
	c.mu.Lock()
	c.scheduled[rec.RunID] = bridge.MaterializationKey(rec.Request.Pipeline, rec.Request.Asset, cmp.Or(rec.Request.Partition, flowstone.DefaultPartition))
	c.mu.Unlock()
}

// startSchedules consumes fired schedules (and keeps liveness up).
func (c *Coordinator) startSchedules(ctx context.Context) error {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, fleet.ScheduleStream, jetstream.ConsumerConfig{
		Durable: startsConsumer, FilterSubject: protocol.StartSubjects, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return unreachable(err, "schedule consumer")
	}
	c.starts, err = cons.Consume(func(m jetstream.Msg) { c.calls.Do(func() { c.onStart(m) }) })
	if err != nil {
		return unreachable(err, "consume schedules")
	}
	c.loops.Add(1)
	go func() {
		defer c.loops.Done()
		hb := time.NewTicker(heartbeatEvery)
		adopt := time.NewTicker(adoptEvery)
		defer hb.Stop()
		defer adopt.Stop()
		c.heartbeat()
		for {
			select {
			case <-c.ctx.Done():
				c.runs.Delete(context.Background(), heartbeatKey(c.cfg.ID), 0)
				return
			case <-hb.C:
				c.heartbeat()
			case <-adopt.C:
				c.adoptOrphans(c.ctx, false)
			}
		}
	}()
	return nil
}

func (c *Coordinator) heartbeat() {
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	if _, err := c.runs.Put(c.ctx, heartbeatKey(c.cfg.ID), []byte(ts)); err != nil && c.ctx.Err() == nil {
		c.log.Warn().Err(err).Msg("heartbeat_failed")
	}
}

// onStart starts a scheduled run when its schedule fires, never before its
// time.
func (c *Coordinator) onStart(m jetstream.Msg) {
	sr, perr := protocol.DecodeScheduledRun(m.Data())
	if perr != nil {
		c.log.Warn().Str("error", perr.Message).Msg("schedule_rejected")
		m.Term()
		return
	}
	if at := sr.Request.ScheduledAt; at != nil && time.Now().Before(*at) {
		m.NakWithDelay(time.Until(*at))
		return
	}
	rec, rev, err := c.loadRun(c.ctx, sr.RunID)
	if err != nil || rec.State != protocol.StateScheduled {
		if err == nil || errors.Is(err, kv.ErrNotFound) {
			c.unindexSchedule(c.ctx, sr.Request, sr.RunID)
		}
		m.Ack() // cancelled, or already started elsewhere
		return
	}
	p, perr := c.reg.get(rec.Request.Pipeline)
	if perr != nil {
		rec.State, rec.Error = protocol.StateFailed, perr
		if c.saveRun(c.ctx, &rec) == nil {
			c.ended(c.ctx, rec.RunID)
		}
		m.Ack()
		return
	}
	// Claim the run: only one coordinator starts it.
	rec.State, rec.Coordinator, rec.UpdatedAt = protocol.StatePending, c.cfg.ID, time.Now().UTC()
	b, _ := protocol.EncodeRunRecord(rec)
	if _, err := c.runs.Update(c.ctx, protocol.RunKey(rec.RunID), b, rev); err != nil {
		m.Ack()
		return
	}
	c.mu.Lock()
	delete(c.scheduled, rec.RunID)
	c.mu.Unlock()
	c.unindexSchedule(c.ctx, rec.Request, rec.RunID)
	c.drive(p, rec)
	m.Ack()
}

// resume picks up this coordinator's unfinished runs (after a restart) and
// those of coordinators that died.
func (c *Coordinator) resume(ctx context.Context) error {
	return c.adoptOrphans(ctx, true)
}

// adoptOrphans goes over the live-run index: it drives the runs whose
// coordinator is gone (or, with includeOwn, that this coordinator left
// unfinished when it stopped), tracks scheduled runs for cancel, keeps
// long-lived records from expiring, and clears index keys of runs that
// ended. Only live runs are read, however many ended runs the bucket keeps.
func (c *Coordinator) adoptOrphans(ctx context.Context, includeOwn bool) error {
	c.adoptBackfills(ctx)
	keys, err := c.runs.Keys(ctx, protocol.LiveRunPrefix)
	if err != nil {
		return err
	}
	alive := map[string]bool{}
	for _, key := range keys {
		runID := strings.TrimPrefix(key, protocol.LiveRunPrefix)
		rec, rev, err := c.loadRun(ctx, runID)
		switch {
		case errors.Is(err, kv.ErrNotFound):
			c.clearStaleLive(ctx, key)
			continue
		case err != nil:
			continue
		case rec.State.Terminal():
			// Its coordinator stored the outcome but not the erase.
			c.ended(ctx, runID)
			continue
		}
		if time.Since(rec.UpdatedAt) > refreshAfter {
			if rev, err = c.refresh(ctx, &rec, rev); err != nil {
				continue // changed meanwhile: the next pass sees it
			}
		}
		if rec.State == protocol.StateScheduled {
			c.trackScheduled(rec) // the schedule stream fires it
			continue
		}
		owner := rec.Coordinator
		if owner == c.cfg.ID {
			if !includeOwn {
				continue
			}
		} else {
			live, seen := alive[owner]
			if !seen {
				live = c.coordinatorAlive(ctx, owner)
				alive[owner] = live
			}
			if live {
				continue
			}
		}
		p, perr := c.reg.get(rec.Request.Pipeline)
		if perr != nil {
			continue // its workers may come back
		}
		rec.Coordinator, rec.UpdatedAt = c.cfg.ID, time.Now().UTC()
		b, _ := protocol.EncodeRunRecord(rec)
		if _, err := c.runs.Update(ctx, protocol.RunKey(runID), b, rev); err != nil {
			continue // another coordinator adopted it
		}
		c.log.Info().Str("run_id", runID).Str("from", owner).Msg("run_resumed")
		c.drive(p, rec)
	}
	return nil
}

// refresh writes a live run's record and index key again, unchanged but
// for UpdatedAt, if the record is still at rev; it returns the new revision.
func (c *Coordinator) refresh(ctx context.Context, rec *protocol.RunRecord, rev uint64) (uint64, error) {
	rec.UpdatedAt = time.Now().UTC()
	b, perr := protocol.EncodeRunRecord(*rec)
	if perr != nil {
		return 0, perr
	}
	nrev, err := c.runs.Update(ctx, protocol.RunKey(rec.RunID), b, rev)
	if err != nil {
		return 0, err
	}
	if err := c.markLive(ctx, rec.RunID); err != nil {
		return 0, err
	}
	if rec.State == protocol.StateScheduled && rec.Request.ScheduledAt != nil {
		// Its entry in the scheduled-run index lives in the same bucket,
		// under the same TTL: written again with it, status keeps finding
		// a run scheduled further ahead than the bucket keeps a key.
		target := schedTarget(rec.Request.Pipeline, rec.Request.Asset, rec.Request.Partition)
		if err := c.indexSchedule(ctx, target, &schedEntry{RunID: rec.RunID, At: rec.Request.ScheduledAt.UTC()}, ""); err != nil {
			return 0, err
		}
	}
	c.log.Info().Str("run_id", rec.RunID).Str("state", string(rec.State)).Msg("run_record_refreshed")
	return nrev, nil
}

// clearStaleLive erases an index key whose run has no record, once it is
// old enough that the run's first write cannot still be on its way (a
// coordinator that died between the two writes of accept).
func (c *Coordinator) clearStaleLive(ctx context.Context, key string) {
	e, err := c.runs.Get(ctx, key)
	if err != nil {
		return
	}
	if at, err := time.Parse(time.RFC3339Nano, string(e.Value)); err == nil && time.Since(at) < heartbeatStale {
		return
	}
	c.runs.Erase(ctx, key)
}

func (c *Coordinator) coordinatorAlive(ctx context.Context, id string) bool {
	e, err := c.runs.Get(ctx, heartbeatKey(id))
	if errors.Is(err, kv.ErrNotFound) || err != nil {
		return false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(e.Value))
	return err == nil && time.Since(ts) < heartbeatStale
}

// cancelScheduled cancels this coordinator's known scheduled runs of a
// target and returns how many.
func (c *Coordinator) cancelScheduled(ctx context.Context, targetKey string) int {
	c.mu.Lock()
	var ids []string
	for id, key := range c.scheduled {
		if key == targetKey {
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	n := 0
	for _, id := range ids {
		rec, rev, err := c.loadRun(ctx, id)
		if err != nil || rec.State != protocol.StateScheduled {
			continue
		}
		rec.State, rec.UpdatedAt = protocol.StateCancelled, time.Now().UTC()
		rec.Error = &protocol.Error{Code: protocol.CodeCancelled, Message: "scheduled run was cancelled before it started"}
		b, _ := protocol.EncodeRunRecord(rec)
		if _, err := c.runs.Update(ctx, protocol.RunKey(id), b, rev); err != nil {
			continue
		}
		c.ended(ctx, id)
		c.unindexSchedule(ctx, rec.Request, id)
		if s, err := c.js.Stream(ctx, fleet.ScheduleStream); err == nil {
			s.Purge(ctx, jetstream.WithPurgeSubject(protocol.ScheduleSubject(id)))
		}
		c.mu.Lock()
		delete(c.scheduled, id)
		c.mu.Unlock()
		n++
	}
	return n
}

// wire converts any error for the wire.
func wire(err error) *protocol.Error {
	if err == nil {
		return nil
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe
	}
	return bridge.WireError(flowstone.AsError(err))
}

// runAlive reports whether a run is still going: its record exists and is
// not terminal (for a backfill's partition, its backfill's record). A materialization record held by a run that ended (or was
// never recorded) is stale and may be taken over.
func (c *Coordinator) runAlive(ctx context.Context, runID string) bool {
	if id, ok := protocol.BackfillOfRun(runID); ok {
		return c.backfillAlive(ctx, id)
	}
	rec, _, err := c.loadRun(ctx, runID)
	return err == nil && !rec.State.Terminal()
}
