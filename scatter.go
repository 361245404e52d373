package flowstone

import (
	"context"
	"encoding/json"
	"math"
	"sync"
	"time"
	"unicode/utf8"
)

// ScatterFunc lists the items a scatter asset fans out over. It runs once
// per materialization, with the asset's dependencies available through Dep.
type ScatterFunc func(c *Context) ([]string, error)

// ScatterConfig tunes a scatter asset.
type ScatterConfig struct {
	// Parallel is how many items run at once. Defaults to 1.
	Parallel int
	// MaxFailures is how many items may fail before the asset fails with a
	// ScatterThreshold error. Defaults to 0: any failed item fails the asset.
	MaxFailures int
	// MaxFailureRate, from 0 to 1, allows that fraction of the items to
	// fail (rounded down): 0.02 lets 200 of 10,000 fail. The larger of
	// the two allowances applies. Defaults to 0.
	MaxFailureRate float64
}

// allowedFailures is how many of total items may fail.
func (c ScatterConfig) allowedFailures(total int) int {
	return max(c.MaxFailures, int(math.Floor(c.MaxFailureRate*float64(total))))
}

// Limits of a scatter's item list (see Scatter).
const (
	// MaxScatterItems is the most items one materialization of a scatter
	// asset fans out over.
	MaxScatterItems = 1_000_000
	// MaxScatterItemLen is the longest item key, in bytes.
	MaxScatterItemLen = 1024
)

// scatterItems checks the keys list returned and drops repeated ones,
// keeping the first of each in order: an item runs once, and counts once.
// Too many items, or an empty, overlong or non-UTF-8 key, fail the asset
// with an ExecutionFailed error that says which.
func scatterItems(asset string, list []string) ([]string, error) {
	if len(list) > MaxScatterItems {
		return nil, newError(TypeExecutionFailed, map[string]any{"asset": asset, "items": len(list), "limit": MaxScatterItems},
			"scatter asset %q listed %d items; at most %d may run in one materialization: split the asset or its partitions", asset, len(list), MaxScatterItems)
	}
	seen := make(map[string]struct{}, len(list))
	out := list[:0:0]
	for i, it := range list {
		if it == "" || len(it) > MaxScatterItemLen || !utf8.ValidString(it) {
			return nil, newError(TypeExecutionFailed, map[string]any{"asset": asset, "index": i, "bytes": len(it), "limit": MaxScatterItemLen},
				"scatter asset %q listed an item (#%d, %d bytes) that is empty, longer than %d bytes or not UTF-8", asset, i, len(it), MaxScatterItemLen)
		}
		if _, dup := seen[it]; dup {
			continue
		}
		seen[it] = struct{}{}
		out = append(out, it)
	}
	return out, nil
}

type scatterSpec struct {
	fn  ScatterFunc
	cfg ScatterConfig
}

// Scatter makes the asset fan out: list returns the items, and the asset's
// function runs once per item (Context.ScatterItem tells which), up to
// cfg.Parallel at a time; a key listed twice runs once. The asset's value
// is a JSON object from item to that item's value; failed items are left
// out. At most MaxScatterItems items, each a non-empty UTF-8 key of up to
// MaxScatterItemLen bytes. Status reports the counts
// while it runs, and the scatter telemetry events mark each item.
//
// All items of one materialization run in the process (or on the worker)
// that executes the asset.
func Scatter(list ScatterFunc, cfg ScatterConfig) AssetOption {
	if cfg.Parallel < 1 {
		cfg.Parallel = 1
	}
	cfg.MaxFailureRate = min(max(cfg.MaxFailureRate, 0), 1)
	return assetOptionFunc(func(a *AssetDef) { a.scatter = &scatterSpec{fn: list, cfg: cfg} })
}

// ScatterStatus counts a scatter asset's items: Completed + Failed +
// Cancelled + Pending is Total. Items stopped by the end of the asset's
// run (a cancel, a timeout) are Cancelled, not Failed, and so are those it
// never started: a finished record has no Pending items.
type ScatterStatus struct {
	Total     int `json:"total"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	Cancelled int `json:"cancelled"`
	Pending   int `json:"pending"`
}

// scatter runs a scatter asset: list the items, run the function per item
// with bounded parallelism, record the counts as they change, and gather the
// values into one JSON object.
func (x *executor) scatter(c *Context, a *attempt) (any, error) {
	spec := c.n.def.scatter
	base := Event{Pipeline: c.p.name, Asset: c.n.def.name, Partition: c.task.Partition, RunID: c.task.RunID}
	items, err := x.invoke(c, func(c *Context) (any, error) { return spec.fn(c) })
	if err != nil {
		return nil, err
	}
	list, err := scatterItems(c.n.def.name, items.([]string))
	if err != nil {
		return nil, err
	}
	st := &ScatterStatus{Total: len(list), Pending: len(list)}
	emit := func(kind EventKind, item string, d time.Duration, fe *Error) {
		if x.events.active() {
			ev := base
			ev.Kind, ev.Duration, ev.Err = kind, d, fe
			if item != "" {
				ev.Metadata = map[string]any{"item": item}
			}
			x.events.emit(ev)
		}
	}
	start := time.Now()
	emit(EventScatterStart, "", 0, nil)

	var (
		mu     sync.Mutex
		values = make(map[string]json.RawMessage, len(list))
		errs   []string
		sem    = make(chan struct{}, spec.cfg.Parallel)
		wg     sync.WaitGroup
		// persist records the counts through the execution's claim; the
		// final counts go with the outcome.
		persist = func() {
			mu.Lock()
			s := *st
			mu.Unlock()
			a.progress(context.WithoutCancel(c.ctx), s)
		}
	)
	persist()
	for _, item := range list {
		select {
		case sem <- struct{}{}:
		case <-c.ctx.Done():
		}
		if c.ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ic := &Context{ctx: c.ctx, x: x, p: c.p, n: c.n, task: c.task, try: c.try, item: item}
			defer ic.closeReaders()
			t0 := time.Now()
			emit(EventScatterItemStart, item, 0, nil)
			v, err := x.invoke(ic, c.n.def.fn)
			var b []byte
			if err == nil {
				if b, err = x.codec.Encode(v); err != nil {
					err = newError(TypeExecutionFailed, map[string]any{"item": item}, "scatter item %q: value cannot be encoded: %v", item, err)
				}
			}
			var fe *Error
			mu.Lock()
			st.Pending--
			switch {
			case err != nil && c.ctx.Err() != nil:
				// Stopped by the run's end, not a failure of its own.
				fe = AsError(err)
				st.Cancelled++
			case err != nil:
				fe = AsError(err)
				st.Failed++
				errs = append(errs, item+": "+fe.Message)
			default:
				st.Completed++
				values[item] = b
			}
			mu.Unlock()
			emit(EventScatterItemStop, item, time.Since(t0), fe)
			persist()
		}()
	}
	wg.Wait()
	// The items never started when the run ended are cancelled too.
	st.Cancelled += st.Pending
	st.Pending = 0
	a.scatter = st
	emit(EventScatterStop, "", time.Since(start), nil)
	if c.ctx.Err() != nil {
		return nil, ctxError(c.ctx, c.p.name, c.n.def.name)
	}
	if allowed := spec.cfg.allowedFailures(st.Total); st.Failed > allowed {
		return nil, newError(TypeScatterThreshold,
			map[string]any{"asset": c.n.def.name, "failed": st.Failed, "total": st.Total, "max_failures": allowed, "errors": errs},
			"scatter asset %q: %d of %d items failed (at most %d allowed); first: %s", c.n.def.name, st.Failed, st.Total, allowed, errs[0])
	}
	return values, nil
}
