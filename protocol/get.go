package protocol

import (
	"bytes"
	"encoding/json"
	"time"
)

// GetRequest asks for a materialized result (verb get).
type GetRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partition is the partition; "" means DefaultPartition.
	Partition string `json:"partition,omitempty"`
	// Storage names the backend to look in; "" means wherever the result
	// was stored.
	Storage string `json:"storage,omitempty"`
	// Stage asks the coordinator to stage a result too large to travel
	// inline (over InlineValueLimit bytes) in StagingBucket and name it in
	// the reply (GetReply.Staged), for a client that cannot read the store
	// the result is kept in (S3, a coordinator's or worker's disk). The
	// coordinator allows itself StagingAllowance(size) beyond its usual
	// request timeout for the copy; the client should wait as long. A
	// result that fits inline is sent inline, staged or not.
	Stage bool `json:"stage,omitempty"`
}

// StagingMinRate is the slowest rate, in bytes per second, at which a
// coordinator is expected to copy a result into StagingBucket:
// StagingAllowance is computed from it.
const StagingMinRate = 8 << 20

// StagingAllowance is how much longer than a quick request a get with Stage
// may take for a result of size bytes: the time to copy it at
// StagingMinRate. A coordinator gives the copy that long beyond its request
// timeout, and a client waits that long beyond its own.
func StagingAllowance(size int64) time.Duration {
	if size <= 0 {
		return 0
	}
	return time.Duration(float64(size) / StagingMinRate * float64(time.Second))
}

// Verb returns VerbGet.
func (GetRequest) Verb() string { return VerbGet }
func (GetRequest) isRequest()   {}

// Validate checks the version, names, partition and storage.
func (r GetRequest) Validate() *Error {
	if err := checkTarget(r.V, r.Pipeline, r.Asset, r.Partition); err != nil {
		return err
	}
	return checkOptionalName("storage", r.Storage)
}

// GetReply answers a GetRequest: where the result is, and the value itself
// when the stored object is at most InlineValueLimit bytes, or else, if the
// request asked for Stage, where a copy of it is staged. An asset with no
// result for the partition is an error reply with CodeNotFound.
type GetReply struct {
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partition is the resolved partition.
	Partition string `json:"partition"`
	// RunID is the run that materialized the result.
	RunID string `json:"run_id"`
	ResultRef
	// Value is the result, when inline: for EncodingJSON the JSON value
	// itself, for EncodingRaw a JSON string of the bytes in standard base64.
	// Empty when the result must be read from the object store.
	Value json.RawMessage `json:"value,omitempty"`
	// Staged names the object in StagingBucket that holds a copy of the
	// result's bytes (see StagedName), when the request asked for Stage and
	// the result is not inline. The copy's SHA-256 is SHA256; it expires
	// with the bucket's StagingTTL.
	Staged string `json:"staged,omitempty"`
	// Upstream is the result's lineage: the dependency values it was
	// computed from, as its record names them. (Added within Version 1: a
	// client that predates it refuses a reply that has it as malformed.)
	Upstream []Lineage `json:"upstream,omitempty"`
}

// Lineage names one dependency value a result was computed from.
type Lineage struct {
	// Asset names the dependency.
	Asset string `json:"asset"`
	// Partition is the dependency's partition.
	Partition string `json:"partition"`
	// RunID is the run that computed the dependency's value.
	RunID string `json:"run_id"`
}

func (l Lineage) validate(prefix string) *Error {
	if err := checkName(prefix+"asset", l.Asset); err != nil {
		return err
	}
	if err := checkPartition(prefix+"partition", l.Partition, false); err != nil {
		return err
	}
	return checkID(prefix+"run_id", l.RunID)
}

func (GetReply) isReply() {}

// Inline reports whether the reply carries the value.
func (r GetReply) Inline() bool { return len(r.Value) > 0 }

// Validate checks the reply, including that an inline value fits
// InlineValueLimit and matches the encoding.
func (r GetReply) Validate() *Error {
	if err := checkName("asset", r.Asset); err != nil {
		return err
	}
	if err := checkPartition("partition", r.Partition, false); err != nil {
		return err
	}
	if err := checkID("run_id", r.RunID); err != nil {
		return err
	}
	if err := r.ResultRef.validate(""); err != nil {
		return err
	}
	for i, l := range r.Upstream {
		if err := l.validate(indexed("upstream", i) + "."); err != nil {
			return err
		}
	}
	if r.Staged != "" {
		if err := checkObjectKey("staged", r.Staged); err != nil {
			return err
		}
		if r.Inline() {
			return fieldErrorf("staged", "staged names a copy of a result whose value is inline; only results read from the object store are staged")
		}
	}
	if !r.Inline() {
		return nil
	}
	switch {
	case r.Size > InlineValueLimit:
		return fieldErrorf("value", "value is inline but the result is %d bytes; results over %d bytes are read from the object store", r.Size, InlineValueLimit)
	case !json.Valid(r.Value):
		return fieldErrorf("value", "value is not valid JSON")
	case r.Encoding == EncodingRaw:
		// json.Unmarshal takes null for an empty []byte: refuse it first.
		var raw []byte
		if bytes.TrimSpace(r.Value)[0] != '"' || json.Unmarshal(r.Value, &raw) != nil {
			return fieldErrorf("value", "value of a raw result must be a JSON string of standard base64")
		}
		if int64(len(raw)) != r.Size {
			return fieldErrorf("value", "value holds %d bytes but size says %d", len(raw), r.Size)
		}
	}
	return nil
}

// ExistsRequest asks whether a result is materialized (verb exists),
// without loading it.
type ExistsRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partition is the partition; "" means DefaultPartition.
	Partition string `json:"partition,omitempty"`
	// Storage names the backend to look in; "" means any.
	Storage string `json:"storage,omitempty"`
}

// Verb returns VerbExists.
func (ExistsRequest) Verb() string { return VerbExists }
func (ExistsRequest) isRequest()   {}

// Validate checks the version, names, partition and storage.
func (r ExistsRequest) Validate() *Error {
	if err := checkTarget(r.V, r.Pipeline, r.Asset, r.Partition); err != nil {
		return err
	}
	return checkOptionalName("storage", r.Storage)
}

// ExistsReply answers an ExistsRequest.
type ExistsReply struct {
	// Exists is true when the partition is materialized.
	Exists bool `json:"exists"`
}

func (ExistsReply) isReply() {}

// Validate accepts every ExistsReply.
func (ExistsReply) Validate() *Error { return nil }
