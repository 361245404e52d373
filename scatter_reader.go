package flowstone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"unicode/utf8"

	"github.com/flowstone-go/flowstone/kv"
)

// ItemReader feeds a scatter its items from a source a chunk at a time
// (see ScatterFrom): a listing of objects, a stream, the keys of a bucket.
// The scatter asks for the next chunk as its batches go out, and keeps the
// checkpoint after each chunk once the chunk's batches are out, so that
// an execution that takes a dead one's task over opens the reader at that
// checkpoint and reads on from there. A reader serves one execution, from
// one goroutine.
type ItemReader interface {
	// Open prepares reading after checkpoint; "" means from the start.
	Open(c *Context, checkpoint string) error
	// Read returns up to n items that follow those read so far, and the
	// checkpoint after them. done reports that the source has no more
	// (a Read that returns no items ends the scatter's reading too).
	Read(c *Context, n int) (items []string, checkpoint string, done bool, err error)
	// Close releases the reader.
	Close() error
}

// ScatterFrom makes the asset a scatter whose items come from a reader
// that open makes (once per execution, with the asset's dependencies
// available) instead of a list: the items need not fit in memory before
// the first one runs, and a restarted execution resumes reading at the
// last checkpoint. Everything else is Scatter's: the function runs per
// item (or per batch with cfg.Batching, whose GroupBy does not apply: a
// reader's items batch in the order read), Total counts the items read so
// far, and a key read twice runs once (within one execution).
func ScatterFrom(open func(c *Context) (ItemReader, error), cfg ScatterConfig) AssetOption {
	opt := Scatter(nil, cfg)
	return assetOptionFunc(func(a *AssetDef) {
		opt.applyAsset(a)
		a.scatter.reader = open
	})
}

// scatterCursor is how far a reader's scatter has gone: the batches it
// handed out, their sizes, and the reader's checkpoint after them. It is
// kept in the records' store, under cursorKey, while the scatter runs.
type scatterCursor struct {
	Batches    int    `json:"batches"`
	Sizes      []int  `json:"sizes"`
	Checkpoint string `json:"checkpoint,omitempty"`
	Done       bool   `json:"done,omitempty"`
}

// itemFeed reads a scatter's items from its reader as batches go out, and
// keeps its cursor. A nil feed is a listed scatter's: nothing to read.
type itemFeed struct {
	reader  ItemReader
	store   kv.Store
	key     string
	rev     uint64
	seen    map[string]struct{}
	pending string // the checkpoint after the last chunk read
	chunk   int    // the batch count once that chunk's batches are formed
	done    bool
}

// scatterFrom runs a scatter fed by a reader.
func (x *executor) scatterFrom(c *Context, a *attempt) (any, error) {
	r := newScatterRun(x, c, a)
	r.id = scatterID(c.p.name, c.n.def.name, c.task.Partition, c.task.RunID, nil, []string{"\x00reader"})
	f := &itemFeed{store: x.kv, key: "scatter." + r.id, seen: map[string]struct{}{}}
	var cur scatterCursor
	ent, err := x.kv.Get(c.ctx, f.key)
	switch {
	case err == nil:
		if err := json.Unmarshal(ent.Value, &cur); err != nil {
			return nil, wrapError(TypeStorageError, err, map[string]any{"key": f.key}, "scatter cursor %s does not decode: %v", f.key, err)
		}
		f.rev = ent.Revision
		// The batches an earlier execution handed out: their items are
		// named by their outcomes; those not recorded yet are still out.
		for i, n := range cur.Sizes {
			r.addSized(nil, n)
			r.out[i] = n
		}
		f.pending, f.chunk, f.done = cur.Checkpoint, len(cur.Sizes), cur.Done
	case !errors.Is(err, kv.ErrNotFound):
		return nil, wrapError(TypeStorageError, err, map[string]any{"key": f.key}, "read scatter cursor %s: %v", f.key, err)
	}
	if !f.done {
		rd, err := x.callReader(c, func() (ItemReader, error) { return c.n.def.scatter.reader(c) })
		if err != nil {
			return nil, err
		}
		defer rd.Close()
		if _, err := x.callReader(c, func() (ItemReader, error) { return rd, rd.Open(c, cur.Checkpoint) }); err != nil {
			return nil, err
		}
		f.reader = rd
	}
	r.feed = f
	return r.run()
}

// callReader calls one of a reader's methods, turning a panic or an error
// into the asset's ExecutionFailed error.
func (x *executor) callReader(c *Context, fn func() (ItemReader, error)) (rd ItemReader, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = newError(TypeExecutionFailed, map[string]any{"asset": c.n.def.name, "panic": fmt.Sprint(p), "stack": string(debug.Stack())},
				"the item reader of asset %q panicked: %v", c.n.def.name, p)
		}
	}()
	rd, err = fn()
	if err != nil {
		var fe *Error
		if !errors.As(err, &fe) {
			err = wrapError(TypeExecutionFailed, err, map[string]any{"asset": c.n.def.name}, "the item reader of asset %q failed: %v", c.n.def.name, err)
		}
	}
	return rd, err
}

// exhausted reports whether every item has been read.
func (f *itemFeed) exhausted() bool { return f == nil || f.done }

// read reads the next chunk and forms its batches.
func (f *itemFeed) read(ctx context.Context, r *scatterRun) error {
	n := r.cfg.batchSize()
	if b := r.cfg.Batching; b != nil {
		n = min(max(b.MaxItems, 0), MaxScatterBatch)
		if n == 0 {
			n = MaxScatterBatch
		}
	}
	var (
		items []string
		cp    string
		done  bool
	)
	_, err := r.x.callReader(r.c, func() (ItemReader, error) {
		var err error
		items, cp, done, err = f.reader.Read(r.c, n)
		return nil, err
	})
	if err != nil {
		return err
	}
	asset := r.c.n.def.name
	kept := items[:0:0]
	for _, it := range items {
		if it == "" || len(it) > MaxScatterItemLen || !utf8.ValidString(it) {
			return newError(TypeExecutionFailed, map[string]any{"asset": asset, "bytes": len(it), "limit": MaxScatterItemLen},
				"the item reader of asset %q read an item (%d bytes) that is empty, longer than %d bytes or not UTF-8", asset, len(it), MaxScatterItemLen)
		}
		if _, dup := f.seen[it]; dup {
			continue
		}
		f.seen[it] = struct{}{}
		kept = append(kept, it)
	}
	if r.st.Total+len(kept) > MaxScatterItems {
		return newError(TypeExecutionFailed, map[string]any{"asset": asset, "limit": MaxScatterItems},
			"the item reader of asset %q read more than %d items; at most %d may run in one materialization: split the asset or its partitions", asset, MaxScatterItems, MaxScatterItems)
	}
	if len(kept) > 0 {
		ordered, bounds := ScatterConfig{Batching: r.cfg.Batching, BatchSize: n, Parallel: max(n, r.cfg.Parallel)}.batchesInOrder(kept)
		for i := range len(bounds) - 1 {
			r.add(ordered[bounds[i]:bounds[i+1]])
		}
	}
	f.pending, f.chunk = cp, r.count
	f.done = done || len(items) == 0
	if r.next == r.count {
		// Nothing to hand out (all read before): keep the checkpoint now.
		return f.save(ctx, r)
	}
	return nil
}

// handedOut keeps the cursor once the last chunk's batches are all out.
func (f *itemFeed) handedOut(ctx context.Context, r *scatterRun) error {
	if f == nil || r.next != f.chunk {
		return nil
	}
	return f.save(ctx, r)
}

// save writes the cursor, by compare-and-set: the scatter's execution is
// its one writer.
func (f *itemFeed) save(ctx context.Context, r *scatterRun) error {
	b, err := json.Marshal(scatterCursor{Batches: r.count, Sizes: r.sizes, Checkpoint: f.pending, Done: f.done})
	if err != nil {
		return err
	}
	err = r.x.retrying("scatter_cursor", "", f.key).Do(ctx, func(ctx context.Context) error {
		var err error
		if f.rev == 0 {
			f.rev, err = f.store.Create(ctx, f.key, b)
		} else {
			f.rev, err = f.store.Update(ctx, f.key, b, f.rev)
		}
		return err
	})
	if errors.Is(err, kv.ErrConflict) {
		return wrapError(TypeCancelled, err, map[string]any{"key": f.key},
			"scatter asset %q: another execution keeps its cursor: that one goes on", r.c.n.def.name)
	}
	if err != nil {
		return wrapError(TypeStorageError, err, map[string]any{"key": f.key}, "keep scatter cursor %s: %v", f.key, err)
	}
	return nil
}

// forget drops the cursor once the asset's outcome holds the scatter's.
func (f *itemFeed) forget(ctx context.Context) error {
	if f == nil || f.rev == 0 {
		return nil
	}
	return f.store.Delete(ctx, f.key, 0)
}
