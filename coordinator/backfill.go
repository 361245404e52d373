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
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// A backfill is a record in the runs bucket (see protocol.BackfillRecord),
// not a request handler: the coordinator that accepts it writes its
// partitions and its record, answers with its id and drives it
// (backfill_driver.go); another coordinator, or this one restarted, adopts
// it if its driver dies (backfill_adopt.go); any coordinator tells where
// it stands (backfill_status).

// backfillChunkBytes is the size a chunk of a backfill's partition list
// aims at: a 1 MiB request takes about four, each far below the KV value
// limit.
const backfillChunkBytes = 256 << 10

// specOf is the request without its partitions, as the record keeps it.
func specOf(req protocol.BackfillRequest) protocol.BackfillSpec {
	return protocol.BackfillSpec{Pipeline: req.Pipeline, Asset: req.Asset, Parallel: req.Parallel, Force: req.Force,
		OnError: req.OnError, WithDeps: req.WithDeps, TimeoutMS: req.TimeoutMS, Priority: req.Priority}
}

// backfillOptions turns a recorded backfill into the engine's options;
// the driver adds the partitions and its progress callback.
func backfillOptions(id string, s protocol.BackfillSpec) []flowstone.BackfillOption {
	opts := []flowstone.BackfillOption{flowstone.BackfillID(id), flowstone.Parallel(max(s.Parallel, 1)), flowstone.Priority(s.Priority)}
	if s.WithDeps != nil && !*s.WithDeps {
		opts = append(opts, flowstone.WithDeps(false))
	}
	if s.TimeoutMS > 0 {
		opts = append(opts, flowstone.Timeout(time.Duration(s.TimeoutMS)*time.Millisecond))
	}
	return opts
}

// validateBackfill refuses what the engine would refuse before running
// anything: a bad option, or a partition the asset's scheme rejects.
func (c *Coordinator) validateBackfill(p *flowstone.Pipeline, req protocol.BackfillRequest) *protocol.Error {
	opts := append(backfillOptions("x", specOf(req)), flowstone.Partitions(req.Partitions...))
	if _, err := bridge.ResolveBackfill(opts...); err != nil {
		return wire(err)
	}
	for _, part := range req.Partitions {
		if err := c.engine.Validate(p, req.Asset, flowstone.Partition(part)); err != nil {
			return wire(err)
		}
	}
	return nil
}

// acceptBackfill records a validated backfill and starts driving it: its
// partitions first, then its key in the live-backfill index, then its
// record, so that a record always has its partitions and is always found
// by adoptBackfills. It returns the backfill's id.
func (c *Coordinator) acceptBackfill(ctx context.Context, p *flowstone.Pipeline, req protocol.BackfillRequest) (string, *protocol.Error) {
	id := nuid.Next()
	chunks, perr := chunkPartitions(id, req.Partitions)
	if perr != nil {
		return "", perr
	}
	now := time.Now().UTC()
	rec := protocol.BackfillRecord{V: protocol.Version, ID: id, Request: specOf(req), Total: len(req.Partitions), Chunks: len(chunks),
		State: protocol.StateRunning, Coordinator: c.cfg.ID, Counted: make([]byte, (len(req.Partitions)+7)/8), CreatedAt: now, UpdatedAt: now}
	b, perr := protocol.EncodeBackfillRecord(rec)
	if perr != nil {
		return "", perr
	}
	if !c.bf.reserve(id) {
		return "", stoppingError()
	}
	for i, chunk := range chunks {
		if _, err := c.runs.Put(ctx, protocol.BackfillPartsKey(id, i), chunk); err != nil {
			c.bf.release(id)
			return "", wire(unreachable(err, "record backfill partitions"))
		}
	}
	if err := c.markBackfillLive(ctx, id); err != nil {
		c.bf.release(id)
		return "", wire(unreachable(err, "index backfill"))
	}
	rev, err := c.runs.Create(ctx, protocol.BackfillKey(id), b)
	if err != nil {
		c.bf.release(id)
		c.runs.Erase(context.WithoutCancel(ctx), protocol.LiveBackfillKey(id))
		return "", wire(unreachable(err, "record backfill"))
	}
	c.log.Info().Str("backfill_id", id).Str("pipeline", p.Name()).Str("asset", req.Asset).Int("partitions", rec.Total).
		Int("parallel", max(req.Parallel, 1)).Msg("backfill_accepted")
	c.bf.start(newDriver(c, p, rec, rev, req.Partitions, now), false)
	return id, nil
}

// chunkPartitions encodes the partition list in chunks of about
// backfillChunkBytes (and never over protocol.MaxMessageBytes, however
// much the JSON escapes them).
func chunkPartitions(id string, parts []string) ([][]byte, *protocol.Error) {
	var out [][]byte
	var encode func(parts []string) *protocol.Error
	encode = func(parts []string) *protocol.Error {
		b, perr := protocol.EncodeBackfillPartitions(protocol.BackfillPartitions{V: protocol.Version, ID: id, Index: len(out), Partitions: parts})
		if perr != nil && perr.Code == protocol.CodePayloadTooLarge && len(parts) > 1 {
			if perr := encode(parts[:len(parts)/2]); perr != nil {
				return perr
			}
			return encode(parts[len(parts)/2:])
		}
		if perr != nil {
			return perr
		}
		out = append(out, b)
		return nil
	}
	start, size := 0, 0
	for i, p := range parts {
		if size > 0 && size+len(p)+3 > backfillChunkBytes {
			if perr := encode(parts[start:i]); perr != nil {
				return nil, perr
			}
			start, size = i, 0
		}
		size += len(p) + 3
	}
	if perr := encode(parts[start:]); perr != nil {
		return nil, perr
	}
	return out, nil
}

// markBackfillLive writes (or rewrites) a backfill's live-index key.
func (c *Coordinator) markBackfillLive(ctx context.Context, id string) error {
	_, err := c.runs.Put(ctx, protocol.LiveBackfillKey(id), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	return err
}

// loadBackfill reads a backfill's record.
func (c *Coordinator) loadBackfill(ctx context.Context, id string) (protocol.BackfillRecord, uint64, error) {
	e, err := c.runs.Get(ctx, protocol.BackfillKey(id))
	if err != nil {
		return protocol.BackfillRecord{}, 0, err
	}
	rec, perr := protocol.DecodeBackfillRecord(e.Value)
	if perr != nil {
		return protocol.BackfillRecord{}, 0, perr
	}
	return rec, e.Revision, nil
}

// errPartitionsLost means a chunk of a backfill's partition list is gone
// (expired with the bucket's TTL, or deleted by hand).
var errPartitionsLost = errors.New("partition list lost")

// loadBackfillParts reads a backfill's partition list from its chunks.
func (c *Coordinator) loadBackfillParts(ctx context.Context, rec protocol.BackfillRecord) ([]string, error) {
	parts := make([]string, 0, rec.Total)
	for i := range rec.Chunks {
		e, err := c.runs.Get(ctx, protocol.BackfillPartsKey(rec.ID, i))
		if errors.Is(err, kv.ErrNotFound) {
			return nil, fmt.Errorf("%w: chunk %d of %d is missing", errPartitionsLost, i, rec.Chunks)
		}
		if err != nil {
			return nil, err
		}
		chunk, perr := protocol.DecodeBackfillPartitions(e.Value)
		if perr != nil || chunk.ID != rec.ID || chunk.Index != i {
			return nil, fmt.Errorf("%w: chunk %d of %d is unreadable", errPartitionsLost, i, rec.Chunks)
		}
		parts = append(parts, chunk.Partitions...)
	}
	if len(parts) != rec.Total {
		return nil, fmt.Errorf("%w: the chunks hold %d partitions, the record %d", errPartitionsLost, len(parts), rec.Total)
	}
	return parts, nil
}

// backfillAlive reports whether a backfill is still going: its record
// exists and is not terminal.
func (c *Coordinator) backfillAlive(ctx context.Context, id string) bool {
	rec, _, err := c.loadBackfill(ctx, id)
	return err == nil && !rec.State.Terminal()
}

func stoppingError() *protocol.Error {
	return &protocol.Error{Code: protocol.CodeUnavailable, Message: "this coordinator is stopping: send the backfill again (another coordinator answers)"}
}

func backfillNotFound(id string) *protocol.Error {
	return &protocol.Error{Code: protocol.CodeNotFound, Details: map[string]any{"backfill_id": id},
		Message: fmt.Sprintf("no backfill %q: check the id (the backfill reply's run_id); a backfill is kept for %v after it ended", id, fleet.RunRetention)}
}

// backfillReply is the reply of a synchronous backfill request: the counts
// of the ended backfill.
func backfillReply(rec protocol.BackfillRecord) protocol.BackfillReply {
	return protocol.BackfillReply{Succeeded: rec.Succeeded, Failed: rec.Failed, Skipped: rec.Skipped, NotStarted: rec.NotStarted,
		RunID: rec.ID, Errors: rec.Errors}
}

// backfillStatus answers backfill_status: the record as it is, or once
// its revision passes req.AfterRevision (waiting up to req.WaitMS).
func (c *Coordinator) backfillStatus(ctx context.Context, req protocol.BackfillStatusRequest) (protocol.BackfillStatusReply, *protocol.Error) {
	rec, rev, err := c.loadBackfill(ctx, req.ID)
	switch {
	case errors.Is(err, kv.ErrNotFound):
		return protocol.BackfillStatusReply{}, backfillNotFound(req.ID)
	case err != nil:
		return protocol.BackfillStatusReply{}, wire(unreachable(err, "read backfill"))
	}
	if req.AfterRevision == 0 || rev > req.AfterRevision || req.WaitMS == 0 || rec.State.Terminal() {
		return protocol.BackfillStatusOf(rec, rev), nil
	}
	wctx, cancel := context.WithTimeout(ctx, time.Duration(req.WaitMS)*time.Millisecond)
	defer cancel()
	if next, nrev, ok := c.nextBackfillRecord(wctx, req.ID, req.AfterRevision, false); ok {
		return protocol.BackfillStatusOf(next, nrev), nil
	}
	return protocol.BackfillStatusOf(rec, rev), nil
}

// nextBackfillRecord watches a backfill's record until it has a revision
// past after (or, with terminal, until it is terminal), or ctx ends.
func (c *Coordinator) nextBackfillRecord(ctx context.Context, id string, after uint64, terminal bool) (protocol.BackfillRecord, uint64, bool) {
	bucket, err := c.bf.bucket(ctx, c.js)
	if err != nil {
		return protocol.BackfillRecord{}, 0, false
	}
	w, err := bucket.Watch(ctx, protocol.BackfillKey(id), jetstream.IgnoreDeletes())
	if err != nil {
		return protocol.BackfillRecord{}, 0, false
	}
	defer w.Stop()
	// A stopping coordinator answers at once rather than hold its Stop
	// for as long as the wait: the caller asks again, elsewhere.
	stopping := time.NewTicker(250 * time.Millisecond)
	defer stopping.Stop()
	for {
		select {
		case <-stopping.C:
			if c.svc == nil || c.svc.Stopped() {
				return protocol.BackfillRecord{}, 0, false
			}
		case e, ok := <-w.Updates():
			if !ok {
				return protocol.BackfillRecord{}, 0, false
			}
			if e == nil || e.Revision() <= after {
				continue
			}
			rec, perr := protocol.DecodeBackfillRecord(e.Value())
			if perr != nil || terminal && !rec.State.Terminal() {
				continue
			}
			return rec, e.Revision(), true
		case <-ctx.Done():
			return protocol.BackfillRecord{}, 0, false
		}
	}
}
