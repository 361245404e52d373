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

	"github.com/flowstone-go/flowstone/objectstore/internal/integrity"
)

const (
	// putWindow is how many chunks a Put has in flight: enough to keep the
	// server busy, and the bound on a Put's memory, in chunks.
	putWindow = 8
	// ackTimeout bounds the wait for the server to store one chunk.
	ackTimeout = 30 * time.Second
	// cleanupTimeout bounds purging a failed upload's chunks, which runs
	// even when the caller's context is done.
	cleanupTimeout = 30 * time.Second
)

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
	prev, err := s.obs.GetInfo(ctx, key, jetstream.GetObjectInfoShowDeleted())
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
		s.purgeChunks(ctx, id)
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
		s.purgeChunks(ctx, prev.NUID)
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
		// purges, or a late one would escape the purge.
		for _, f := range inFlight {
			awaitAck(context.WithoutCancel(ctx), f)
		}
	}()
	var chunks uint32
	for {
		if len(inFlight) == putWindow {
			if err := awaitAck(ctx, inFlight[0]); err != nil {
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
		if err := awaitAck(ctx, inFlight[0]); err != nil {
			return 0, err
		}
		inFlight = inFlight[1:]
	}
	return chunks, nil
}

func awaitAck(ctx context.Context, f jetstream.PubAckFuture) error {
	timer := time.NewTimer(ackTimeout)
	defer timer.Stop()
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		return integrity.ContextErr(ctx)
	case <-timer.C:
		return fmt.Errorf("the server did not acknowledge a chunk within %v", ackTimeout)
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
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, err = s.js.PublishMsg(cctx, msg)
	if err == nil {
		return nil
	}
	// A lost acknowledgement does not mean a lost message: purge the chunks
	// only if the version did not become current.
	if cur, gerr := s.obs.GetInfo(cctx, info.Name, jetstream.GetObjectInfoShowDeleted()); gerr == nil && cur.NUID == info.NUID {
		return nil
	}
	s.purgeChunks(ctx, info.NUID)
	return fmt.Errorf("commit: %w", err)
}

// purgeChunks removes a version's chunks, also after ctx is done.
func (s *Store) purgeChunks(ctx context.Context, nuid string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	// Best effort: a failure leaves unreachable chunks, never a wrong object.
	_ = s.stream.Purge(ctx, jetstream.WithPurgeSubject(chunkSubject(s.bucket, nuid)))
}

func metaSubject(bucket, key string) string {
	return "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(key))
}
