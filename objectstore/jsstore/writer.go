package jsstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/objectstore/internal/integrity"
)

// putWindow is how many chunks a Put has in flight: enough to keep the
// server busy, and the bound on a Put's memory, in chunks.
const putWindow = 8

// write stores src as a new version of key: it publishes the chunks, then
// the metadata message that commits them, then purges the chunks of the
// version it replaced.
//
// It writes the NATS object store layout (ADR-20) itself instead of calling
// ObjectStore.Put, which in nats.go v1.55.0 sets up a publisher per call
// whose reconnect goroutine can start after the publisher is torn down and
// then blocks forever: a goroutine leaked now and then per Put. Here chunks
// go through the caller's JetStream context, with at most putWindow in
// flight, and the result reads back through any NATS client.
func (s *Store) write(ctx context.Context, key string, src *integrity.Source) (*jetstream.ObjectInfo, error) {
	prev, err := s.info(ctx, key)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, err
	}
	id := nuid.Next()
	chunks, err := s.publishChunks(ctx, chunkSubject(s.bucket, id), src)
	if err == nil {
		// Whatever ended ctx after the last byte was read still stops the
		// commit, so that a Put reporting cancellation has stored nothing.
		err = integrity.ContextErr(ctx)
	}
	if err != nil {
		s.purgeChunks(ctx, key, id)
		return nil, err
	}

	digest := src.Digest()
	info := &jetstream.ObjectInfo{
		ObjectMeta: jetstream.ObjectMeta{
			Name: key,
			Opts: &jetstream.ObjectMetaOptions{ChunkSize: s.chunkSize},
		},
		Bucket: s.bucket,
		NUID:   id,
		Size:   uint64(src.Len()),
		Chunks: chunks,
		Digest: "SHA-256=" + base64.URLEncoding.EncodeToString(digest[:]),
	}
	if err := s.commit(ctx, info); err != nil {
		return nil, err
	}
	if prev != nil && !prev.Deleted {
		s.purgeChunks(ctx, key, prev.NUID)
	}
	s.purgeIfSuperseded(ctx, key, id)
	return info, nil
}

// publishChunks publishes src in chunks to subject and returns how many it
// published once the server has stored them all.
func (s *Store) publishChunks(ctx context.Context, subject string, src io.Reader) (uint32, error) {
	// A buffer is reused only after the server stored the chunk it held:
	// the client may publish a message again on a retry.
	var bufs [putWindow][]byte
	var inFlight []jetstream.PubAckFuture
	defer func() {
		// On failure, let every published chunk land before the caller
		// purges, or a late one would escape the purge; one request's
		// time for all of them. One that lands later still is purged by
		// a later Put: the caller records the version as a leftover if its
		// purge fails.
		if len(inFlight) == 0 {
			return
		}
		drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.requestTimeout)
		defer cancel()
		for _, f := range inFlight {
			s.awaitAck(drain, f)
		}
	}()
	var chunks uint32
	for {
		if len(inFlight) == putWindow {
			if err := s.awaitAck(ctx, inFlight[0]); err != nil {
				return 0, err
			}
			inFlight = inFlight[1:]
		}
		slot := chunks % putWindow
		if bufs[slot] == nil {
			bufs[slot] = make([]byte, s.chunkSize)
		}
		n, err := io.ReadFull(src, bufs[slot])
		if n > 0 {
			f, perr := s.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: bufs[slot][:n]})
			if perr != nil {
				return 0, perr
			}
			inFlight = append(inFlight, f)
			chunks++
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	for len(inFlight) > 0 {
		if err := s.awaitAck(ctx, inFlight[0]); err != nil {
			return 0, err
		}
		inFlight = inFlight[1:]
	}
	return chunks, nil
}

// awaitAck waits for the server to store a chunk, at most one request's
// time. A chunk published while the connection was down is acknowledged
// only after the reconnect, or fails with nats.ErrDisconnected.
func (s *Store) awaitAck(ctx context.Context, f jetstream.PubAckFuture) error {
	timer := time.NewTimer(s.requestTimeout)
	defer timer.Stop()
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		return integrity.ContextErr(ctx)
	case <-timer.C:
		return &transient.TimeoutError{Op: "jetstream chunk acknowledgement", After: s.requestTimeout}
	}
}

// commit publishes the metadata message, which makes the version current.
func (s *Store) commit(ctx context.Context, info *jetstream.ObjectInfo) error {
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(metaSubject(s.bucket, info.Name))
	msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	msg.Data = data
	// Once all chunks are stored the commit is one message; a cancellation
	// racing it would leave us unsure whether it landed.
	cctx := context.WithoutCancel(ctx)
	_, err = transient.Call(cctx, "jetstream request", s.requestTimeout, func(ctx context.Context) (*jetstream.PubAck, error) {
		return s.js.PublishMsg(ctx, msg)
	})
	if err == nil {
		return nil
	}
	// A lost acknowledgement does not mean a lost message. The lookup goes
	// out after the commit on the same connection, so it sees the commit
	// if the server ever stored it.
	cur, gerr := s.info(cctx, info.Name)
	switch {
	case gerr == nil && cur.NUID == info.NUID:
		return nil
	case gerr == nil || errors.Is(gerr, jetstream.ErrObjectNotFound):
		s.purgeChunks(ctx, info.Name, info.NUID)
	default:
		// Unknown: purging could destroy a committed object. A later
		// Put purges the chunks if the version turns out not current.
		s.leftovers.add(info.Name, info.NUID)
	}
	return fmt.Errorf("commit: %w", err)
}

// purgeChunks removes the chunks of a version of key that is not current,
// also after ctx is done. If that fails they are left for a later Put to
// purge.
func (s *Store) purgeChunks(ctx context.Context, key, nuid string) {
	_, err := transient.Call(context.WithoutCancel(ctx), "jetstream request", s.requestTimeout, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.stream.Purge(ctx, jetstream.WithPurgeSubject(chunkSubject(s.bucket, nuid)))
	})
	if err != nil {
		s.leftovers.add(key, nuid)
	}
}

func metaSubject(bucket, key string) string {
	return "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(key))
}
