package coordinator

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/objectstore/jsstore"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// stageParallel bounds the copies into the staging bucket one coordinator
// makes at once: each holds a few chunks in flight (jsstore's write
// window, 8 MiB at the default chunk size), and the rest wait their turn.
const stageParallel = 4

// stageReuseAge is the oldest a staged copy may be and still be handed to
// a client instead of copied again: it then has at least the other half
// of protocol.StagingTTL to live, time for the client to read it.
const stageReuseAge = protocol.StagingTTL / 2

// stager copies results into protocol.StagingBucket for clients that
// cannot read the store a result is kept in (GetRequest.Stage). Copies are
// named by content (protocol.StagedName), so a copy that is there, whole
// and young enough is handed out again instead of copied; within one
// coordinator, requests for the same copy wait for the one making it.
type stager struct {
	js    jetstream.JetStream
	log   zerolog.Logger
	fleet []fleet.Option // how the bucket is created: replicas, and who hears of a bucket that differs

	openMu sync.Mutex
	store  *jsstore.Store           // the bucket through jsstore, opened on first use
	obs    jetstream.ObjectStore    // the same bucket, for metadata
	slots  chan struct{}            // copies in flight, at most stageParallel
	mu     sync.Mutex               // guards making
	making map[string]chan struct{} // staged names being made; closed when done
}

func newStager(js jetstream.JetStream, log zerolog.Logger, fleetOpts ...fleet.Option) *stager {
	return &stager{js: js, log: log, fleet: fleetOpts, slots: make(chan struct{}, stageParallel), making: map[string]chan struct{}{}}
}

// staged is the outcome of one staging.
type staged struct {
	name   string
	reused bool
}

// stage puts a copy of res's bytes in the staging bucket and returns its
// name. res must be a result read from an object store; its record must
// carry the SHA-256 the copy is named by and checked against. The copy is
// streamed from the result's store into the bucket, never held in memory.
func (s *stager) stage(ctx context.Context, pipeline string, res *flowstone.Result) (staged, *protocol.Error) {
	rec := res.Record
	details := map[string]any{"asset": rec.Asset, "partition": rec.Partition, "storage": rec.Value.Storage, "object_key": rec.Value.ObjectKey, "size": rec.Value.Size}
	if !isSHA256(rec.Value.SHA256) {
		// Records of stored results carry one (a completion without it
		// is refused); a copy without one could be neither named nor
		// checked, so refuse rather than guess a name.
		return staged{}, &protocol.Error{Code: protocol.CodeStorageError, Details: details,
			Message: fmt.Sprintf("the result of %q (partition %q) has no SHA-256 in its record, so it cannot be staged for reading: re-run it with Force to record one", rec.Asset, rec.Partition)}
	}
	name := protocol.StagedName(rec.Value.SHA256)
	details["staged"] = name
	start := time.Now()
	out, perr := s.exclusive(ctx, name, details, func() (staged, *protocol.Error) {
		return s.stageOnce(ctx, name, res, details)
	})
	var ev *zerolog.Event
	msg := "result_staged"
	if perr != nil {
		ev, msg = s.log.Warn().Str("code", perr.Code).Str("error", perr.Message), "stage_failed"
	} else {
		ev = s.log.Info()
	}
	ev.Str("pipeline", pipeline).Str("asset", rec.Asset).Str("partition", rec.Partition).Str("storage", rec.Value.Storage).
		Int64("size", rec.Value.Size).Dur("duration", time.Since(start)).Bool("reused", out.reused).Msg(msg)
	return out, perr
}

// exclusive runs fn while no other request of this coordinator stages
// name: the second of two requests for the same copy waits for the first,
// then finds the copy made.
func (s *stager) exclusive(ctx context.Context, name string, details map[string]any, fn func() (staged, *protocol.Error)) (staged, *protocol.Error) {
	for {
		s.mu.Lock()
		busy, ok := s.making[name]
		if !ok {
			done := make(chan struct{})
			s.making[name] = done
			s.mu.Unlock()
			defer func() {
				s.mu.Lock()
				delete(s.making, name)
				s.mu.Unlock()
				close(done)
			}()
			return fn()
		}
		s.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return staged{}, stageCtxError(ctx, "waiting for another request staging the same bytes", details)
		}
	}
}

// stageOnce hands out the copy already in the bucket, or makes it.
func (s *stager) stageOnce(ctx context.Context, name string, res *flowstone.Result, details map[string]any) (staged, *protocol.Error) {
	rec := res.Record
	store, obs, err := s.open(ctx)
	if err != nil {
		return staged{}, stageError(ctx, "open the staging bucket "+protocol.StagingBucket, err, details)
	}
	if s.reusable(ctx, obs, name, rec) {
		return staged{name: name, reused: true}, nil
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return staged{}, stageCtxError(ctx, "waiting for a staging slot", details)
	}
	rc, err := res.Open(ctx)
	if err != nil {
		return staged{}, wire(err)
	}
	defer rc.Close()
	info, err := store.Put(ctx, name, rc, rec.Value.Size)
	if err != nil {
		return staged{}, stageError(ctx, "copy "+rec.Value.Storage+"/"+rec.Value.ObjectKey+" to "+protocol.StagingBucket+"/"+name, err, details)
	}
	if info.SHA256 != rec.Value.SHA256 || info.Size != rec.Value.Size {
		// The store handed out other bytes than the record describes: the
		// copy is not what its name says. Drop it rather than let a later
		// request hand it out.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
		defer cancel()
		if err := store.Delete(dctx, name); err != nil {
			s.log.Warn().Err(err).Str("staged", name).Msg("staged_copy_delete_failed")
		}
		details["copied_sha256"], details["copied_size"] = info.SHA256, info.Size
		return staged{}, &protocol.Error{Code: protocol.CodeStorageError, Details: details,
			Message: fmt.Sprintf("the bytes of %q (partition %q) read from %s/%s are %d bytes with SHA-256 %s, but the record says %d bytes with SHA-256 %s: the stored object does not match its record; re-run the asset with Force",
				rec.Asset, rec.Partition, rec.Value.Storage, rec.Value.ObjectKey, info.Size, info.SHA256, rec.Value.Size, rec.Value.SHA256)}
	}
	return staged{name: name}, nil
}

// reusable reports whether the bucket holds a whole copy of rec's bytes
// under name, young enough to be read before it expires.
func (s *stager) reusable(ctx context.Context, obs jetstream.ObjectStore, name string, rec *flowstone.Materialization) bool {
	oi, err := obs.GetInfo(ctx, name)
	if err != nil || oi.ModTime.IsZero() || time.Since(oi.ModTime) > stageReuseAge {
		return false
	}
	digest, err := jetstream.DecodeObjectDigest(oi.Digest)
	return err == nil && hex.EncodeToString(digest) == rec.Value.SHA256 && int64(oi.Size) == rec.Value.Size
}

// open opens the staging bucket, creating it (file storage, max age
// protocol.StagingTTL, the fleet's replicas) if it is missing. A bucket
// made by hand or by another release is kept as it is, its differences
// logged: copies then live as long as it says.
func (s *stager) open(ctx context.Context) (*jsstore.Store, jetstream.ObjectStore, error) {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if s.store != nil {
		return s.store, s.obs, nil
	}
	store, err := fleet.ObjectStore(ctx, s.js, protocol.StagingBucket,
		"flowstone: copies of large results staged for clients; they expire", protocol.StagingTTL, s.fleet...)
	if err != nil {
		return nil, nil, err
	}
	obs, err := s.js.ObjectStore(ctx, protocol.StagingBucket)
	if err != nil {
		return nil, nil, err
	}
	s.store, s.obs = store, obs
	return store, obs, nil
}

// stageError is the error of a failed staging step: a timeout or a
// cancellation if ctx ended, a storage error otherwise.
func stageError(ctx context.Context, step string, err error, details map[string]any) *protocol.Error {
	if ctx.Err() != nil {
		return stageCtxError(ctx, step, details)
	}
	return &protocol.Error{Code: protocol.CodeStorageError, Details: details,
		Message: fmt.Sprintf("staging %q (partition %q) for the client failed: %s: %v", details["asset"], details["partition"], step, err)}
}

// stageCtxError is the error of a staging cut short by ctx.
func stageCtxError(ctx context.Context, step string, details map[string]any) *protocol.Error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &protocol.Error{Code: protocol.CodeTimeout, Details: details,
			Message: fmt.Sprintf("staging %q (partition %q, %v bytes) for the client did not finish in time (%s): retry; a copy finished meanwhile is reused",
				details["asset"], details["partition"], details["size"], step)}
	}
	return &protocol.Error{Code: protocol.CodeUnavailable, Details: details,
		Message: fmt.Sprintf("staging %q (partition %q) for the client was stopped (%s): the coordinator is stopping; retry", details["asset"], details["partition"], step)}
}

// isSHA256 reports whether s is a SHA-256 digest as records hold it: 64
// lowercase hex digits.
func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
