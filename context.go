package flowstone

import (
	"context"
	"io"
	"sync"

	"github.com/rs/zerolog"
)

// Context is what an asset function gets: its partition, run, dependencies,
// a logger and a context.Context that is cancelled on Cancel, on timeout and
// when the fleet worker drains.
//
// A Context is valid only during the call it was passed to.
type Context struct {
	ctx    context.Context
	x      *executor
	p      *Pipeline
	n      *node
	task   *task
	try    int // the call's place among a Retry policy's, 1 for the first
	item   string
	batch  *ScatterBatch
	logger *zerolog.Logger

	mu      sync.Mutex
	readers []io.Closer // dependency readers handed out, closed after the call
}

// Context returns the context of this execution: done when the run is
// cancelled, times out, or the process stops.
func (c *Context) Context() context.Context { return c.ctx }

// Partition returns the partition key being materialized.
func (c *Context) Partition() string { return c.task.Partition }

// RunID returns the id of the run that materializes this asset.
func (c *Context) RunID() string { return c.task.RunID }

// Asset returns the asset's name.
func (c *Context) Asset() string { return c.n.def.name }

// Pipeline returns the pipeline's name.
func (c *Context) Pipeline() string { return c.p.name }

// Attempt returns which execution of the asset this is, 1 for the first:
// it counts the retries of the asset's Retry policy in this process, on
// top of the task's attempt (on the fleet, a task delivered again after
// its worker died starts at its delivery's number). An asset retried
// twice sees 1, 2, then 3.
func (c *Context) Attempt() int { return max(c.task.Attempt, 1) + max(c.try, 1) - 1 }

// ScatterItem returns the item this call handles, in a scatter asset's
// function; "" elsewhere (and in a batched scatter's: see ScatterBatch).
func (c *Context) ScatterItem() string { return c.item }

// ScatterBatch returns the batch this call handles, in the function of a
// scatter with Batching; ok is false elsewhere.
func (c *Context) ScatterBatch() (b ScatterBatch, ok bool) {
	if c.batch == nil {
		return ScatterBatch{}, false
	}
	return *c.batch, true
}

// Logger returns a logger with the pipeline, asset, partition and run id set.
// It writes where the engine's (or worker's) logger writes: nowhere unless
// configured.
func (c *Context) Logger() *zerolog.Logger {
	if c.logger == nil {
		l := c.x.logger.With().Str("pipeline", c.p.name).Str("asset", c.n.def.name).
			Str("partition", c.task.Partition).Str("run_id", c.task.RunID).Logger()
		c.logger = &l
	}
	return c.logger
}

// HasDep reports whether the named dependency has a value to read: false
// for an optional dependency that failed, and for names this asset does not
// depend on.
func (c *Context) HasDep(name string) bool {
	ref := c.dep(name)
	return ref != nil && !ref.Missing
}

func (c *Context) dep(name string) *depRef {
	for i := range c.task.Deps {
		if c.task.Deps[i].Asset == name {
			return &c.task.Deps[i]
		}
	}
	return nil
}

// Dep reads the value of the dependency name as a T, decoding it with the
// engine's codec. T may also be []byte or string for the stored bytes as
// they are, or io.Reader / io.ReadCloser to stream a large result (closed
// for you when the asset function returns).
//
// It fails with a BadRequest error if the asset does not declare name as a
// dependency, NotFound if an optional dependency has no value, and
// StorageError if the result cannot be read or decoded as a T.
func Dep[T any](c *Context, name string) (T, error) {
	var v T
	ref := c.dep(name)
	if ref == nil {
		return v, newError(TypeBadRequest, map[string]any{"asset": c.n.def.name, "dependency": name},
			"asset %q reads %q, which is not among its dependencies; add it with flowstone.DependsOn", c.n.def.name, name)
	}
	if ref.Missing {
		return v, newError(TypeNotFound, map[string]any{"asset": c.n.def.name, "dependency": name},
			"optional dependency %q of %q has no value for partition %q", name, c.n.def.name, c.task.Partition)
	}
	switch target := any(&v).(type) {
	case *io.Reader, *io.ReadCloser:
		rc, err := c.x.open(c.ctx, c.task, ref)
		if err != nil {
			return v, err
		}
		c.mu.Lock()
		c.readers = append(c.readers, rc)
		c.mu.Unlock()
		if r, ok := target.(*io.Reader); ok {
			*r = rc
		} else {
			*target.(*io.ReadCloser) = rc
		}
		return v, nil
	case *[]byte:
		b, err := c.x.load(c.ctx, c.task, ref)
		if err != nil {
			return v, err
		}
		if ref.Encoding == EncodingRaw {
			*target = b
			return v, nil
		}
		return v, c.x.decode(b, ref, target)
	case *string:
		b, err := c.x.load(c.ctx, c.task, ref)
		if err != nil {
			return v, err
		}
		if ref.Encoding == EncodingRaw {
			*target = string(b)
			return v, nil
		}
		return v, c.x.decode(b, ref, target)
	default:
		b, err := c.x.load(c.ctx, c.task, ref)
		if err != nil {
			return v, err
		}
		return v, c.x.decode(b, ref, target)
	}
}

// closeReaders closes the dependency readers handed out during the call.
func (c *Context) closeReaders() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.readers {
		r.Close()
	}
	c.readers = nil
}
