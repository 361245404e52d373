package flowstone

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
)

// Timing of a scatter's driver.
const (
	// scatterProgressEvery is the least time between two writes of a
	// scatter's counts to its record while it runs.
	scatterProgressEvery = 200 * time.Millisecond
	// scatterDrainWait bounds the wait, once the asset's run has ended,
	// for the outcomes of the batches still out: they are told of the end
	// too (a cancel reaches every worker), and their items are counted
	// cancelled when they do not answer in time.
	scatterDrainWait = 5 * time.Second
)

// scatterRun drives one materialization of a scatter asset: it lists the
// items, hands them out in batches through the task's item queue (this
// process's goroutines, or the fleet), keeps at most Parallel items out at
// once and the start rate under Rate, counts the outcomes as they are
// recorded, writes the counts to the asset's record, and gathers the
// values. Its methods run on the execution's goroutine.
type scatterRun struct {
	x    *executor
	c    *Context
	a    *attempt
	cfg  ScatterConfig
	base Event

	id      string
	batches [][]string // each batch's items; nil for a batch handed out
	// by an earlier execution (a reader's) until its outcome names them
	sizes []int     // each batch's item count
	count int       // batches formed
	feed  *itemFeed // a reader's scatter: reads items as batches go out

	st       ScatterStatus
	outcomes [][]hook.ItemOutcome      // by batch; nil until recorded
	out      map[int]int               // batches out and not recorded: index → items
	early    map[int]hook.BatchOutcome // outcomes of batches not formed yet (a reader's, re-read after a restart)
	next     int                       // the first batch not yet handed out
	stopping bool                      // too many items failed: hand out no more

	dirty     bool
	persisted time.Time
}

// scatter runs a scatter asset (see Scatter) and returns its value: a map
// from item to the item's encoded value.
func (x *executor) scatter(c *Context, a *attempt) (any, error) {
	spec := c.n.def.scatter
	if spec.reader != nil {
		return x.scatterFrom(c, a)
	}
	listed, err := x.invoke(c, func(c *Context) (any, error) { return spec.fn(c) })
	if err != nil {
		return nil, err
	}
	list, err := scatterItems(c.n.def.name, listed.([]string))
	if err != nil {
		return nil, err
	}
	r := newScatterRun(x, c, a)
	ordered, bounds := spec.cfg.batches(list)
	for i := range len(bounds) - 1 {
		r.add(ordered[bounds[i]:bounds[i+1]])
	}
	r.id = scatterID(c.p.name, c.n.def.name, c.task.Partition, c.task.RunID, bounds, ordered)
	return r.run()
}

func newScatterRun(x *executor, c *Context, a *attempt) *scatterRun {
	return &scatterRun{x: x, c: c, a: a, cfg: c.n.def.scatter.cfg, out: map[int]int{},
		base: Event{Pipeline: c.p.name, Asset: c.n.def.name, Partition: c.task.Partition, RunID: c.task.RunID}}
}

// add forms the next batch of items (nil for one an earlier execution
// handed out, whose size only is known) and counts its items pending.
func (r *scatterRun) add(items []string) { r.addSized(items, len(items)) }

func (r *scatterRun) addSized(items []string, n int) {
	r.batches = append(r.batches, items)
	r.sizes = append(r.sizes, n)
	r.outcomes = append(r.outcomes, nil)
	r.count++
	r.st.Total += n
	r.st.Pending += n
	if o, ok := r.early[r.count-1]; ok {
		// Recorded by an earlier execution that handed it out after its
		// last checkpoint: this one read the same items again.
		delete(r.early, r.count-1)
		r.record(o)
	}
}

// scatterID names a scatter: the same task listing the same items in the
// same batches gets the same id, so that an execution that takes over a
// dead one's task finds the batches recorded.
func scatterID(pipeline, asset, partition, runID string, bounds []int, items []string) string {
	h := sha256.New()
	var n [8]byte
	for _, s := range []string{pipeline, asset, partition, runID} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	for _, b := range bounds {
		binary.BigEndian.PutUint64(n[:], uint64(b))
		h.Write(n[:])
	}
	for _, it := range items {
		binary.BigEndian.PutUint64(n[:], uint64(len(it)))
		h.Write(n[:])
		h.Write([]byte(it))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (r *scatterRun) run() (any, error) {
	ctx := r.c.ctx
	q := r.c.task.Items
	if q == nil {
		q = &localItems{x: r.x, c: r.c}
	}
	start := time.Now()
	r.emit(EventScatterStart, 0)
	sess, err := r.open(ctx, q)
	if err != nil {
		return nil, err
	}
	r.persist(true)
	largest := r.cfg.batchSize()
	if b := r.cfg.Batching; b != nil {
		largest = MaxScatterBatch
	}
	for _, n := range r.sizes {
		largest = max(largest, n)
	}
	lim := newItemLimiter(r.cfg.Rate, largest)
	var rateC <-chan time.Time
	tick := time.NewTicker(scatterProgressEvery)
	defer tick.Stop()
loop:
	for {
		if !r.stopping && ctx.Err() == nil && rateC == nil {
			wait, err := r.handOut(ctx, sess, lim)
			if err != nil && ctx.Err() == nil {
				sess.Close()
				return nil, err
			}
			if wait > 0 {
				rateC = time.After(wait)
			}
		}
		if len(r.out) == 0 && (r.stopping || r.next >= r.count && r.feed.exhausted()) {
			break
		}
		select {
		case o, ok := <-sess.Outcomes():
			if !ok {
				// Following the outcomes failed (a connection lost):
				// follow them again, from what is recorded.
				if sess, err = r.open(ctx, q); err != nil {
					return nil, err
				}
				continue
			}
			r.record(o)
		case <-rateC:
			rateC = nil
		case <-tick.C:
			r.persist(false)
		case <-ctx.Done():
			cause := context.Cause(ctx)
			if errors.Is(cause, hook.ErrHandedBack) || errors.Is(cause, hook.ErrSuperseded) {
				// Not over: the task's next execution resumes from the
				// batches recorded, which stay.
				sess.Close()
				return nil, ctxError(ctx, r.c.p.name, r.c.n.def.name)
			}
			r.drain(sess)
			break loop
		}
	}
	// What was never recorded was stopped, or never started, by the run's
	// end (or by the failures past the threshold).
	for i, o := range r.outcomes {
		if o == nil {
			r.st.Cancelled += r.sizes[i]
			r.st.Pending -= r.sizes[i]
		}
	}
	r.listFailures()
	r.a.scatter = &r.st
	sess.Close()
	// Once the asset's outcome is recorded, it holds what it needs of the
	// batches' outcomes (and a reader's cursor): until then a later
	// execution of the task resumes from them.
	r.a.afterOutcome = func(ctx context.Context) {
		if err := q.Drop(ctx, r.id); err != nil {
			r.x.logger.Warn().Err(err).Str("scatter", r.id).Msg("scatter_drop_failed")
		}
		if err := r.feed.forget(ctx); err != nil {
			// Harmless: it only keeps a finished scatter's cursor.
			r.x.logger.Warn().Err(err).Str("scatter", r.id).Msg("scatter_cursor_delete_failed")
		}
	}
	r.emit(EventScatterStop, time.Since(start))
	if ctx.Err() != nil {
		return nil, ctxError(ctx, r.c.p.name, r.c.n.def.name)
	}
	if allowed := r.cfg.allowedFailures(r.st.Total); r.st.Failed > allowed {
		return nil, r.thresholdError(allowed)
	}
	return r.gather(), nil
}

// open follows the scatter's outcomes, waiting out transient faults, and
// counts those recorded already.
func (r *scatterRun) open(ctx context.Context, q hook.ItemQueue) (hook.ItemSession, error) {
	var (
		sess hook.ItemSession
		done []hook.BatchOutcome
	)
	err := r.x.retrying("scatter_open", "", r.id).Do(ctx, func(ctx context.Context) error {
		var err error
		sess, done, err = q.Open(ctx, r.id)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx, r.c.p.name, r.c.n.def.name)
		}
		return nil, wrapError(TypeStorageError, err, map[string]any{"asset": r.c.n.def.name, "scatter": r.id},
			"scatter asset %q: its batches' outcomes cannot be read: %v", r.c.n.def.name, err)
	}
	for _, o := range done {
		r.record(o)
	}
	return sess, nil
}

// handOut hands out batches while Parallel and Rate allow (a reader's
// scatter reads them as it goes), and returns how long to wait before the
// rate allows the next.
func (r *scatterRun) handOut(ctx context.Context, sess hook.ItemSession, lim *itemLimiter) (time.Duration, error) {
	deadline, _ := ctx.Deadline()
	for {
		if r.next == r.count {
			if r.feed.exhausted() {
				return 0, nil
			}
			if out := r.itemsOut(); out > 0 && out+r.cfg.batchSize() > r.cfg.Parallel {
				return 0, nil
			}
			if err := r.feed.read(ctx, r); err != nil {
				return 0, err
			}
			continue
		}
		i := r.next
		if r.outcomes[i] != nil || r.batches[i] == nil {
			// Recorded, or handed out by an earlier execution and still
			// out (counted in r.out).
			r.next++
			continue
		}
		items := r.batches[i]
		if out := r.itemsOut(); out > 0 && out+len(items) > r.cfg.Parallel {
			return 0, nil
		}
		if wait := lim.take(len(items), time.Now()); wait > 0 {
			return wait, nil
		}
		b := hook.ItemBatch{Scatter: r.id, Index: i, Count: r.count, Items: items, Deadline: deadline}
		err := r.x.retrying("scatter_publish", "", r.id).Do(ctx, func(ctx context.Context) error { return sess.Publish(ctx, b) })
		if err != nil {
			return 0, wrapError(TypeStorageError, err, map[string]any{"asset": r.c.n.def.name, "batch": i},
				"scatter asset %q: batch %d could not be handed out: %v", r.c.n.def.name, i, err)
		}
		r.out[i] = len(items)
		r.next++
		if err := r.feed.handedOut(ctx, r); err != nil {
			return 0, err
		}
	}
}

// drain waits a while, once the run has ended, for the batches still out.
func (r *scatterRun) drain(sess hook.ItemSession) {
	timer := time.NewTimer(scatterDrainWait)
	defer timer.Stop()
	for len(r.out) > 0 {
		select {
		case o, ok := <-sess.Outcomes():
			if !ok {
				return
			}
			r.record(o)
		case <-timer.C:
			return
		}
	}
}

// record counts a batch's outcome, the first one only.
func (r *scatterRun) record(o hook.BatchOutcome) {
	if o.Index >= r.count && r.feed != nil {
		if r.early == nil {
			r.early = map[int]hook.BatchOutcome{}
		}
		r.early[o.Index] = o
		return
	}
	if o.Index < 0 || o.Index >= r.count || r.outcomes[o.Index] != nil {
		return
	}
	if len(o.Items) != r.sizes[o.Index] {
		// Not this scatter's batch as listed now: ignore it, the batch
		// runs again.
		r.x.logger.Warn().Str("scatter", r.id).Int("batch", o.Index).Msg("scatter_outcome_mismatched")
		return
	}
	r.outcomes[o.Index] = o.Items
	if r.batches[o.Index] == nil {
		// Handed out by an earlier execution: the outcome names them.
		names := make([]string, len(o.Items))
		for k, it := range o.Items {
			names[k] = it.Item
		}
		r.batches[o.Index] = names
	}
	delete(r.out, o.Index)
	for _, it := range o.Items {
		switch it.State {
		case hook.ItemCompleted:
			r.st.Completed++
		case hook.ItemFailed:
			r.st.Failed++
		default:
			r.st.Cancelled++
		}
	}
	r.st.Pending -= len(o.Items)
	if r.st.Failed > r.cfg.allowedFailures(r.st.Total) {
		r.stopping = true
	}
	r.dirty = true
	r.persist(false)
}

// persist writes the counts to the asset's record if they changed, at
// most every scatterProgressEvery unless forced.
func (r *scatterRun) persist(force bool) {
	now := time.Now()
	if !force && (!r.dirty || now.Sub(r.persisted) < scatterProgressEvery) {
		return
	}
	r.dirty, r.persisted = false, now
	r.a.progress(context.WithoutCancel(r.c.ctx), r.st)
}

// itemsOut counts the items handed out and not recorded.
func (r *scatterRun) itemsOut() int {
	n := 0
	for _, k := range r.out {
		n += k
	}
	return n
}

// batch returns the items of batch i.
func (r *scatterRun) batch(i int) []string { return r.batches[i] }

// listFailures lists the first failed items, in item order.
func (r *scatterRun) listFailures() {
	r.st.FailedItems = nil
	for i, o := range r.outcomes {
		for k, it := range o {
			if it.State != hook.ItemFailed {
				continue
			}
			if len(r.st.FailedItems) == MaxListedFailures {
				return
			}
			r.st.FailedItems = append(r.st.FailedItems, ScatterFailure{Item: r.batch(i)[k], Error: itemError(it)})
		}
	}
}

// itemError is a failed item's error.
func itemError(it hook.ItemOutcome) *Error {
	return &Error{Type: cmp.Or(ErrorType(it.ErrType), TypeExecutionFailed), Message: it.Error}
}

// thresholdError is the error of a scatter with more failed items than
// allowed.
func (r *scatterRun) thresholdError(allowed int) *Error {
	errs := make([]string, 0, len(r.st.FailedItems))
	for _, f := range r.st.FailedItems {
		errs = append(errs, f.Item+": "+f.Error.Message)
	}
	asset := r.c.n.def.name
	first := ""
	if len(errs) > 0 {
		first = errs[0]
	}
	return newError(TypeScatterThreshold,
		map[string]any{"asset": asset, "failed": r.st.Failed, "total": r.st.Total, "max_failures": allowed, "errors": errs},
		"scatter asset %q: %d of %d items failed (at most %d allowed); first: %s", asset, r.st.Failed, r.st.Total, allowed, first)
}

// gather is the asset's value: each completed item's value by item, or
// with Batching each batch's value (null for a failed one) in batch order.
func (r *scatterRun) gather() any {
	if r.cfg.Batching != nil {
		values := make([]json.RawMessage, r.count)
		for i, o := range r.outcomes {
			if len(o) > 0 && o[0].State == hook.ItemCompleted {
				values[i] = o[0].Value
			} else {
				values[i] = json.RawMessage("null")
			}
		}
		return values
	}
	values := make(map[string]json.RawMessage, r.st.Completed)
	for i, o := range r.outcomes {
		items := r.batch(i)
		for k, it := range o {
			if it.State == hook.ItemCompleted {
				values[items[k]] = it.Value
			}
		}
	}
	return values
}

func (r *scatterRun) emit(kind EventKind, d time.Duration) {
	if r.x.events.active() {
		ev := r.base
		ev.Kind, ev.Duration = kind, d
		r.x.events.emit(ev)
	}
}

// itemLimiter holds a scatter's items to Rate starts per second: a token
// bucket holding at most one batch.
type itemLimiter struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newItemLimiter(rate float64, burst int) *itemLimiter {
	return &itemLimiter{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// take takes n tokens if there are, and returns 0; otherwise it takes
// none and returns how long until there are.
func (l *itemLimiter) take(n int, now time.Time) time.Duration {
	if l.rate <= 0 {
		return 0
	}
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens >= float64(n) {
		l.tokens -= float64(n)
		return 0
	}
	return max(time.Duration((float64(n)-l.tokens)/l.rate*float64(time.Second)), time.Millisecond)
}
