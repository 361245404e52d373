package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"math/bits"
	"strconv"
	"time"
)

// A backfill accepted by a coordinator is kept in RunsBucket, so that it
// outlives the coordinator driving it:
//
//	backfill.<id>              its BackfillRecord: what was asked, who drives it, how far it got
//	backfill_parts.<id>.<n>    chunk n (0 <= n < Chunks) of its partitions, a BackfillPartitions
//	backfill_live.<id>         in the live-backfill index from before the record is first
//	                           written until after it is terminal (value: when, RFC 3339)
//
// The record changes by compare-and-set only. Its driver (the coordinator
// named in it) writes its progress; a coordinator that finds the driver
// dead (its heartbeat stale) takes the record over by writing its own id
// at the revision it read, and drives the rest. Keys expire with the
// bucket's TTL after their last write; a driver rewrites them well before.
const (
	// BackfillPrefix begins the keys of backfill records.
	BackfillPrefix = "backfill."
	// BackfillPartsPrefix begins the keys of backfills' partition chunks.
	BackfillPartsPrefix = "backfill_parts."
	// LiveBackfillPrefix begins the keys of the live-backfill index.
	LiveBackfillPrefix = "backfill_live."
)

// BackfillKey is a backfill's record key in RunsBucket.
func BackfillKey(id string) string { return BackfillPrefix + id }

// BackfillPartsKey is the key of chunk n of a backfill's partitions.
func BackfillPartsKey(id string, n int) string {
	return BackfillPartsPrefix + id + "." + strconv.Itoa(n)
}

// LiveBackfillKey is a backfill's key in the live-backfill index.
func LiveBackfillKey(id string) string { return LiveBackfillPrefix + id }

// backfillRunSuffix is the length of what BackfillRunID appends to the
// backfill id: a dash and 32 hex digits.
const backfillRunSuffix = 1 + 32

// MaxBackfillIDBytes is the longest backfill id: room is left for what
// BackfillRunID appends within MaxIDBytes.
const MaxBackfillIDBytes = MaxIDBytes - backfillRunSuffix

// BackfillRunID returns the run id of a backfill's partition,
// "<backfill id>-<32 hex digits of the partition's SHA-256>": the same
// whichever coordinator drives the partition and however often, so that a
// coordinator adopting the backfill finds the partition's records (and
// resumes the tasks left pending) instead of running it anew. It panics if
// backfillID is not a ValidID of at most MaxBackfillIDBytes.
func BackfillRunID(backfillID, partition string) string {
	if err := checkBackfillID("backfill_id", backfillID); err != nil {
		panic("protocol: " + err.Message)
	}
	sum := sha256.Sum256([]byte(partition))
	return backfillID + "-" + hex.EncodeToString(sum[:16])
}

// BackfillOfRun returns the backfill id of a run id that BackfillRunID
// built, and false for any other run id.
func BackfillOfRun(runID string) (string, bool) {
	n := len(runID) - backfillRunSuffix
	if n < 1 || runID[n] != '-' || checkBackfillID("run_id", runID[:n]) != nil {
		return "", false
	}
	for i := n + 1; i < len(runID); i++ {
		if c := runID[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return runID[:n], true
}

func checkBackfillID(field, id string) *Error {
	if !isToken(id, MaxBackfillIDBytes) {
		return fieldErrorf(field, "%s %s is not a valid backfill id: use 1-%d letters, digits, '_' or '-'", field, quote(id), MaxBackfillIDBytes)
	}
	return nil
}

// BackfillSpec is what a backfill was asked to do, but for its partitions
// (kept apart, in chunks): the fields of the BackfillRequest it came from.
type BackfillSpec struct {
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
	// Parallel is how many partitions run at once; 0 means 1.
	Parallel int `json:"parallel,omitempty"`
	// Force recomputes partitions that are materialized.
	Force bool `json:"force,omitempty"`
	// OnError is the failure policy; "" means OnErrorContinue.
	OnError OnError `json:"on_error,omitempty"`
	// WithDeps, when false, fails a partition whose dependencies are not
	// materialized instead of running them. Nil means true.
	WithDeps *bool `json:"with_deps,omitempty"`
	// TimeoutMS bounds each partition's run, in milliseconds; 0 means the
	// default (300000).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Priority is the partitions' task priority.
	Priority int `json:"priority,omitempty"`
}

func (s BackfillSpec) validate(field string) *Error {
	if err := checkName(field+".pipeline", s.Pipeline); err != nil {
		return err
	}
	if err := checkName(field+".asset", s.Asset); err != nil {
		return err
	}
	if err := checkNonNegative(field+".parallel", s.Parallel); err != nil {
		return err
	}
	if err := checkNonNegative(field+".timeout_ms", s.TimeoutMS); err != nil {
		return err
	}
	if err := checkPriority(field+".priority", s.Priority); err != nil {
		return err
	}
	return checkOnError(field+".on_error", s.OnError)
}

func checkOnError(field string, p OnError) *Error {
	switch p {
	case "", OnErrorContinue, OnErrorHalt:
		return nil
	}
	return fieldErrorf(field, "%s %s is not %q or %q", field, quote(string(p)), OnErrorContinue, OnErrorHalt)
}

// BackfillCounts counts a backfill's partitions as they end. Their sum is
// at most the backfill's total; it equals it once the backfill is over.
type BackfillCounts struct {
	// Succeeded counts the partitions materialized by the backfill.
	Succeeded int `json:"succeeded"`
	// Failed counts the partitions that failed.
	Failed int `json:"failed"`
	// Skipped counts the partitions already materialized (by another
	// run), or skipped by a router upstream, so nothing ran.
	Skipped int `json:"skipped"`
	// NotStarted counts the partitions left out: after a failure with
	// OnErrorHalt, or when the backfill was cancelled.
	NotStarted int `json:"not_started,omitempty"`
}

// Ended returns the number of partitions counted.
func (c BackfillCounts) Ended() int { return c.Succeeded + c.Failed + c.Skipped + c.NotStarted }

func (c BackfillCounts) validate(total int) *Error {
	for _, f := range []struct {
		name string
		n    int
	}{{"succeeded", c.Succeeded}, {"failed", c.Failed}, {"skipped", c.Skipped}, {"not_started", c.NotStarted}} {
		if err := checkNonNegative(f.name, f.n); err != nil {
			return err
		}
		if f.n > total {
			return fieldErrorf(f.name, "%s is %d, more than the %d partitions of the backfill", f.name, f.n, total)
		}
	}
	if n := c.Ended(); n > total {
		return fieldErrorf("succeeded", "the counts add up to %d, more than the %d partitions of the backfill", n, total)
	}
	return nil
}

// The states of a backfill (BackfillRecord.State):
//
//   - StateRunning: accepted and being driven, or waiting for a coordinator
//     to adopt it (its driver died).
//   - StateCompleted: every partition ended: succeeded, failed or skipped.
//     A backfill whose partitions failed with OnErrorContinue is completed
//     too; Failed and Errors tell.
//   - StateFailed: halted after a partition failed with OnErrorHalt (the
//     rest are NotStarted), or it could not go on at all (Error says why:
//     its pipeline or asset changed, its partition list was lost).
//   - StateCancelled: cancelled (Error says by what).
func backfillStateOK(s State) bool {
	return s == StateRunning || s == StateCompleted || s == StateFailed || s == StateCancelled
}

// MaxBackfillErrors is the most failed partitions whose errors a backfill
// keeps (the first ones to fail); the others are counted in
// ErrorsOmitted.
const MaxBackfillErrors = 100

// BackfillRecord is a backfill as it is kept under BackfillKey(ID).
type BackfillRecord struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// ID identifies the backfill (at most MaxBackfillIDBytes).
	ID string `json:"id"`
	// Request is what was asked, partitions aside.
	Request BackfillSpec `json:"request"`
	// Total is the number of partitions, 1 to MaxBackfillPartitions.
	Total int `json:"total"`
	// Chunks is the number of BackfillPartitions chunks the partitions are
	// kept in, 1 to Total.
	Chunks int `json:"chunks"`
	// State is StateRunning or a terminal state (see above).
	State State `json:"state"`
	// Coordinator is the id of the coordinator driving the backfill.
	Coordinator string `json:"coordinator"`
	// BackfillCounts are the partitions counted so far.
	BackfillCounts
	// Halted is set once a partition failed with OnErrorHalt: no further
	// partition starts, whoever drives the backfill.
	Halted bool `json:"halted,omitempty"`
	// Counted has bit i (byte i/8, bit i%8) set once partition i (in the
	// order of the chunks) is counted as succeeded, failed or skipped:
	// (Total+7)/8 bytes, base64 in JSON. A driver taking over counts the
	// others from their materialization records.
	Counted []byte `json:"counted"`
	// Errors holds the errors of the first failed partitions, by
	// partition: at most MaxBackfillErrors.
	Errors map[string]*Error `json:"errors,omitempty"`
	// ErrorsOmitted counts the failed partitions whose errors were not
	// kept.
	ErrorsOmitted int `json:"errors_omitted,omitempty"`
	// Error is why the backfill as a whole failed or was cancelled.
	Error *Error `json:"error,omitempty"`
	// CreatedAt is when the backfill was accepted.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when the record was last written.
	UpdatedAt time.Time `json:"updated_at"`
}

// CountedBit reports whether partition i is marked in Counted.
func (r *BackfillRecord) CountedBit(i int) bool { return r.Counted[i/8]&(1<<(i%8)) != 0 }

// SetCounted marks partition i in Counted.
func (r *BackfillRecord) SetCounted(i int) { r.Counted[i/8] |= 1 << (i % 8) }

// Validate checks the record.
func (r BackfillRecord) Validate() *Error {
	if err := checkVersion(r.V); err != nil {
		return err
	}
	if err := checkBackfillID("id", r.ID); err != nil {
		return err
	}
	if err := r.Request.validate("request"); err != nil {
		return err
	}
	if r.Total < 1 || r.Total > MaxBackfillPartitions {
		return fieldErrorf("total", "total is %d; a backfill has 1 to %d partitions", r.Total, MaxBackfillPartitions)
	}
	if r.Chunks < 1 || r.Chunks > r.Total {
		return fieldErrorf("chunks", "chunks is %d; it must be 1 to total (%d)", r.Chunks, r.Total)
	}
	if !backfillStateOK(r.State) {
		return fieldErrorf("state", "state %s is not a backfill state (running, completed, failed, cancelled)", quote(string(r.State)))
	}
	if err := checkID("coordinator", r.Coordinator); err != nil {
		return err
	}
	if err := r.BackfillCounts.validate(r.Total); err != nil {
		return err
	}
	if want := (r.Total + 7) / 8; len(r.Counted) != want {
		return fieldErrorf("counted", "counted has %d bytes; %d partitions need %d", len(r.Counted), r.Total, want)
	}
	marked := 0
	for _, b := range r.Counted {
		marked += bits.OnesCount8(b)
	}
	if counted := r.Succeeded + r.Failed + r.Skipped; marked != counted || r.Total%8 != 0 && r.Counted[len(r.Counted)-1]>>(r.Total%8) != 0 {
		return fieldErrorf("counted", "counted marks %d partitions (or some past the total) for %d succeeded, failed or skipped", marked, counted)
	}
	if err := checkBackfillErrors(r.Errors, r.ErrorsOmitted, r.Failed); err != nil {
		return err
	}
	if r.Error != nil {
		if err := r.Error.validate("error"); err != nil {
			return err
		}
	}
	if err := checkTime("created_at", r.CreatedAt); err != nil {
		return err
	}
	return checkTime("updated_at", r.UpdatedAt)
}

// checkBackfillErrors checks the errors kept of a backfill's failed
// partitions.
func checkBackfillErrors(errs map[string]*Error, omitted, failed int) *Error {
	if len(errs) > MaxBackfillErrors {
		return fieldErrorf("errors", "errors has %d entries; the limit is %d", len(errs), MaxBackfillErrors)
	}
	if err := checkNonNegative("errors_omitted", omitted); err != nil {
		return err
	}
	if len(errs)+omitted > failed {
		return fieldErrorf("errors", "%d errors kept and %d omitted for %d failed partitions", len(errs), omitted, failed)
	}
	for part, e := range errs {
		if err := checkPartition("errors", part, false); err != nil {
			return err
		}
		if e == nil {
			return fieldErrorf("errors", "errors[%s] is null", quote(part))
		}
		if err := e.validate("errors"); err != nil {
			return err
		}
	}
	return nil
}

// EncodeBackfillRecord validates and encodes a backfill record.
func EncodeBackfillRecord(r BackfillRecord) ([]byte, *Error) { return encodeValid(r, MaxMessageBytes) }

// DecodeBackfillRecord decodes and validates a backfill record.
func DecodeBackfillRecord(data []byte) (BackfillRecord, *Error) {
	return decodeValid[BackfillRecord](data, MaxMessageBytes)
}

// BackfillPartitions is one chunk of a backfill's partitions, kept under
// BackfillPartsKey(ID, Index). The chunks, in Index order, list the
// partitions in the order they were asked for; a partition's place in that
// list is its bit in BackfillRecord.Counted.
type BackfillPartitions struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// ID is the backfill's id.
	ID string `json:"id"`
	// Index is the chunk's place, from 0.
	Index int `json:"index"`
	// Partitions are the chunk's partitions, at least one, none empty.
	Partitions []string `json:"partitions"`
}

// Validate checks the chunk.
func (c BackfillPartitions) Validate() *Error {
	if err := checkVersion(c.V); err != nil {
		return err
	}
	if err := checkBackfillID("id", c.ID); err != nil {
		return err
	}
	if err := checkNonNegative("index", c.Index); err != nil {
		return err
	}
	if len(c.Partitions) == 0 || len(c.Partitions) > MaxBackfillPartitions {
		return fieldErrorf("partitions", "partitions has %d entries; a chunk has 1 to %d", len(c.Partitions), MaxBackfillPartitions)
	}
	for i, p := range c.Partitions {
		if checkPartition("partitions", p, false) != nil {
			return checkPartition(indexed("partitions", i), p, false)
		}
	}
	return nil
}

// EncodeBackfillPartitions validates and encodes a chunk of partitions.
func EncodeBackfillPartitions(c BackfillPartitions) ([]byte, *Error) {
	return encodeValid(c, MaxMessageBytes)
}

// DecodeBackfillPartitions decodes and validates a chunk of partitions.
func DecodeBackfillPartitions(data []byte) (BackfillPartitions, *Error) {
	return decodeValid[BackfillPartitions](data, MaxMessageBytes)
}
