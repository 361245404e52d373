// Package sensors holds FlowStone's bundled sensors (see
// flowstone.Sensor): Objects, which runs an asset for each new object
// under a prefix of an object store (S3 or a JetStream object store), and
// Stream, which runs an asset for each new message of a NATS JetStream
// stream. Declare them on a pipeline with Pipeline.Automate like any
// sensor; on a fleet, the workers hosting the pipeline evaluate them, so
// the store or stream they read must be reachable from the workers.
package sensors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go/jetstream"
)

// BatchDefault is how many objects or messages one evaluation takes at
// most unless a sensor's Batch says otherwise; the rest come at the next
// evaluations.
const BatchDefault = 100

// Lister lists object keys, for Objects.
type Lister interface {
	// List returns the keys that start with prefix and sort after after
	// (all of them for ""), in lexical order, at most limit of them.
	List(ctx context.Context, prefix, after string, limit int) ([]string, error)
}

// ObjectsConfig configures Objects.
type ObjectsConfig struct {
	// Lister lists the store's keys: S3Lister or ObjectStoreLister.
	// Required.
	Lister Lister
	// Prefix selects the keys ("landing/orders/"); "" is every key.
	Prefix string
	// Asset is the asset to run for each new object. Required.
	Asset string
	// Partition maps an object's key to the partition to run; ok false
	// skips the object. Nil runs DefaultPartition for each.
	Partition func(key string) (partition string, ok bool)
	// Batch is the most objects one evaluation takes. Defaults to
	// BatchDefault.
	Batch int
}

// Objects is a sensor that runs cfg.Asset once for each new object under
// cfg.Prefix, every interval. Its cursor is the last key it has seen, and
// keys are listed in lexical order after it: it suits stores whose new
// keys sort after the old ones (names that begin with a date or a
// timestamp, sequence numbers of a fixed width); a new key that sorts
// before the cursor is never seen. Each object's run key is its key, so an
// object is run once even if an evaluation is repeated.
func Objects(name string, interval time.Duration, cfg ObjectsConfig, opts ...flowstone.SensorOption) flowstone.SensorDef {
	batch := cmp.Or(cfg.Batch, BatchDefault)
	return flowstone.Sensor(name, interval, func(c *flowstone.SensorContext, cursor string) (flowstone.SensorResult, error) {
		if cfg.Lister == nil || cfg.Asset == "" {
			return flowstone.SensorResult{}, errors.New("sensors.Objects: ObjectsConfig needs a Lister and an Asset")
		}
		after := cursor
		if after == "" || !strings.HasPrefix(after, cfg.Prefix) {
			after = ""
		}
		keys, err := cfg.Lister.List(c.Context(), cfg.Prefix, after, batch)
		if err != nil {
			return flowstone.SensorResult{}, fmt.Errorf("list %q after %q: %w", cfg.Prefix, after, err)
		}
		res := flowstone.SensorResult{Cursor: cursor}
		for _, k := range keys {
			res.Cursor = k
			part := flowstone.DefaultPartition
			if cfg.Partition != nil {
				p, ok := cfg.Partition(k)
				if !ok {
					continue
				}
				part = p
			}
			res.Runs = append(res.Runs, flowstone.SensorRun{Asset: cfg.Asset, Partition: part, RunKey: k})
		}
		return res, nil
	}, opts...)
}

// S3Lister lists the keys of an S3 bucket with client (ListObjectsV2 and
// StartAfter: the listing starts at the cursor, however many keys the
// bucket holds).
func S3Lister(client *minio.Client, bucket string) Lister { return s3Lister{client, bucket} }

type s3Lister struct {
	c      *minio.Client
	bucket string
}

func (l s3Lister) List(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listing's goroutine
	var out []string
	for o := range l.c.ListObjects(ctx, l.bucket, minio.ListObjectsOptions{Prefix: prefix, StartAfter: after, Recursive: true, MaxKeys: limit}) {
		if o.Err != nil {
			return nil, o.Err
		}
		out = append(out, o.Key)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// ObjectStoreLister lists the object names of a JetStream object store.
// The store lists every name each time: keep it to stores of thousands of
// objects, not millions.
func ObjectStoreLister(store jetstream.ObjectStore) Lister { return objectStoreLister{store} }

type objectStoreLister struct{ s jetstream.ObjectStore }

func (l objectStoreLister) List(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	infos, err := l.s.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, i := range infos {
		if !i.Deleted && strings.HasPrefix(i.Name, prefix) && i.Name > after {
			out = append(out, i.Name)
		}
	}
	slices.Sort(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// StreamConfig configures Stream.
type StreamConfig struct {
	// JetStream is the JetStream context to read with. Required.
	JetStream jetstream.JetStream
	// Stream names the stream. Required.
	Stream string
	// Subject filters its messages ("" is every subject).
	Subject string
	// Asset is the asset to run for each new message. Required.
	Asset string
	// Partition maps a message to the partition to run; ok false skips
	// it. Nil runs DefaultPartition for each.
	Partition func(subject string, data []byte) (partition string, ok bool)
	// Batch is the most messages one evaluation takes. Defaults to
	// BatchDefault.
	Batch int
	// Wait is how long an evaluation waits for messages. Defaults to one
	// second.
	Wait time.Duration
}

// Stream is a sensor that runs cfg.Asset once for each new message of a
// stream (on cfg.Subject), every interval. Its cursor is the stream
// sequence of the last message it has seen; the first evaluation starts
// at the stream's first message. Each message's run key is its stream
// and sequence, so a message is run once even if an evaluation is
// repeated. Messages the stream has dropped before they were seen
// (limits, age) are skipped.
func Stream(name string, interval time.Duration, cfg StreamConfig, opts ...flowstone.SensorOption) flowstone.SensorDef {
	batch := cmp.Or(cfg.Batch, BatchDefault)
	wait := cmp.Or(cfg.Wait, time.Second)
	return flowstone.Sensor(name, interval, func(c *flowstone.SensorContext, cursor string) (flowstone.SensorResult, error) {
		if cfg.JetStream == nil || cfg.Stream == "" || cfg.Asset == "" {
			return flowstone.SensorResult{}, errors.New("sensors.Stream: StreamConfig needs JetStream, Stream and Asset")
		}
		var seq uint64
		if cursor != "" {
			var err error
			if seq, err = strconv.ParseUint(cursor, 10, 64); err != nil {
				return flowstone.SensorResult{}, fmt.Errorf("cursor %q is not a stream sequence", cursor)
			}
		}
		occ := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq + 1}
		if cfg.Subject != "" {
			occ.FilterSubjects = []string{cfg.Subject}
		}
		cons, err := cfg.JetStream.OrderedConsumer(c.Context(), cfg.Stream, occ)
		if err != nil {
			return flowstone.SensorResult{}, fmt.Errorf("read stream %s: %w", cfg.Stream, err)
		}
		res := flowstone.SensorResult{Cursor: cursor}
		if pending := pendingOf(c.Context(), cons); pending == 0 {
			return res, nil
		}
		msgs, err := cons.Fetch(batch, jetstream.FetchMaxWait(wait))
		if err != nil {
			return flowstone.SensorResult{}, fmt.Errorf("read stream %s: %w", cfg.Stream, err)
		}
		for m := range msgs.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				return flowstone.SensorResult{}, err
			}
			res.Cursor = strconv.FormatUint(meta.Sequence.Stream, 10)
			part := flowstone.DefaultPartition
			if cfg.Partition != nil {
				p, ok := cfg.Partition(m.Subject(), m.Data())
				if !ok {
					continue
				}
				part = p
			}
			res.Runs = append(res.Runs, flowstone.SensorRun{Asset: cfg.Asset, Partition: part, RunKey: cfg.Stream + ":" + res.Cursor})
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return flowstone.SensorResult{}, fmt.Errorf("read stream %s: %w", cfg.Stream, err)
		}
		return res, nil
	}, opts...)
}

// pendingOf returns how many messages the consumer has left, or -1 if
// it cannot tell: an evaluation with nothing new returns at once instead
// of waiting out a fetch.
func pendingOf(ctx context.Context, cons jetstream.Consumer) int64 {
	info, err := cons.Info(ctx)
	if err != nil {
		return -1
	}
	return int64(info.NumPending)
}
