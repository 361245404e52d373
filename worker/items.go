package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/retry"
	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/internal/transient/natserr"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A worker's part in distributed scatters (see flowstone.Scatter): it runs
// the batches of scatter items that any worker's scatter hands out, and,
// for the scatter assets it executes itself, hands out their batches and
// follows their outcomes (fleetItems).

// itemFetchWait bounds one pull for item batches: the loop looks again
// after it, and Stop ends a pull at once.
const itemFetchWait = 5 * time.Second

// itemSource is the shared durable consumer of one pipeline's item
// batches.
type itemSource struct {
	h *hosted
	c jetstream.Consumer
}

// takeItems takes batches from s while the worker runs, holding one of the
// pipeline's batch slots (Config.ScatterBatches) per batch. A pull asks
// for as many batches as there are free slots, and runs each as it
// arrives.
func (w *Worker) takeItems(ctx context.Context, s *itemSource, slots chan struct{}) {
	defer w.fetchLoop.Done()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
	more:
		for n < cap(slots) {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		fctx, cancel := context.WithTimeout(ctx, itemFetchWait)
		batch, err := s.c.Fetch(n, jetstream.FetchContext(fctx))
		got := 0
		if err == nil {
			for m := range batch.Messages() {
				got++
				w.tasks.Add(1)
				go func() {
					defer w.tasks.Done()
					defer func() { <-slots }()
					w.runBatch(s, m)
				}()
			}
			err = batch.Error()
		}
		cancel()
		for range n - got {
			<-slots
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
			w.log.Warn().Err(err).Str("pipeline", s.h.name).Msg("item_fetch_failed")
			sleep(ctx, time.Second)
		}
	}
}

// runBatch runs one delivered batch and records its outcome once: the
// message is acked when the outcome is stored (or was stored by another
// delivery), and handed back when the worker stops under it.
func (w *Worker) runBatch(s *itemSource, m jetstream.Msg) {
	b, perr := protocol.DecodeItemBatch(m.Data())
	if perr == nil && b.Task.Pipeline != s.h.name {
		perr = protocol.Errorf(protocol.CodeBadRequest, "item batch of pipeline %q arrived on the item subject of %q", b.Task.Pipeline, s.h.name)
	}
	if perr != nil {
		w.log.Error().Str("subject", m.Subject()).Str("code", perr.Code).Str("error", perr.Message).Msg("item_batch_malformed")
		if err := m.TermWithReason("malformed item batch: " + perr.Code); err != nil {
			w.log.Warn().Err(err).Str("subject", m.Subject()).Msg("task_term_failed")
		}
		return
	}
	d := &delivery{msg: m, log: &w.log, remaining: 1, forget: w.forget}
	w.mu.Lock()
	w.messages[d] = struct{}{}
	w.mu.Unlock()
	deliveries := 1
	if md, err := m.Metadata(); err == nil {
		deliveries = int(md.NumDelivered)
	}
	tk := &task{d: d, h: s.h, t: b.Task, attempt: max(b.Task.Attempt, 1)}
	var out protocol.BatchOutcome
	switch {
	case deliveries > fleet.MaxDeliverDefault:
		// Every worker that took it stopped or died before recording it:
		// end it, so that the scatter's driver learns of it.
		out = uniformOutcome(&b, protocol.ItemFailed, string(flowstone.TypeExecutionFailed),
			fmt.Sprintf("the batch was delivered %d times without an outcome: the workers running it stopped or died", deliveries-1))
	default:
		var ok bool
		if out, ok = w.executeBatch(tk, &b); !ok {
			return
		}
	}
	out.V, out.Index, out.Worker = protocol.Version, b.Index, w.cfg.ID
	if err := w.recordBatch(&b, out); err != nil {
		w.log.Warn().Err(err).Str("scatter", b.Scatter).Int("batch", b.Index).Msg("batch_record_failed")
		d.done(false, retryDelay)
		return
	}
	w.metrics.scatterItems(b.Task.Pipeline, b.Task.Asset, out.Items)
	d.done(true, 0)
}

// executeBatch runs the batch's items under the batch's task and reports
// their outcomes; ok is false if the batch was handed back (the worker
// stopped under it), its delivery told already.
func (w *Worker) executeBatch(tk *task, b *protocol.ItemBatch) (protocol.BatchOutcome, bool) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	tk.cancel = cancel
	if !w.register(tk) {
		fe := cancelledRun(tk.t.RunID)
		return uniformOutcome(b, protocol.ItemCancelled, string(fe.Type), fe.Message), true
	}
	defer w.unregister(tk)
	if dl := tk.t.Deadline; dl != nil {
		var stop context.CancelFunc
		ctx, stop = context.WithDeadlineCause(ctx, *dl, runDeadline{&tk.t})
		defer stop()
	}
	ib := bridge.ItemBatch{Scatter: b.Scatter, Index: b.Index, Count: b.Count, Items: b.Items}
	if b.Deadline != nil {
		ib.Deadline = *b.Deadline
	}
	res, err := w.x.RunItems(ctx, tk.h.p, w.flowTask(tk), ib)
	if !tk.state.CompareAndSwap(taskRunning, taskSettling) {
		return protocol.BatchOutcome{}, false // Stop handed it back already
	}
	if errors.Is(context.Cause(ctx), bridge.ErrHandedBack) {
		w.log.Info().Str("scatter", b.Scatter).Int("batch", b.Index).Msg("batch_handed_back")
		tk.d.done(false, 0)
		return protocol.BatchOutcome{}, false
	}
	if err != nil {
		fe := flowstone.AsError(err)
		return uniformOutcome(b, protocol.ItemFailed, string(fe.Type), fe.Message), true
	}
	out := protocol.BatchOutcome{Items: make([]protocol.ItemOutcome, len(res.Items))}
	for i, it := range res.Items {
		out.Items[i] = protocol.ItemOutcome{Item: it.Item, State: it.State, Value: it.Value, ErrorType: it.ErrType, Error: it.Error, Attempts: it.Attempts}
	}
	return out, true
}

// uniformOutcome is an outcome with every item of b in one state.
func uniformOutcome(b *protocol.ItemBatch, state, errType, msg string) protocol.BatchOutcome {
	out := protocol.BatchOutcome{Items: make([]protocol.ItemOutcome, len(b.Items))}
	for i := range out.Items {
		out.Items[i] = protocol.ItemOutcome{Item: b.Items[i], State: state, ErrorType: errType, Error: msg}
	}
	return out
}

// batchRecordWait bounds the recording of a batch's outcome, store faults
// waited out; past it the batch is handed back.
const batchRecordWait = 30 * time.Second

// recordBatch writes a batch's outcome, once: an outcome some other
// delivery of the batch wrote first stands. Values too large for one
// record fail their items with an error that says so.
func (w *Worker) recordBatch(b *protocol.ItemBatch, out protocol.BatchOutcome) error {
	body, perr := protocol.EncodeBatchOutcome(out)
	if perr != nil && perr.Code == protocol.CodePayloadTooLarge {
		size := perr.Details["size"]
		for i := range out.Items {
			if it := &out.Items[i]; it.State == protocol.ItemCompleted {
				*it = protocol.ItemOutcome{Item: it.Item, State: protocol.ItemFailed, ErrorType: string(flowstone.TypeExecutionFailed), Attempts: it.Attempts,
					Error: fmt.Sprintf("the batch's item values take %v bytes, over the %d a batch may record: lower the scatter's BatchSize, or store large values yourself and return a reference", size, protocol.MaxMessageBytes)}
			}
		}
		body, perr = protocol.EncodeBatchOutcome(out)
	}
	if perr != nil {
		return perr
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchRecordWait)
	defer cancel()
	key := protocol.ScatterKey(b.Scatter, b.Index)
	return retry.Policy{}.Do(ctx, func(ctx context.Context) error {
		_, err := w.scatter.Create(ctx, key, body)
		if errors.Is(err, kv.ErrConflict) {
			return nil // another delivery recorded it first
		}
		return err
	})
}

// fleetItems is the item queue of a scatter asset this worker executes:
// batches go out on the pipeline's item subject, and their outcomes come
// back through a watch of the scatter's keys.
type fleetItems struct {
	w *Worker
	t protocol.Task
}

func (f *fleetItems) Open(ctx context.Context, scatter string) (bridge.ItemSession, []bridge.BatchOutcome, error) {
	wctx, cancel := context.WithCancel(context.Background())
	entries, err := f.w.scatter.Watch(wctx, protocol.ScatterPrefix(scatter))
	if err != nil {
		cancel()
		return nil, nil, err
	}
	s := &fleetSession{f: f, scatter: scatter, stop: cancel, out: make(chan bridge.BatchOutcome), closed: make(chan struct{})}
	var done []bridge.BatchOutcome
	for initial := true; initial; {
		select {
		case e, ok := <-entries:
			switch {
			case !ok:
				cancel()
				return nil, nil, transient.Mark(errors.New("worker: the watch of the scatter's outcomes ended"))
			case e.Key == "":
				initial = false
			case e.Value != nil:
				if o, ok := s.decode(e); ok {
					done = append(done, o)
				}
			}
		case <-ctx.Done():
			cancel()
			for range entries {
			}
			return nil, nil, ctx.Err()
		}
	}
	s.wg.Add(1)
	go s.follow(entries)
	return s, done, nil
}

// fleetSession follows one scatter's outcomes for its driver.
type fleetSession struct {
	f       *fleetItems
	scatter string
	stop    context.CancelFunc // ends the watch
	out     chan bridge.BatchOutcome
	closed  chan struct{}
	wg      sync.WaitGroup
}

// follow hands the outcomes recorded after Open to the driver, until the
// watch ends.
func (s *fleetSession) follow(entries <-chan kv.Entry) {
	defer s.wg.Done()
	defer close(s.out)
	for e := range entries {
		if e.Key == "" || e.Value == nil {
			continue
		}
		o, ok := s.decode(e)
		if !ok {
			continue
		}
		select {
		case s.out <- o:
		case <-s.closed:
		}
	}
}

func (s *fleetSession) decode(e kv.Entry) (bridge.BatchOutcome, bool) {
	o, perr := protocol.DecodeBatchOutcome(e.Value)
	if perr != nil {
		s.f.w.log.Warn().Str("key", e.Key).Str("error", perr.Message).Msg("batch_outcome_malformed")
		return bridge.BatchOutcome{}, false
	}
	out := bridge.BatchOutcome{Index: o.Index, Worker: o.Worker, Items: make([]bridge.ItemOutcome, len(o.Items))}
	for i, it := range o.Items {
		out.Items[i] = bridge.ItemOutcome{Item: it.Item, State: it.State, Value: it.Value, ErrType: it.ErrorType, Error: it.Error, Attempts: it.Attempts}
	}
	return out, true
}

func (s *fleetSession) Publish(ctx context.Context, b bridge.ItemBatch) error {
	ib := protocol.ItemBatch{V: protocol.Version, Scatter: b.Scatter, Index: b.Index, Count: b.Count, Items: b.Items, Task: s.f.t}
	if !b.Deadline.IsZero() {
		dl := b.Deadline.UTC()
		ib.Deadline = &dl
	}
	body, perr := protocol.EncodeItemBatch(ib)
	if perr != nil {
		return perr
	}
	m := nats.NewMsg(protocol.ItemSubject(s.f.t.Pipeline))
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, protocol.ItemMsgID(b.Scatter, b.Index))
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	_, err := s.f.w.js.PublishMsg(pctx, m)
	return natserr.Mark(err)
}

func (s *fleetSession) Outcomes() <-chan bridge.BatchOutcome { return s.out }

// Close ends the watch.
func (s *fleetSession) Close() {
	select {
	case <-s.closed:
		return
	default:
	}
	close(s.closed)
	s.stop()
	s.wg.Wait()
}

// Drop drops the scatter's outcomes from the bucket, in one request.
func (f *fleetItems) Drop(ctx context.Context, scatter string) error {
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	return f.w.purgeScatter(pctx, scatter)
}

// purgeScatter drops a scatter's batch outcomes from the bucket, in one
// request.
func (w *Worker) purgeScatter(ctx context.Context, scatter string) error {
	st, err := w.js.Stream(ctx, "KV_"+protocol.ScatterBucket)
	if err != nil {
		return err
	}
	return st.Purge(ctx, jetstream.WithPurgeSubject("$KV."+protocol.ScatterBucket+"."+protocol.ScatterPrefix(scatter)+">"))
}
