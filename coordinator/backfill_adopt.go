package coordinator

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

// backfills is the set of backfills this coordinator drives. It owns the
// drivers' goroutines: close refuses new ones and waits for the running
// ones, which end (leaving their backfills for the next coordinator) once
// the coordinator's context is cancelled.
type backfills struct {
	mu      sync.Mutex
	driving map[string]bool
	closed  bool
	wg      sync.WaitGroup

	bucketMu sync.Mutex
	kv       jetstream.KeyValue // the runs bucket, for watches of one key
}

// reserve marks id as driven here before its driver starts (so that
// adoptBackfills leaves it alone), unless it already is or the
// coordinator is stopping.
func (s *backfills) reserve(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.driving[id] {
		return false
	}
	if s.driving == nil {
		s.driving = map[string]bool{}
	}
	s.driving[id] = true
	s.wg.Add(1)
	return true
}

// release undoes reserve for a driver that never started.
func (s *backfills) release(id string) {
	s.mu.Lock()
	delete(s.driving, id)
	s.mu.Unlock()
	s.wg.Done()
}

// isDriving reports whether id is driven here.
func (s *backfills) isDriving(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.driving[id]
}

// start runs a reserved driver.
func (s *backfills) start(d *driver, adopted bool) {
	go func() {
		defer s.release(d.id())
		d.run(adopted)
	}()
}

// close refuses new drivers and waits for those running.
func (s *backfills) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
}

// bucket returns the runs bucket as JetStream KV, opened once.
func (s *backfills) bucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	s.bucketMu.Lock()
	defer s.bucketMu.Unlock()
	if s.kv != nil {
		return s.kv, nil
	}
	b, err := js.KeyValue(ctx, protocol.RunsBucket)
	if err != nil {
		return nil, err
	}
	s.kv = b
	return b, nil
}

// startBackfills ties the drivers to the coordinator's life: once its
// context ends, no driver starts and Stop waits for the running ones.
// Start calls it before the first adoption.
func (c *Coordinator) startBackfills() {
	c.loops.Add(1)
	go func() {
		defer c.loops.Done()
		<-c.ctx.Done()
		c.bf.close()
	}()
}

// adoptBackfills goes over the live-backfill index, as adoptOrphans goes
// over the live runs: it drives the backfills whose coordinator is gone,
// and those of this coordinator's id that no driver here drives (it was
// restarted), and clears the index keys of backfills that ended.
//
// A backfill is taken over by writing this coordinator's id into its
// record at the revision read: of several coordinators adopting at once,
// one wins. The new driver reads which partitions ended from their
// materialization records (see driver.survey).
func (c *Coordinator) adoptBackfills(ctx context.Context) {
	keys, err := c.runs.Keys(ctx, protocol.LiveBackfillPrefix)
	if err != nil {
		return
	}
	alive := map[string]bool{}
	for _, key := range keys {
		id := strings.TrimPrefix(key, protocol.LiveBackfillPrefix)
		if c.bf.isDriving(id) {
			continue
		}
		rec, rev, err := c.loadBackfill(ctx, id)
		switch {
		case errors.Is(err, kv.ErrNotFound):
			c.clearStaleLive(ctx, key)
			continue
		case err != nil:
			continue
		case rec.State.Terminal():
			c.runs.Erase(ctx, key) // its driver stored the end but not the erase
			continue
		}
		owner := rec.Coordinator
		if owner != c.cfg.ID {
			live, seen := alive[owner]
			if !seen {
				live = c.coordinatorAlive(ctx, owner)
				alive[owner] = live
			}
			if live {
				continue
			}
		}
		c.adoptBackfill(ctx, rec, rev)
	}
}

// adoptBackfill takes over one backfill and starts driving it.
func (c *Coordinator) adoptBackfill(ctx context.Context, rec protocol.BackfillRecord, rev uint64) {
	p, perr := c.reg.get(rec.Request.Pipeline)
	if perr != nil {
		return // its workers may come back
	}
	parts, err := c.loadBackfillParts(ctx, rec)
	lostParts := errors.Is(err, errPartitionsLost)
	if err != nil && !lostParts {
		return
	}
	from := rec.Coordinator
	rec.Coordinator, rec.UpdatedAt = c.cfg.ID, time.Now().UTC()
	if lostParts {
		// Nothing can drive it: end it, saying why.
		rec.State = protocol.StateFailed
		rec.NotStarted = rec.Total - (rec.Succeeded + rec.Failed + rec.Skipped)
		rec.Error = &protocol.Error{Code: protocol.CodeInternal, Message: "backfill " + rec.ID + " cannot go on: " + err.Error()}
	}
	b, perr := protocol.EncodeBackfillRecord(rec)
	if perr != nil {
		c.log.Error().Str("backfill_id", rec.ID).Str("error", perr.Message).Msg("backfill_record_invalid")
		return
	}
	if !c.bf.reserve(rec.ID) {
		return
	}
	nrev, err := c.runs.Update(ctx, protocol.BackfillKey(rec.ID), b, rev)
	if err != nil {
		c.bf.release(rec.ID) // another coordinator adopted it first
		return
	}
	if lostParts {
		c.bf.release(rec.ID)
		c.runs.Erase(ctx, protocol.LiveBackfillKey(rec.ID))
		c.log.Error().Str("backfill_id", rec.ID).Err(err).Msg("backfill_failed")
		return
	}
	c.log.Info().Str("backfill_id", rec.ID).Str("from", from).Int("partitions", rec.Total).Msg("backfill_adopted")
	// The chunks and index key are as old as the backfill: rewrite them
	// soon if that is old.
	c.bf.start(newDriver(c, p, rec, nrev, parts, rec.CreatedAt), true)
}
