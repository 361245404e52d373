package flowstone

import (
	"context"
	"io"
)

// Result is a materialized value: where it came from and how to read it.
// Reading is lazy: Run does not load the value back unless you ask.
type Result struct {
	Asset     string
	Partition string
	// RunID is the run that materialized the value (for an async run: the
	// job's id).
	RunID string
	// Cached is true when the value was already materialized and nothing
	// executed for this call.
	Cached bool
	// Job is set for Async runs only; the value is then read with Get.
	Job *Job
	// Record is the metadata of the materialization (nil for Async); the
	// value is Record.Value. Its State is the latest attempt's, which may
	// have failed after the value was made.
	Record *Materialization

	codec Codec
	open  func(ctx context.Context) (io.ReadCloser, error)
	x     *executor // reads the value when open is nil (embedded results)
}

// newResult builds a Result whose value is read through open and decoded
// with codec (JSONCodec if nil). The fleet client uses it to give its
// results the same shape as the embedded engine's.
func newResult(rec *Materialization, cached bool, codec Codec, open func(ctx context.Context) (io.ReadCloser, error)) *Result {
	if codec == nil {
		codec = JSONCodec{}
	}
	return &Result{Asset: rec.Asset, Partition: rec.Partition, RunID: rec.Value.RunID, Cached: cached, Record: rec, codec: codec, open: open}
}

// result is the Result of a materialized record's value.
func (e *Engine) result(rec *Materialization, cached bool) *Result {
	return &Result{Asset: rec.Asset, Partition: rec.Partition, RunID: rec.Value.RunID, Cached: cached, Record: rec, codec: e.x.codec, x: e.x}
}

// Open streams the stored bytes (the codec's encoding, or the raw bytes an
// asset returned as []byte or io.Reader). The reader reports a checksum
// mismatch as an error at its end. The caller closes it.
func (r *Result) Open(ctx context.Context) (io.ReadCloser, error) {
	if r.open == nil && r.x != nil && r.Record.Materialized() {
		ref := refOf(r.Record)
		return r.x.open(ctx, &task{RunID: r.RunID}, &ref)
	}
	if r.open == nil {
		return nil, newError(TypeNotFound, map[string]any{"asset": r.Asset}, "result of %q has no value yet (async job %v): read it later with Get", r.Asset, r.RunID)
	}
	return r.open(ctx)
}

// Bytes returns the stored bytes.
func (r *Result) Bytes(ctx context.Context) ([]byte, error) {
	rc, err := r.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, wrapError(TypeStorageError, err, map[string]any{"asset": r.Asset}, "read result of %q: %v", r.Asset, err)
	}
	return b, nil
}

// Decode reads the value into v (a pointer), as Dep does: with the codec,
// or as the raw bytes when v is a *[]byte or *string and the asset returned
// raw bytes.
func (r *Result) Decode(v any) error {
	b, err := r.Bytes(context.Background())
	if err != nil {
		return err
	}
	if r.Record.Materialized() && r.Record.Value.Encoding == EncodingRaw {
		switch t := v.(type) {
		case *[]byte:
			*t = b
			return nil
		case *string:
			*t = string(b)
			return nil
		}
	}
	if err := r.codec.Decode(b, v); err != nil {
		return wrapError(TypeStorageError, err, map[string]any{"asset": r.Asset}, "decode result of %q into %T: %v", r.Asset, v, err)
	}
	return nil
}
