package jskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/flowstone-go/flowstone/internal/transient/natserr"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var _ kv.PresenceChecker = (*Store)(nil)

// One direct get asks for at most presentChunkKeys subjects (the server
// answers at most 1,024 messages per request and refuses the request past
// that) in at most presentChunkBytes of request.
const (
	presentChunkKeys  = 1000
	presentChunkBytes = 256 << 10
)

// multiLastRequest is a direct get of the last message of each subject.
type multiLastRequest struct {
	MultiLast []string `json:"multi_last"`
	Batch     int      `json:"batch"`
}

// Present implements kv.PresenceChecker with batched direct gets
// ($JS.API.DIRECT.GET.<stream> with multi_last, nats-server 2.11+): one
// request per 1,000 keys, all sent at once, answered with one message per
// key that has one and an end-of-batch status. A key whose last message is
// a delete, purge or expiry marker has no value. Where the fast writer is
// not used (domains, API prefixes, mirrors) or the bucket's stream does not
// allow direct gets, it reads the keys one by one.
func (s *Store) Present(ctx context.Context, keys []string) (map[string]bool, error) {
	for _, k := range keys {
		if err := s.check(k); err != nil {
			return nil, err
		}
	}
	present := make(map[string]bool)
	if len(keys) == 0 {
		return present, nil
	}
	var info *jetstream.StreamInfo
	if s.stream != nil {
		info = s.stream.CachedInfo()
	}
	oneByOne := func() (map[string]bool, error) {
		for _, k := range keys {
			_, err := s.Get(ctx, k)
			switch {
			case err == nil:
				present[k] = true
			case !errors.Is(err, kv.ErrNotFound):
				return nil, err
			}
		}
		return present, nil
	}
	if s.fast == nil || info == nil || !info.Config.AllowDirect {
		return oneByOne()
	}
	// One request's time for all the batches: they go out at once.
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	present, err := s.presentDirect(rctx, info.Config.Name, keys, present)
	if natserr.Unanswered(err) {
		// Direct gets were turned off since the stream was looked up
		// (see rebind): look again, and read key by key.
		if _, ierr := limited(s, ctx, func(ctx context.Context) (*jetstream.StreamInfo, error) { return s.stream.Info(ctx) }); ierr == nil {
			present = make(map[string]bool)
			return oneByOne()
		}
	}
	if err != nil {
		return nil, s.mapError(ctx, "present", fmt.Sprintf("%d keys", len(keys)), err)
	}
	return present, nil
}

// presentDirect asks for keys in batched direct gets on stream.
func (s *Store) presentDirect(ctx context.Context, stream string, keys []string, present map[string]bool) (map[string]bool, error) {
	nc := s.fast.nc
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox + ".*")
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, err
	}
	api := jetstream.DefaultAPIPrefix + "DIRECT.GET." + stream
	chunks := 0
	req := multiLastRequest{}
	size := 0
	send := func() error {
		body, err := json.Marshal(req)
		if err != nil {
			return err
		}
		if err := nc.PublishRequest(api, inbox+"."+strconv.Itoa(chunks), body); err != nil {
			return err
		}
		chunks++
		req.MultiLast, req.Batch, size = nil, 0, 0
		return nil
	}
	for _, k := range keys {
		subject := s.pre + k
		if len(req.MultiLast) == presentChunkKeys || size+len(subject)+3 > presentChunkBytes {
			if err := send(); err != nil {
				return nil, err
			}
		}
		req.MultiLast = append(req.MultiLast, subject)
		req.Batch++
		size += len(subject) + 3
	}
	if err := send(); err != nil {
		return nil, err
	}
	for chunks > 0 {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, err
		}
		if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 {
			switch status {
			case "204", "404": // end of a batch; no key of a batch had one
				chunks--
				continue
			case "503":
				return nil, jetstream.ErrNoStreamResponse
			default:
				return nil, fmt.Errorf("direct get answered %s %s", status, m.Header.Get("Description"))
			}
		}
		if isMarker(m.Header) {
			continue
		}
		if key, ok := strings.CutPrefix(m.Header.Get(jetstream.SubjectHeader), s.pre); ok {
			present[key] = true
		}
	}
	return present, nil
}

// isMarker reports a KV delete or purge marker, or a server marker left by
// an expiry or purge, as nats.go's kvs.get decides.
func isMarker(h nats.Header) bool {
	if op := h.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return true
	}
	switch h.Get(jetstream.MarkerReasonHeader) {
	case "MaxAge", "Purge", "Remove":
		return true
	}
	return false
}
