package client

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strconv"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/objectstore/jsstore"
	"github.com/flowstone-go/flowstone/protocol"
)

// Get returns the materialized result of asset for the partition, or a
// NotFound error if there is none; it never runs anything. The value is
// read when the Result is read (Bytes, Decode, Open): from the reply when
// the fleet sent it inline, otherwise from the store given with WithStore
// under the result's storage name, or else from the fleet's JetStream
// object store (protocol.ResultsBucket) if the object is there.
func (c *Client) Get(ctx context.Context, pipeline, asset string, opts ...flowstone.GetOption) (*flowstone.Result, error) {
	g := flowstone.ResolveGet(opts...)
	if err := checkPartition(g.Partition); err != nil {
		return nil, err
	}
	reply, err := call[protocol.GetReply](ctx, c, protocol.GetRequest{V: protocol.Version, Pipeline: pipeline, Asset: asset,
		Partition: g.Partition, Storage: g.Storage})
	if err != nil {
		return nil, err
	}
	return c.result(pipeline, reply)
}

// result builds the Result of a get reply.
func (c *Client) result(pipeline string, r protocol.GetReply) (*flowstone.Result, error) {
	rec := &flowstone.Materialization{Pipeline: pipeline, Asset: r.Asset, Partition: r.Partition, State: flowstone.StateCompleted,
		RunID: r.RunID, Storage: r.Storage, ObjectKey: r.ObjectKey, Encoding: string(r.Encoding), Size: r.Size, SHA256: r.SHA256}
	if r.Inline() {
		value := []byte(r.Value)
		if r.Encoding == protocol.EncodingRaw {
			// DecodeReply checked that it is a base64 JSON string of Size bytes.
			var raw []byte
			if err := json.Unmarshal(r.Value, &raw); err != nil {
				return nil, flowstone.FromWire(&protocol.Error{Code: protocol.CodeInternal, Message: "raw value of " + r.Asset + " is not base64: " + err.Error()})
			}
			value = raw
		}
		return flowstone.NewResult(rec, true, nil, func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(value)), nil
		}), nil
	}
	return flowstone.NewResult(rec, true, nil, func(ctx context.Context) (io.ReadCloser, error) {
		return c.openObject(ctx, rec)
	}), nil
}

// openObject reads a result that did not travel inline from its store.
func (c *Client) openObject(ctx context.Context, rec *flowstone.Materialization) (io.ReadCloser, error) {
	details := map[string]any{"asset": rec.Asset, "partition": rec.Partition, "storage": rec.Storage, "object_key": rec.ObjectKey, "size": rec.Size}
	if rec.ObjectKey == "" {
		return nil, &flowstone.Error{Type: flowstone.TypeStorageError, Details: details,
			Message: "the fleet sent neither the value of " + rec.Asset + " nor where it is stored"}
	}
	s, ok := c.cfg.stores[rec.Storage]
	if !ok {
		if rc := c.openFromResultsBucket(ctx, rec); rc != nil {
			return rc, nil
		}
		return nil, &flowstone.Error{Type: flowstone.TypeConfigError, Details: details,
			Message: "the result of " + rec.Asset + " is " + strconv.FormatInt(rec.Size, 10) + " bytes, too large to travel inline (limit " +
				strconv.Itoa(protocol.InlineValueLimit) + "): configure client.WithStore(" + strconv.Quote(rec.Storage) +
				", ...) or read it from the object store at " + rec.Storage + "/" + rec.ObjectKey}
	}
	rc, _, err := s.Get(ctx, rec.ObjectKey)
	if err != nil {
		return nil, &flowstone.Error{Type: flowstone.TypeStorageError, Details: details,
			Message: "read the result of " + rec.Asset + " from " + rec.Storage + "/" + rec.ObjectKey + ": " + err.Error()}
	}
	return rc, nil
}

// Exists reports whether asset is materialized for the partition, without
// loading the value.
func (c *Client) Exists(ctx context.Context, pipeline, asset string, opts ...flowstone.GetOption) (bool, error) {
	g := flowstone.ResolveGet(opts...)
	if err := checkPartition(g.Partition); err != nil {
		return false, err
	}
	reply, err := call[protocol.ExistsReply](ctx, c, protocol.ExistsRequest{V: protocol.Version, Pipeline: pipeline, Asset: asset,
		Partition: g.Partition, Storage: g.Storage})
	return reply.Exists, err
}

// openFromResultsBucket reads a result from the fleet's JetStream object
// store (protocol.ResultsBucket), where fleets keep results by default,
// when the object there is the one the record names (same SHA-256). It
// returns nil if the bucket or the object is not there; it never creates
// the bucket.
func (c *Client) openFromResultsBucket(ctx context.Context, rec *flowstone.Materialization) io.ReadCloser {
	c.mu.Lock()
	st := c.results
	c.mu.Unlock()
	if st == nil {
		if _, err := c.js.ObjectStore(ctx, protocol.ResultsBucket); err != nil {
			return nil
		}
		s, err := jsstore.New(ctx, c.js, protocol.ResultsBucket)
		if err != nil {
			return nil
		}
		c.mu.Lock()
		if c.results == nil {
			c.results = s
		}
		st = c.results
		c.mu.Unlock()
	}
	rc, info, err := st.Get(ctx, rec.ObjectKey)
	if err != nil {
		return nil
	}
	if rec.SHA256 == "" || info.SHA256 != rec.SHA256 {
		rc.Close()
		return nil
	}
	return rc
}
