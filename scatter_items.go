package flowstone

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
)

// RunItems runs the items of batch b of the scatter asset t.Asset of p and
// returns their outcomes, in the batch's order: a fleet worker's side of
// a scatter whose batch it took from the queue. The items run side by
// side; those the context's end stops (or never starts) are cancelled.
func (x *executor) RunItems(ctx context.Context, p *Pipeline, t task, b hook.ItemBatch) (hook.BatchOutcome, error) {
	n, err := p.lookup(t.Asset)
	if err != nil {
		return hook.BatchOutcome{}, err
	}
	if n.def.scatter == nil {
		return hook.BatchOutcome{}, newError(TypeBadRequest, map[string]any{"pipeline": p.name, "asset": t.Asset},
			"asset %q of pipeline %s is not a scatter asset in this process", t.Asset, p.name)
	}
	if !b.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, b.Deadline)
		defer cancel()
	}
	return x.runItems(ctx, p, n, &t, b), nil
}

// runItems runs a batch's items side by side. With a Rate, their starts
// are spread over the batch's share of a second.
func (x *executor) runItems(ctx context.Context, p *Pipeline, n *node, t *task, b hook.ItemBatch) hook.BatchOutcome {
	cfg := n.def.scatter.cfg
	outs := make([]hook.ItemOutcome, len(b.Items))
	if cfg.Batching != nil {
		// One call for the batch: its outcome is each item's, its value
		// the first's.
		batch := &ScatterBatch{Items: b.Items, Index: b.Index, Count: b.Count}
		o := x.runItem(ctx, p, n, t, "", batch, cfg)
		for i := range outs {
			outs[i] = o
			outs[i].Item = b.Items[i]
			if i > 0 {
				outs[i].Value = nil
			}
		}
		return hook.BatchOutcome{Index: b.Index, Worker: x.worker, Items: outs}
	}
	start := time.Now()
	one := func(i int) {
		if cfg.Rate > 0 && i > 0 {
			at := start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
			if !sleepUntil(ctx, at) {
				outs[i] = hook.ItemOutcome{Item: b.Items[i], State: hook.ItemCancelled}
				return
			}
		}
		outs[i] = x.runItem(ctx, p, n, t, b.Items[i], nil, cfg)
		outs[i].Item = b.Items[i]
	}
	if len(b.Items) == 1 {
		one(0)
	} else {
		var wg sync.WaitGroup
		for i := range b.Items {
			wg.Add(1)
			go func() {
				defer wg.Done()
				one(i)
			}()
		}
		wg.Wait()
	}
	return hook.BatchOutcome{Index: b.Index, Worker: x.worker, Items: outs}
}

// runItem runs one item (or, with batch set, one batch), retrying a
// failure per cfg, and emits its events.
func (x *executor) runItem(ctx context.Context, p *Pipeline, n *node, t *task, item string, batch *ScatterBatch, cfg ScatterConfig) hook.ItemOutcome {
	ev := x.events.active()
	base := Event{Pipeline: p.name, Asset: n.def.name, Partition: t.Partition, RunID: t.RunID, Metadata: map[string]any{"item": item}}
	if batch != nil {
		base.Metadata = map[string]any{"batch": batch.Index, "items": len(batch.Items)}
	}
	start := time.Now()
	if ev {
		e := base
		e.Kind, e.Time = EventScatterItemStart, start
		x.events.emit(e)
	}
	var (
		out     hook.ItemOutcome
		fe      *Error
		backoff = cfg.ItemBackoff
	)
	for try := 1; ; try++ {
		out.Attempts = try
		ic := &Context{ctx: ctx, x: x, p: p, n: n, task: t, try: try, item: item, batch: batch}
		v, err := x.invoke(ic, n.def.fn)
		ic.closeReaders()
		var b []byte
		if err == nil {
			if b, err = x.codec.Encode(v); err != nil {
				err = newError(TypeExecutionFailed, map[string]any{"item": item}, "scatter item %q of asset %q: value cannot be encoded: %v", item, n.def.name, err)
			}
		}
		if err == nil {
			out.State, out.Value = hook.ItemCompleted, b
			break
		}
		if ctx.Err() != nil {
			// Stopped by the run's end, not a failure of its own.
			fe = ctxError(ctx, p.name, n.def.name)
			out.State = hook.ItemCancelled
			break
		}
		fe = AsError(err)
		out.State = hook.ItemFailed
		if try > cfg.ItemRetries || fe.Type == TypeTimeout || fe.Type == TypeCancelled {
			break
		}
		// Jittered: between half and all of the backoff.
		wait := backoff/2 + rand.N(backoff/2+1)
		if !sleepUntil(ctx, time.Now().Add(wait)) {
			fe = ctxError(ctx, p.name, n.def.name)
			out.State = hook.ItemCancelled
			break
		}
		backoff = min(backoff*2, cfg.ItemMaxBackoff)
	}
	if fe != nil {
		out.ErrType, out.Error = string(fe.Type), fe.Message
	}
	if ev {
		e := base
		e.Kind, e.Duration, e.Err = EventScatterItemStop, time.Since(start), fe
		x.events.emit(e)
	}
	return out
}

// sleepUntil waits until at, and reports false if ctx ends first.
func sleepUntil(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// localItems is the item queue of a scatter that runs in this process
// (the embedded engine's): each batch runs in a goroutine of its own, and
// nothing is recorded beyond the execution.
type localItems struct {
	x        *executor
	c        *Context
	outcomes chan hook.BatchOutcome
	closed   chan struct{}
	wg       sync.WaitGroup
}

func (l *localItems) Open(context.Context, string) (hook.ItemSession, []hook.BatchOutcome, error) {
	l.outcomes, l.closed = make(chan hook.BatchOutcome), make(chan struct{})
	return l, nil, nil
}

func (l *localItems) Publish(_ context.Context, b hook.ItemBatch) error {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		o := l.x.runItems(l.c.ctx, l.c.p, l.c.n, l.c.task, b)
		select {
		case l.outcomes <- o:
		case <-l.closed:
		}
	}()
	return nil
}

func (l *localItems) Outcomes() <-chan hook.BatchOutcome { return l.outcomes }

// Close waits for the batches still running: they stop with the
// execution's context.
func (l *localItems) Close(context.Context, bool) {
	close(l.closed)
	l.wg.Wait()
}
