package coordinator

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/protocol"
)

// How a driver keeps its backfill's record.
const (
	// backfillFlushEvery is the most often a driver writes its progress:
	// partitions ending in between share one write.
	backfillFlushEvery = 250 * time.Millisecond
	// backfillIdleWrite is how long a driver lets its record go unwritten
	// when nothing ends: the write doubles as a check that the record is
	// still its own, and shows followers that the backfill is driven.
	backfillIdleWrite = 5 * time.Second
	// backfillErrorBytes bounds the encoded size of the errors a record
	// keeps, with each error cut to backfillErrorCut bytes of message, so
	// that the record stays far below protocol.MaxMessageBytes.
	backfillErrorBytes = 384 << 10
	backfillErrorCut   = 2 << 10
	// surveyParallel is how many materialization records an adopting
	// driver reads at once.
	surveyParallel = 32
)

// driver drives one backfill on this coordinator: it runs the partitions
// not yet counted through the engine, counts them as they end and writes
// the record (compare-and-set, coalesced), until every partition is
// counted, the coordinator stops, or the record turns out to be someone
// else's.
type driver struct {
	c     *Coordinator
	p     *flowstone.Pipeline
	parts []string
	index map[string]int // partition -> its place in parts (its bit)
	ctx   context.Context

	mu       sync.Mutex
	rec      protocol.BackfillRecord
	rev      uint64
	dirty    bool
	written  time.Time // the record's last write (or read, when adopted)
	keysAt   time.Time // when the chunks and live key were last written
	errBytes int       // encoded bytes of rec.Errors
	lost     bool      // the record was taken over: write nothing more
	last     flowstone.BackfillStats
	resumed  map[int]bool // left pending by the driver before: run again without Force
	verify   []int        // resumed partitions the engine found materialized
}

func newDriver(c *Coordinator, p *flowstone.Pipeline, rec protocol.BackfillRecord, rev uint64, parts []string, keysAt time.Time) *driver {
	d := &driver{c: c, p: p, parts: parts, index: make(map[string]int, len(parts)), ctx: c.ctx, rec: rec, rev: rev,
		written: time.Now(), keysAt: keysAt, resumed: map[int]bool{}}
	for i, part := range parts {
		d.index[part] = i
	}
	for _, e := range rec.Errors {
		d.errBytes += errorSize(e)
	}
	return d
}

func (d *driver) id() string { return d.rec.ID }

// run drives the backfill to its end. adopted says the record was left by
// another driver: which partitions ended is then read from their records.
func (d *driver) run(adopted bool) {
	start := time.Now()
	var resume, fresh []string
	if adopted {
		var ok bool
		if resume, fresh, ok = d.survey(); !ok {
			d.leave()
			return
		}
	} else {
		fresh = d.parts
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.flushLoop(stop)
	}()
	// Partitions the previous driver left pending or running go first
	// and run to their end whatever the policy: their tasks may be
	// queued, and they were started before any halt.
	if len(resume) > 0 {
		d.backfill(resume, false, false)
	}
	if len(fresh) > 0 && !d.halted() && d.ctx.Err() == nil {
		d.backfill(fresh, d.rec.Request.Force, d.rec.Request.OnError == protocol.OnErrorHalt)
	}
	close(stop)
	wg.Wait()
	if d.ctx.Err() != nil {
		d.leave()
		return
	}
	d.settleVerified()
	d.finish(start)
}

func (d *driver) halted() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rec.Halted
}

// backfill runs parts through the engine, counting each as it ends.
func (d *driver) backfill(parts []string, force, halt bool) {
	d.mu.Lock()
	d.last = flowstone.BackfillStats{}
	d.mu.Unlock()
	opts := append(backfillOptions(d.id(), d.rec.Request), flowstone.Partitions(parts...), flowstone.OnProgress(d.onProgress))
	if force {
		opts = append(opts, flowstone.Force())
	}
	if halt {
		opts = append(opts, flowstone.OnError(flowstone.Halt))
	}
	if _, err := d.c.engine.Backfill(d.ctx, d.p, d.rec.Request.Asset, opts...); err != nil && d.ctx.Err() == nil {
		// Refused before anything ran: the pipeline the workers host now
		// differs from the one the backfill was accepted for.
		d.mu.Lock()
		d.rec.Error = wire(err)
		d.dirty = true
		d.mu.Unlock()
	}
}

// onProgress counts a partition the engine reports ended. Reports made
// while the coordinator stops are left out: the partition was cut short,
// or its end is in its record, where the next driver reads it.
func (d *driver) onProgress(bp flowstone.BackfillProgress) {
	if d.ctx.Err() != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	skipped := bp.Stats.Skipped > d.last.Skipped
	d.last = bp.Stats
	i, ok := d.index[bp.Partition]
	if !ok || d.rec.CountedBit(i) {
		return
	}
	switch {
	case bp.Err != nil:
		d.countFailed(i, bridge.WireError(bp.Err))
	case skipped && d.resumed[i]:
		// Materialized before the engine planned it: by this backfill's
		// run (likely) or by another one. Its record tells which.
		d.verify = append(d.verify, i)
		return
	case skipped:
		d.rec.Skipped++
	default:
		d.rec.Succeeded++
	}
	d.rec.SetCounted(i)
	d.dirty = true
}

// countFailed counts partition i as failed with e, keeping e while the
// record has room. Called with d.mu held.
func (d *driver) countFailed(i int, e *protocol.Error) {
	ev := d.c.log.Warn().Str("backfill_id", d.id()).Str("partition", d.parts[i])
	if e != nil {
		ev = ev.Str("code", e.Code).Str("error", e.Message)
	}
	ev.Msg("backfill_partition_failed")
	d.rec.Failed++
	d.rec.SetCounted(i)
	d.dirty = true
	if d.rec.Request.OnError == protocol.OnErrorHalt {
		d.rec.Halted = true
	}
	if e == nil {
		e = &protocol.Error{Code: protocol.CodeExecutionFailed, Message: "partition " + d.parts[i] + " failed"}
	}
	e = cutError(e)
	if n := errorSize(e) + len(d.parts[i]); len(d.rec.Errors) < protocol.MaxBackfillErrors && d.errBytes+n <= backfillErrorBytes {
		if d.rec.Errors == nil {
			d.rec.Errors = map[string]*protocol.Error{}
		}
		d.rec.Errors[d.parts[i]] = e
		d.errBytes += n
		return
	}
	d.rec.ErrorsOmitted++
}

// cutError keeps a long error's code and the start of its message only.
func cutError(e *protocol.Error) *protocol.Error {
	if errorSize(e) <= backfillErrorCut {
		return e
	}
	msg := []rune(e.Message)
	if len(msg) > backfillErrorCut/4 {
		msg = append(msg[:backfillErrorCut/4], '…')
	}
	return &protocol.Error{Code: e.Code, Message: string(msg)}
}

// errorSize is about the encoded size of e (its details estimated
// generously).
func errorSize(e *protocol.Error) int {
	n := len(e.Code) + 6*len(e.Message) + 32
	for k, v := range e.Details {
		n += len(k) + 16
		if s, ok := v.(string); ok {
			n += 6 * len(s)
		} else {
			n += 256
		}
	}
	return n
}

// survey sorts the partitions an adopted backfill has not counted by what
// their records say: ended under this backfill's run (counted now),
// materialized by another run (skipped, unless Force), left pending or
// running by this backfill's run (resumed), or the rest (to run, unless
// the backfill halted). It reports false if the coordinator stopped
// meanwhile.
func (d *driver) survey() (resume, fresh []string, ok bool) {
	var todo []int
	for i := range d.parts {
		if !d.rec.CountedBit(i) {
			todo = append(todo, i)
		}
	}
	// Partitions whose asset has no record at all never started: one
	// presence check spares reading each.
	present := d.present(todo)
	type verdict struct {
		i  int
		st flowstone.StatusInfo
		ok bool
	}
	out := make(chan verdict)
	next := make(chan int)
	var wg sync.WaitGroup
	for range surveyParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				st, err := d.c.engine.Status(d.ctx, d.p, d.rec.Request.Asset, flowstone.Partition(d.parts[i]))
				select {
				case out <- verdict{i, st, err == nil}:
				case <-d.ctx.Done():
				}
			}
		}()
	}
	go func() {
		defer close(next)
		for _, i := range todo {
			if present != nil && !present[i] {
				continue
			}
			select {
			case next <- i:
			case <-d.ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(out)
	}()
	status := make(map[int]verdict, len(todo))
	for v := range out {
		status[v.i] = v
	}
	if d.ctx.Err() != nil {
		return nil, nil, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	force := d.rec.Request.Force
	for _, i := range todo {
		v, read := status[i]
		ours := protocol.BackfillRunID(d.id(), d.parts[i])
		switch {
		case !read:
			fresh = append(fresh, d.parts[i]) // no record
		case !v.ok:
			// Unreadable now: run it without Force, which can neither run
			// a materialized partition again nor miss a pending one.
			d.resumed[i] = true
			resume = append(resume, d.parts[i])
		case v.st.RunID == ours && v.st.State == flowstone.StateCompleted:
			d.rec.Succeeded++
			d.rec.SetCounted(i)
			d.dirty = true
		case v.st.RunID == ours && v.st.State == flowstone.StateSkipped:
			// Its router chose another branch: nothing ran.
			d.rec.Skipped++
			d.rec.SetCounted(i)
			d.dirty = true
		case v.st.RunID == ours && v.st.State.Terminal():
			d.countFailed(i, bridge.WireError(v.st.Error))
		case v.st.Value != nil && !force:
			// Materialized by another run (whatever its latest attempt).
			d.rec.Skipped++
			d.rec.SetCounted(i)
			d.dirty = true
		case v.st.RunID == ours:
			d.resumed[i] = true
			resume = append(resume, d.parts[i])
		default:
			fresh = append(fresh, d.parts[i])
		}
	}
	if d.rec.Halted {
		fresh = nil // halted stays halted: they count as not started
	}
	d.c.log.Info().Str("backfill_id", d.id()).Int("counted", d.rec.Succeeded+d.rec.Failed+d.rec.Skipped).
		Int("resumed", len(resume)).Int("to_run", len(fresh)).Bool("halted", d.rec.Halted).Msg("backfill_surveyed")
	return resume, fresh, true
}

// present returns which of the partitions todo have a record of the
// backfill's asset, or nil if the store cannot tell in one pass.
func (d *driver) present(todo []int) map[int]bool {
	keys := make([]string, len(todo))
	for j, i := range todo {
		keys[j] = bridge.MaterializationKey(d.p.Name(), d.rec.Request.Asset, d.parts[i])
	}
	found, err := d.c.mats.Present(d.ctx, keys)
	if err != nil {
		return nil
	}
	out := make(map[int]bool, len(found))
	for j, i := range todo {
		if found[keys[j]] {
			out[i] = true
		}
	}
	return out
}

// settleVerified counts the resumed partitions the engine found
// materialized, by the run their record names.
func (d *driver) settleVerified() {
	d.mu.Lock()
	verify := d.verify
	d.verify = nil
	d.mu.Unlock()
	for _, i := range verify {
		st, err := d.c.engine.Status(d.ctx, d.p, d.rec.Request.Asset, flowstone.Partition(d.parts[i]))
		d.mu.Lock()
		if err == nil && (st.Value == nil || st.Value.RunID != protocol.BackfillRunID(d.id(), d.parts[i])) {
			d.rec.Skipped++
		} else {
			d.rec.Succeeded++
		}
		d.rec.SetCounted(i)
		d.dirty = true
		d.mu.Unlock()
	}
}

// flushLoop writes the record while partitions end, until stop closes.
func (d *driver) flushLoop(stop <-chan struct{}) {
	t := time.NewTicker(backfillFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		due := d.dirty || time.Since(d.written) >= backfillIdleWrite
		refresh := time.Since(d.keysAt) >= refreshAfter
		d.mu.Unlock()
		if due {
			d.save(d.ctx)
		}
		if refresh {
			d.refreshKeys()
		}
	}
}

// errLost means the record was taken over by another coordinator.
var errLost = errors.New("backfill taken over by another coordinator")

// save writes the record at the revision last written. On a conflict it
// reads the record: if another coordinator took it over (this one was
// thought dead), the driver writes nothing more and lets its partitions
// end (they share their executions with the new driver's, under the same
// run ids); else it retries on the next flush.
func (d *driver) save(ctx context.Context) error {
	d.mu.Lock()
	if d.lost {
		d.mu.Unlock()
		return errLost
	}
	d.rec.UpdatedAt = time.Now().UTC()
	b, perr := protocol.EncodeBackfillRecord(d.rec)
	rev := d.rev
	d.dirty = false
	d.mu.Unlock()
	if perr != nil {
		d.c.log.Error().Str("backfill_id", d.id()).Str("error", perr.Message).Msg("backfill_record_invalid")
		return perr
	}
	nrev, err := d.c.runs.Update(ctx, protocol.BackfillKey(d.id()), b, rev)
	if err == nil {
		d.mu.Lock()
		d.rev, d.written = nrev, time.Now()
		d.mu.Unlock()
		return nil
	}
	d.mu.Lock()
	d.dirty = true
	d.mu.Unlock()
	if !errors.Is(err, kv.ErrConflict) {
		if ctx.Err() == nil {
			d.c.log.Warn().Err(err).Str("backfill_id", d.id()).Msg("backfill_write_failed")
		}
		return err
	}
	cur, crev, rerr := d.c.loadBackfill(ctx, d.id())
	if rerr != nil && !errors.Is(rerr, kv.ErrNotFound) {
		return rerr
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if rerr == nil && cur.Coordinator == d.c.cfg.ID && !cur.State.Terminal() {
		d.rev = crev // rewritten by this coordinator's earlier self: take its revision
		return err
	}
	d.lost = true
	d.c.log.Warn().Str("backfill_id", d.id()).Str("coordinator_now", cur.Coordinator).Msg("backfill_taken_over")
	return errLost
}

// refreshKeys writes the partition chunks and the live-index key again,
// so that the bucket's TTL never removes them under a backfill still
// driven.
func (d *driver) refreshKeys() {
	chunks, perr := chunkPartitions(d.id(), d.parts)
	if perr != nil {
		return
	}
	for i, b := range chunks {
		if _, err := d.c.runs.Put(d.ctx, protocol.BackfillPartsKey(d.id(), i), b); err != nil {
			return
		}
	}
	if d.c.markBackfillLive(d.ctx, d.id()) != nil {
		return
	}
	d.mu.Lock()
	d.keysAt = time.Now()
	d.mu.Unlock()
}

// leave is how a driver stops when its coordinator does: its progress is
// written (if the record is still its own) and the backfill stays running,
// for the next coordinator to adopt.
func (d *driver) leave() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), 2*time.Second)
	defer cancel()
	d.mu.Lock()
	dirty := d.dirty
	d.mu.Unlock()
	if dirty {
		d.save(ctx)
	}
	d.c.log.Info().Str("backfill_id", d.id()).Msg("backfill_left")
}

// finish records the end of the backfill: the partitions never counted
// are not started (after a halt), and the state says how it ended. The
// write is retried until it is stored, the record is lost, or the
// coordinator stops (the next driver then finds every partition ended).
func (d *driver) finish(start time.Time) {
	d.mu.Lock()
	r := &d.rec
	r.NotStarted = r.Total - (r.Succeeded + r.Failed + r.Skipped)
	switch {
	case r.Error != nil || r.Halted:
		r.State = protocol.StateFailed
	default:
		r.State = protocol.StateCompleted
	}
	if r.NotStarted > 0 && !r.Halted && r.Error == nil {
		d.c.log.Warn().Str("backfill_id", r.ID).Int("not_started", r.NotStarted).Msg("backfill_partitions_uncounted")
	}
	d.dirty = true
	d.mu.Unlock()
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := d.save(d.ctx)
		if err == nil {
			break
		}
		if errors.Is(err, errLost) || d.ctx.Err() != nil {
			d.leave()
			return
		}
		select {
		case <-time.After(wait):
		case <-d.ctx.Done():
		}
	}
	if err := d.c.runs.Erase(d.ctx, protocol.LiveBackfillKey(d.id())); err != nil {
		d.c.log.Warn().Err(err).Str("backfill_id", d.id()).Msg("backfill_unindex_failed")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.log.Info().Str("backfill_id", r.ID).Str("pipeline", r.Request.Pipeline).Str("asset", r.Request.Asset).Str("state", string(r.State)).
		Int("succeeded", r.Succeeded).Int("failed", r.Failed).Int("skipped", r.Skipped).Int("not_started", r.NotStarted).
		Dur("duration", time.Since(start)).Msg("backfill_finished")
}
