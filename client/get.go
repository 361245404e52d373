package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/msgget"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/jsstore"
	"github.com/flowstone-go/flowstone/protocol"
)

// Get returns the materialized result of asset for the partition, or a
// NotFound error if there is none; it never runs anything. The value is
// read when the Result is read (Bytes, Decode, Open), from the first place
// that has it:
//
//  1. the reply, when the fleet sent it inline (results up to
//     protocol.InlineValueLimit bytes);
//  2. the store given with WithStore under the result's storage name;
//  3. the fleet's JetStream object store (protocol.ResultsBucket), if the
//     object is there;
//  4. a copy the fleet stages for the client: the client asks a
//     coordinator again, which copies the result from its store (S3,
//     files) into protocol.StagingBucket, and reads that copy over NATS.
//
// Readers verify the bytes against the checksum stored with the object;
// objects in the fleet's JetStream buckets are used only when they are
// the bytes whose SHA-256 the Result's Record holds. A staged read of a
// result re-materialized with other bytes since Get returned fails with a
// StorageError that says so, rather than return the new bytes: Get again
// for the new value. Staging waits until the context's deadline or,
// without one, for the client's timeout plus
// protocol.StagingAllowance(size).
func (c *Client) Get(ctx context.Context, pipeline, asset string, opts ...flowstone.GetOption) (*flowstone.Result, error) {
	g := bridge.ResolveGet(opts...)
	if err := checkPartition(g.Partition); err != nil {
		return nil, err
	}
	req := protocol.GetRequest{V: protocol.Version, Pipeline: pipeline, Asset: asset, Partition: g.Partition, Storage: g.Storage}
	reply, err := call[protocol.GetReply](ctx, c, req)
	if err != nil {
		return nil, err
	}
	return c.result(req, reply)
}

// result builds the Result of the reply to req.
func (c *Client) result(req protocol.GetRequest, r protocol.GetReply) (*flowstone.Result, error) {
	rec := &flowstone.Materialization{Pipeline: req.Pipeline, Asset: r.Asset, Partition: r.Partition, State: flowstone.StateCompleted,
		RunID: r.RunID, Value: &flowstone.Value{RunID: r.RunID, Storage: r.Storage, ObjectKey: r.ObjectKey, Encoding: string(r.Encoding), Size: r.Size, SHA256: r.SHA256}}
	for _, l := range r.Upstream {
		rec.Value.Upstream = append(rec.Value.Upstream, flowstone.Lineage{Asset: l.Asset, Partition: l.Partition, RunID: l.RunID})
	}
	if r.Inline() {
		value := []byte(r.Value)
		if r.Encoding == protocol.EncodingRaw {
			// DecodeReply checked that it is a base64 JSON string of Size bytes.
			var raw []byte
			if err := json.Unmarshal(r.Value, &raw); err != nil {
				return nil, bridge.FromWire(&protocol.Error{Code: protocol.CodeInternal, Message: "raw value of " + r.Asset + " is not base64: " + err.Error()})
			}
			value = raw
		}
		return bridge.NewResult(rec, true, nil, func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(value)), nil
		}), nil
	}
	// A staged read asks again for the partition the fleet resolved.
	req.Partition = r.Partition
	return bridge.NewResult(rec, true, nil, func(ctx context.Context) (io.ReadCloser, error) {
		return c.openObject(ctx, req, rec)
	}), nil
}

// openObject reads a result that did not travel inline: from the store
// given with WithStore, else from the fleet's JetStream object store, else
// from a copy the fleet stages (openStaged). req is the get that returned
// rec.
func (c *Client) openObject(ctx context.Context, req protocol.GetRequest, rec *flowstone.Materialization) (io.ReadCloser, error) {
	details := map[string]any{"asset": rec.Asset, "partition": rec.Partition, "storage": rec.Value.Storage, "object_key": rec.Value.ObjectKey, "size": rec.Value.Size}
	if rec.Value.ObjectKey == "" {
		return nil, &flowstone.Error{Type: flowstone.TypeStorageError, Details: details,
			Message: "the fleet sent neither the value of " + rec.Asset + " nor where it is stored"}
	}
	if s, ok := c.cfg.stores[rec.Value.Storage]; ok {
		rc, _, err := s.Get(ctx, rec.Value.ObjectKey)
		if err != nil {
			return nil, &flowstone.Error{Type: flowstone.TypeStorageError, Details: details,
				Message: "read the result of " + rec.Asset + " from " + rec.Value.Storage + "/" + rec.Value.ObjectKey + ": " + err.Error()}
		}
		return rc, nil
	}
	if rc := c.openFromBucket(ctx, c.results, protocol.ResultsBucket, rec.Value.ObjectKey, rec.Value.SHA256); rc != nil {
		return rc, nil
	}
	return c.openStaged(ctx, req, rec, details)
}

// openStaged asks a coordinator to stage the result in
// protocol.StagingBucket (req with Stage) and reads the staged copy, which
// must hold the bytes of rec: same SHA-256 and size.
func (c *Client) openStaged(ctx context.Context, req protocol.GetRequest, rec *flowstone.Materialization, details map[string]any) (io.ReadCloser, error) {
	req.Stage = true
	sctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		// Copying takes longer than a quick request: wait as long as the
		// coordinator allows itself.
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, c.cfg.timeout+protocol.StagingAllowance(rec.Value.Size))
		defer cancel()
	}
	reply, err := call[protocol.GetReply](sctx, c, req)
	if err != nil {
		return nil, c.stageFailed(rec, details, err)
	}
	if reply.SHA256 != rec.Value.SHA256 {
		details["run_id"], details["sha256"] = rec.RunID, rec.Value.SHA256
		details["current_run_id"], details["current_sha256"] = reply.RunID, reply.SHA256
		return nil, &flowstone.Error{Type: flowstone.TypeStorageError, Details: details,
			Message: "the result of " + rec.Asset + " (partition " + strconv.Quote(rec.Partition) + ") changed after Get returned it: run " + rec.RunID +
				" stored SHA-256 " + rec.Value.SHA256 + ", run " + reply.RunID + " has since stored SHA-256 " + reply.SHA256 +
				"; its bytes are not read in place of the result Get returned: Get it again to read the new value"}
	}
	if reply.Staged == "" {
		return nil, &flowstone.Error{Type: flowstone.TypeStorageError, Details: details,
			Message: "asked to stage the result of " + rec.Asset + " (" + strconv.FormatInt(rec.Value.Size, 10) + " bytes), the coordinator named no staged copy"}
	}
	details["staged"] = reply.Staged
	rc, info, err := c.getFromBucket(ctx, c.staging, protocol.StagingBucket, reply.Staged)
	if isRefusal(err) {
		return nil, err
	}
	if err != nil {
		return nil, &causedError{fe: &flowstone.Error{Type: flowstone.TypeStorageError, Details: details,
			Message: "read the copy of the result of " + rec.Asset + " the fleet staged at " + protocol.StagingBucket + "/" + reply.Staged + ": " + err.Error() +
				" (staged copies expire after " + protocol.StagingTTL.String() + "; retry to stage it again)"}, cause: err}
	}
	if info.SHA256 != rec.Value.SHA256 || info.Size != rec.Value.Size {
		rc.Close()
		details["staged_sha256"], details["staged_size"] = info.SHA256, info.Size
		return nil, &flowstone.Error{Type: flowstone.TypeStorageError, Details: details,
			Message: "the copy of the result of " + rec.Asset + " staged at " + protocol.StagingBucket + "/" + reply.Staged + " is " +
				strconv.FormatInt(info.Size, 10) + " bytes with SHA-256 " + info.SHA256 + ", not the result's " +
				strconv.FormatInt(rec.Value.Size, 10) + " bytes with SHA-256 " + rec.Value.SHA256}
	}
	return rc, nil
}

// stageFailed is the error of a result the client could neither read nor
// have staged: err is the coordinator's answer to the staging request.
func (c *Client) stageFailed(rec *flowstone.Materialization, details map[string]any, err error) error {
	var fe *flowstone.Error
	if !errors.As(err, &fe) {
		return err
	}
	what := "the result of " + rec.Asset + " is " + strconv.FormatInt(rec.Value.Size, 10) + " bytes, too large to travel inline (limit " +
		strconv.Itoa(protocol.InlineValueLimit) + "), and this client has no store " + strconv.Quote(rec.Value.Storage) + " (client.WithStore)"
	details["cause"] = fe.Message
	if fe.Details != nil {
		details["cause_details"] = fe.Details
	}
	out := &flowstone.Error{Type: fe.Type, Details: details}
	switch fe.Type {
	case flowstone.TypeBadRequest:
		// A coordinator of an earlier release refuses the stage field.
		out.Type = flowstone.TypeConfigError
		out.Message = what + ", and the coordinator cannot stage it for the client (" + fe.Message + "): upgrade the fleet's coordinators, or configure client.WithStore(" +
			strconv.Quote(rec.Value.Storage) + ", ...) to read it from " + rec.Value.Storage + "/" + rec.Value.ObjectKey
	case flowstone.TypeTimeout, flowstone.TypeCancelled, flowstone.TypeUnavailable, flowstone.TypeNotFound, flowstone.TypeAssetNotFound, flowstone.TypePipelineNotFound:
		out.Message = what + "; asked to stage it, the fleet answered: " + fe.Message
	default:
		out.Type = flowstone.TypeStorageError
		out.Message = what + "; the fleet could not stage it for the client: " + fe.Message
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &causedError{fe: out, cause: context.DeadlineExceeded}
	}
	if errors.Is(err, context.Canceled) {
		return &causedError{fe: out, cause: context.Canceled}
	}
	return out
}

// Exists reports whether asset is materialized for the partition, without
// loading the value.
func (c *Client) Exists(ctx context.Context, pipeline, asset string, opts ...flowstone.GetOption) (bool, error) {
	g := bridge.ResolveGet(opts...)
	if err := checkPartition(g.Partition); err != nil {
		return false, err
	}
	reply, err := call[protocol.ExistsReply](ctx, c, protocol.ExistsRequest{V: protocol.Version, Pipeline: pipeline, Asset: asset,
		Partition: g.Partition, Storage: g.Storage})
	return reply.Exists, err
}

// openFromBucket reads the object key from one of the fleet's JetStream
// object stores (rd) when it holds the bytes whose SHA-256 is sha. It
// returns nil if the bucket or the object is not there, is other bytes,
// or cannot be read.
func (c *Client) openFromBucket(ctx context.Context, rd *jsstore.Reader, bucket, key, sha string) io.ReadCloser {
	rc, info, err := c.getFromBucket(ctx, rd, bucket, key)
	if err != nil {
		return nil
	}
	if sha == "" || info.SHA256 != sha {
		rc.Close()
		return nil
	}
	return rc
}

// getFromBucket opens the object key in one of the fleet's JetStream object
// stores (rd, of bucket) with message gets: the client creates no consumer
// and never creates the bucket. A get the server refuses this client ends
// at once with an error saying so.
func (c *Client) getFromBucket(ctx context.Context, rd *jsstore.Reader, bucket, key string) (io.ReadCloser, objectstore.Info, error) {
	subject := msgget.Subject("OBJ_" + bucket)
	wctx, done := c.refused.watch(ctx, subject)
	rc, info, err := rd.Get(wctx, key)
	if err != nil {
		done()
		if rerr := refused(wctx, "a read of "+bucket+"/"+key); rerr != nil {
			return nil, objectstore.Info{}, rerr
		}
		return nil, objectstore.Info{}, err
	}
	return &watchedReader{ReadCloser: rc, ctx: wctx, done: done, what: "a read of " + bucket + "/" + key}, info, nil
}

// watchedReader is an object being read under a refusal watch, which
// Close ends.
type watchedReader struct {
	io.ReadCloser
	ctx  context.Context
	done func()
	what string
}

func (r *watchedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		if rerr := refused(r.ctx, r.what); rerr != nil {
			err = rerr
		}
	}
	return n, err
}

func (r *watchedReader) Close() error {
	r.done()
	return r.ReadCloser.Close()
}
