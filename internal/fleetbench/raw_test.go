package fleetbench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Raw work-queue settings: the fleet's task stream and consumer, stripped
// of everything FlowStone adds.
const (
	rawStream     = "RAW_WORK"
	rawSubject    = "raw.work"
	rawConsumer   = "raw_workers"
	rawMsgBytes   = 128
	rawWindow     = 4096 // async publishes in flight before waiting for their acks
	rawPullBatch  = 512  // messages each consumer asks for at once
	rawMaxPending = 20000
)

// BenchmarkRawWorkQueue is the baseline the fleet is measured against: b.N
// 128-byte messages published asynchronously (acks awaited every
// rawWindow messages) to a WorkQueue stream on file storage, while two
// consumers, each on its own connection and both on one durable pull
// consumer, consume and ack them. The clock runs from the first publish to
// the last message consumed.
func BenchmarkRawWorkQueue(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	srv := natstest.Server(b)
	var pubErrs atomic.Int64
	js, err := jetstream.New(connect(b, srv, "raw-publisher"),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { pubErrs.Add(1) }))
	if err != nil {
		b.Fatal(err)
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: rawStream, Subjects: []string{rawSubject},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: rawConsumer,
		AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: rawMaxPending}); err != nil {
		b.Fatal(err)
	}

	var consumed, ackErrs atomic.Int64
	done := make(chan struct{})
	for _, name := range []string{"raw-consumer-1", "raw-consumer-2"} {
		cjs, err := jetstream.New(connect(b, srv, name))
		if err != nil {
			b.Fatal(err)
		}
		cons, err := cjs.Consumer(ctx, rawStream, rawConsumer)
		if err != nil {
			b.Fatal(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			if len(m.Data()) != rawMsgBytes {
				b.Errorf("message of %d bytes", len(m.Data()))
			}
			if err := m.Ack(); err != nil {
				ackErrs.Add(1)
			}
			if consumed.Add(1) == int64(b.N) {
				close(done)
			}
		}, jetstream.PullMaxMessages(rawPullBatch))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(cc.Stop)
	}

	payload := make([]byte, rawMsgBytes)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	b.ResetTimer()
	msgs := startMsgs(b, srv)
	cpu := startCPU()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := js.PublishAsync(rawSubject, payload); err != nil {
			b.Fatal(err)
		}
		if (i+1)%rawWindow == 0 || i == b.N-1 {
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				b.Fatal("async publishes not acknowledged in time")
			}
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatalf("consumed %d of %d messages in time", consumed.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu.report(b, b.N, "cpu-µs/msg")
	msgs.report(b, b.N, "msg")

	if n := pubErrs.Load(); n > 0 {
		b.Fatalf("%d publishes failed", n)
	}
	if n := ackErrs.Load(); n > 0 {
		b.Fatalf("%d acks failed", n)
	}
	if got := consumed.Load(); got != int64(b.N) {
		b.Fatalf("consumed %d messages, published %d", got, b.N)
	}
	// The acks were sent without waiting: the queue empties once the
	// server has processed them all.
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.State.Msgs == 0 {
			if info.State.LastSeq != uint64(b.N) {
				b.Fatalf("stream took %d messages, want %d", info.State.LastSeq, b.N)
			}
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("%d messages never left the work queue", info.State.Msgs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
