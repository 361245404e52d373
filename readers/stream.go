package readers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/nats-io/nats.go/jetstream"
)

// streamFetchWait bounds one fetch of a stream's messages.
const streamFetchWait = 5 * time.Second

// Stream reads the messages of a JetStream stream (those on subject, or
// every one for ""), from the first, each message's data being an item:
// the data must be a valid item key (1 to 1,024 bytes of UTF-8). Its
// checkpoint is the stream sequence of the last message read; it reads
// what the stream held when the scatter opened it, up to its last
// message then.
func Stream(js jetstream.JetStream, stream, subject string) flowstone.ItemReader {
	return &streamReader{js: js, stream: stream, subject: subject}
}

type streamReader struct {
	js      jetstream.JetStream
	stream  string
	subject string
	cons    jetstream.Consumer
	last    uint64 // the stream's last sequence when opened
	at      uint64 // the sequence read up to
}

func (r *streamReader) Open(c *flowstone.Context, checkpoint string) error {
	ctx := c.Context()
	if checkpoint != "" {
		n, err := strconv.ParseUint(checkpoint, 10, 64)
		if err != nil {
			return fmt.Errorf("readers: stream checkpoint %q is not a sequence", checkpoint)
		}
		r.at = n
	}
	st, err := r.js.Stream(ctx, r.stream)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	r.last = info.State.LastSeq
	if r.at >= r.last {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: r.at + 1}
	if r.subject != "" {
		cfg.FilterSubjects = []string{r.subject}
	}
	r.cons, err = r.js.OrderedConsumer(ctx, r.stream, cfg)
	return err
}

func (r *streamReader) Read(c *flowstone.Context, n int) ([]string, string, bool, error) {
	if r.cons == nil || r.at >= r.last {
		return nil, strconv.FormatUint(r.at, 10), true, nil
	}
	ctx, cancel := context.WithTimeout(c.Context(), streamFetchWait)
	defer cancel()
	batch, err := r.cons.Fetch(n, jetstream.FetchContext(ctx))
	if err != nil {
		return nil, "", false, err
	}
	var items []string
	done := false
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			return nil, "", false, err
		}
		if md.Sequence.Stream > r.last {
			done = true
			break
		}
		items = append(items, string(m.Data()))
		r.at = md.Sequence.Stream
		if md.NumPending == 0 || r.at >= r.last {
			done = true
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
		return nil, "", false, err
	}
	if len(items) == 0 {
		// Nothing more on the subject up to the last message.
		done = true
	}
	return items, strconv.FormatUint(r.at, 10), done, nil
}

func (r *streamReader) Close() error { return nil }
