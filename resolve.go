package flowstone

import (
	"github.com/flowstone-go/flowstone/internal/bridge/hook"
	"github.com/flowstone-go/flowstone/protocol"
)

// The resolvers below spell out what a list of options means, for code that
// sends the call elsewhere (the fleet client) instead of running it; they
// reach it through internal/bridge.

// resolveRun returns the RunRequest the options describe, with Pipeline and
// Asset set, or the BadRequest error an option carries.
func resolveRun(pipeline, asset string, opts ...RunOption) (RunRequest, error) {
	c := newRunConfig(opts)
	return RunRequest{RunID: c.runID, Pipeline: pipeline, Asset: asset, Partition: c.partition, Force: c.force, WithDeps: c.withDeps,
		Async: c.async, Storage: c.storage, Timeout: c.timeout, Priority: c.priority, ScheduledAt: c.scheduledAt}, c.err
}

// resolveGet returns what the options of Get, Exists, Status or Cancel
// describe.
func resolveGet(opts ...GetOption) hook.GetRequest {
	c := newGetConfig(opts)
	return hook.GetRequest{Partition: c.partition, Storage: c.storage}
}

// resolveInvalidate returns what Invalidate's options describe, or the
// BadRequest error of a bad option or combination.
func resolveInvalidate(opts ...InvalidateOption) (hook.InvalidateRequest, error) {
	c := newInvalidateConfig(opts)
	r := hook.InvalidateRequest{All: c.all, Cascade: c.cascade}
	keys, err := c.keys()
	if err != nil || !c.named() || c.all {
		return r, err
	}
	if len(keys) == 1 {
		r.Partition = keys[0]
	} else {
		r.Partitions = keys
	}
	return r, nil
}

// backfillRequest is what Backfill's options describe.
type backfillRequest = hook.BackfillRequest[ErrorPolicy, BackfillProgress]

// resolveBackfill returns what Backfill's options describe, or the
// BadRequest error an option carries.
func resolveBackfill(opts ...BackfillOption) (backfillRequest, error) {
	c := backfillConfig{parallel: 1, withDeps: true, timeout: DefaultRunTimeout}
	for _, o := range opts {
		o.applyBackfill(&c)
	}
	r := backfillRequest{Partitions: c.partitions, Parallel: c.parallel, Force: c.force, WithDeps: c.withDeps, Async: c.async,
		Timeout: c.timeout, Priority: c.priority, Progress: c.progress}
	if c.halt {
		r.OnError = Halt
	}
	return r, c.err
}

// resolveGraph returns the format Graph's options select.
func resolveGraph(opts ...GraphOption) GraphFormat {
	var c graphConfig
	for _, o := range opts {
		o.applyGraph(&c)
	}
	return c.format
}

// wireError converts e for the fleet's wire.
func (e *Error) wireError() *protocol.Error {
	if e == nil {
		return nil
	}
	d := make(map[string]any, len(e.Details))
	for k, v := range e.Details {
		if inner, ok := v.(*Error); ok {
			v = inner.wireError()
		}
		d[k] = v
	}
	if len(d) == 0 {
		d = nil
	}
	return &protocol.Error{Code: string(e.Type), Message: e.Message, Details: d}
}

// fromWire converts a wire error into an *Error of the same type and
// details, so callers branch the same way on both sides of the fleet: a
// protocol.CodeInternal error is TypeInternal (never a storage error: the
// store is not at fault), an unsupported version or an oversized payload
// is TypeBadRequest with the wire's code in Details["code"].
func fromWire(w *protocol.Error) *Error {
	if w == nil {
		return nil
	}
	t := ErrorType(w.Code)
	switch w.Code {
	case protocol.CodeUnsupportedVersion, protocol.CodePayloadTooLarge:
		t = TypeBadRequest
	}
	d := w.Details
	if string(t) != w.Code {
		// Keep the wire's finer code for programs that want it.
		if d == nil {
			d = map[string]any{}
		}
		d["code"] = w.Code
	}
	return &Error{Type: t, Message: w.Message, Details: d}
}
