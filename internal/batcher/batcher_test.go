package batcher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/batcher"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/internal/transient/natserr"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every wait: generous for a slow machine, short of a hang.
const wait = 30 * time.Second

// env is an embedded JetStream server with a stream capturing "t.>".
type env struct {
	t      *testing.T
	js     jetstream.JetStream
	stream jetstream.Stream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(wait))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, js: js, stream: s}
}

// stored is one message of the stream.
type stored struct {
	subject string
	header  nats.Header
	data    []byte
}

// messages returns every message the stream holds, in order.
func (e *env) messages() []stored {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	info, err := e.stream.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []stored
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := e.stream.GetMsg(ctx, seq)
		if err != nil {
			e.t.Fatalf("message %d: %v", seq, err)
		}
		out = append(out, stored{subject: m.Subject, header: m.Header, data: m.Data})
	}
	if uint64(len(out)) != info.State.Msgs {
		e.t.Fatalf("read %d messages, the stream holds %d", len(out), info.State.Msgs)
	}
	return out
}

// completion returns a valid (failed) completion of pipeline whose TaskID
// is made from pipeline and i: a lone item's id is its Nats-Msg-Id, and the
// stream dedupes ids across all its subjects.
func completion(pipeline string, i int) protocol.Completion {
	now := time.Now().UTC()
	part := fmt.Sprint("p", i)
	return protocol.Completion{V: protocol.Version, TaskID: protocol.TaskID("r"+pipeline, "a", part, 1), RunID: "r" + pipeline, Pipeline: pipeline,
		Asset: "a", Partition: part, Error: &protocol.Error{Code: protocol.CodeExecutionFailed, Message: fmt.Sprint("item ", i)},
		Worker: "w1", Attempt: 1, StartedAt: now, FinishedAt: now}
}

func encode(t *testing.T, c protocol.Completion) []byte {
	t.Helper()
	b, err := protocol.EncodeCompletion(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitCounts waits for p.Counts() to reach the given values: Counts is
// updated once the items of a message have been answered, so it may trail
// the last Publish to return by a moment.
func waitCounts(t *testing.T, p *batcher.Publisher, msgs, items uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, i := p.Counts()
		if m == msgs && i == items {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Counts() = %d messages, %d items; want %d, %d", m, i, msgs, items)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An item published while nothing is in flight goes out at once, as the
// plain message it would be without the batcher: its id dedupes it.
func TestLonePublishIsAPlainMessage(t *testing.T) {
	e := newEnv(t)
	p := batcher.New(e.js, protocol.JoinCompletionBatch)
	c := completion("pa", 1)
	body := encode(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := p.Publish(ctx, "t.a", c.TaskID+".1", body); err != nil {
		t.Fatal(err)
	}
	msgs := e.messages()
	if len(msgs) != 1 {
		t.Fatalf("stream holds %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.subject != "t.a" || string(m.data) != string(body) {
		t.Fatalf("stored %s %s, want t.a %s", m.subject, m.data, body)
	}
	if got := m.header.Get(jetstream.MsgIDHeader); got != c.TaskID+".1" {
		t.Errorf("Nats-Msg-Id = %q, want %q", got, c.TaskID+".1")
	}
	if _, ok := m.header[protocol.BatchHeader]; ok {
		t.Errorf("a lone item carries the batch header %q", m.header.Get(protocol.BatchHeader))
	}
	waitCounts(t, p, 1, 1)

	// The same id again is a duplicate: JetStream keeps one copy.
	if err := p.Publish(ctx, "t.a", c.TaskID+".1", body); err != nil {
		t.Fatal(err)
	}
	if n := len(e.messages()); n != 1 {
		t.Errorf("a republished lone item was stored again: %d messages", n)
	}
}

// Under concurrent load the publishes of a subject coalesce into batch
// messages; every item is stored exactly once, in a message of its own
// subject, and Counts tells how many messages carried how many items.
func TestConcurrentPublishesFormBatches(t *testing.T) {
	e := newEnv(t)
	p := batcher.New(e.js, protocol.JoinCompletionBatch)
	var storedMu sync.Mutex
	stored := map[string]int{} // Stored calls per subject
	p.Stored = func(subject string) {
		storedMu.Lock()
		stored[subject]++
		storedMu.Unlock()
	}
	const n = 2000
	subjects := map[string]string{"pa": "t.a", "pb": "t.b"}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for pipeline, subject := range subjects {
		for i := range n {
			wg.Go(func() {
				c := completion(pipeline, i)
				body, perr := protocol.EncodeCompletion(c)
				if perr != nil {
					errs <- perr
					return
				}
				if err := p.Publish(ctx, subject, c.TaskID+".1", body); err != nil {
					errs <- fmt.Errorf("publish %s %d: %w", pipeline, i, err)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	msgs := e.messages()
	seen := map[string]int{}
	batches, biggest := 0, 0
	for _, m := range msgs {
		batch := m.header.Get(protocol.BatchHeader) != ""
		comps, perr := protocol.DecodeCompletions(m.data, batch)
		if perr != nil {
			t.Fatalf("message on %s does not decode (batch %v): %v", m.subject, batch, perr)
		}
		if batch {
			batches++
			if got := m.header.Get(protocol.BatchHeader); got != fmt.Sprint(len(comps)) {
				t.Errorf("batch header says %s items, the batch holds %d", got, len(comps))
			}
			if id := m.header.Get(jetstream.MsgIDHeader); id != "" {
				t.Errorf("a batch carries the message id %q of one of its items", id)
			}
		} else if id, want := m.header.Get(jetstream.MsgIDHeader), comps[0].TaskID+".1"; id != want {
			t.Errorf("lone item Nats-Msg-Id = %q, want %q", id, want)
		}
		biggest = max(biggest, len(comps))
		for _, c := range comps {
			if subjects[c.Pipeline] != m.subject {
				t.Errorf("completion of %s stored on %s", c.Pipeline, m.subject)
			}
			seen[c.Pipeline+"/"+c.TaskID]++
		}
	}
	for pipeline := range subjects {
		for i := range n {
			if k := seen[pipeline+"/"+completion(pipeline, i).TaskID]; k != 1 {
				t.Errorf("item %s %d stored %d times", pipeline, i, k)
			}
		}
	}
	if len(seen) != 2*n {
		t.Errorf("%d distinct items stored, want %d", len(seen), 2*n)
	}
	if batches == 0 || len(msgs) >= 2*n {
		t.Errorf("%d items went out in %d messages (%d batches): no batching under load", 2*n, len(msgs), batches)
	}
	if biggest > protocol.MaxBatchItems {
		t.Errorf("a batch holds %d items, over MaxBatchItems", biggest)
	}
	t.Logf("%d items in %d messages (%d batches, largest %d items)", 2*n, len(msgs), batches, biggest)
	waitCounts(t, p, uint64(len(msgs)), 2*n)
	// Every Publish has returned, so every Stored call has been made: one
	// per stored message.
	perSubject := map[string]int{}
	for _, m := range msgs {
		perSubject[m.subject]++
	}
	storedMu.Lock()
	defer storedMu.Unlock()
	for _, subject := range subjects {
		if stored[subject] != perSubject[subject] {
			t.Errorf("Stored called %d times for %s, which holds %d messages", stored[subject], subject, perSubject[subject])
		}
	}
}

// Large items fill batches up to the message size limit, never past it:
// a receiver refuses a message over protocol.MaxMessageBytes.
func TestBatchesRespectTheSizeLimits(t *testing.T) {
	e := newEnv(t)
	// Raw items with a join of the batcher's kind: the body is what the
	// receiver measures.
	p := batcher.New(e.js, protocol.JoinCompletionBatch)
	const n, size = 60, 100 << 10
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			item := fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("x", size-len(fmt.Sprintf(`{"i":%d,"pad":""}`, i))))
			if err := p.Publish(ctx, "t.big", fmt.Sprint("big", i), []byte(item)); err != nil {
				errs <- fmt.Errorf("publish %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	seen := map[int]int{}
	batches, largest := 0, 0
	for _, m := range e.messages() {
		largest = max(largest, len(m.data))
		if len(m.data) > protocol.MaxMessageBytes {
			t.Errorf("a message of %d bytes exceeds MaxMessageBytes (%d)", len(m.data), protocol.MaxMessageBytes)
		}
		var items []struct {
			I int `json:"i"`
		}
		if m.header.Get(protocol.BatchHeader) != "" {
			batches++
			var b struct {
				V           int               `json:"v"`
				Completions []json.RawMessage `json:"completions"`
			}
			if err := json.Unmarshal(m.data, &b); err != nil {
				t.Fatalf("batch of %d bytes is not JSON: %v", len(m.data), err)
			}
			for _, raw := range b.Completions {
				var it struct {
					I int `json:"i"`
				}
				if err := json.Unmarshal(raw, &it); err != nil {
					t.Fatal(err)
				}
				items = append(items, it)
			}
		} else {
			var it struct {
				I int `json:"i"`
			}
			if err := json.Unmarshal(m.data, &it); err != nil {
				t.Fatal(err)
			}
			items = append(items, it)
		}
		if len(items) > 10 {
			t.Errorf("a message holds %d items of %d bytes", len(items), size)
		}
		for _, it := range items {
			seen[it.I]++
		}
	}
	for i := range n {
		if seen[i] != 1 {
			t.Errorf("item %d stored %d times", i, seen[i])
		}
	}
	if batches == 0 {
		t.Errorf("no batch formed from %d concurrent publishes", n)
	}
	t.Logf("%d batches, the largest message %d bytes", batches, largest)
}

// A batch filled up to protocol.MaxMessageBytes must still fit the server's
// max_payload (by default also 1 MiB), which counts the headers too.
func TestFullBatchFitsTheServerPayloadLimit(t *testing.T) {
	e := newEnv(t)
	p := batcher.New(e.js, protocol.JoinCompletionBatch)
	// Two items whose joined batch is exactly MaxMessageBytes.
	half := (protocol.MaxMessageBytes - protocol.BatchBytes(2, 0)) / 2
	sizes := []int{half, protocol.MaxMessageBytes - protocol.BatchBytes(2, 0) - half}
	if protocol.BatchBytes(2, sizes[0]+sizes[1]) != protocol.MaxMessageBytes {
		t.Fatal("miscomputed item sizes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// Many publishes at once, so that pairs of them travel as batches of
	// exactly MaxMessageBytes.
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			item := fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("x", sizes[i%2]-len(fmt.Sprintf(`{"i":%d,"pad":""}`, i))))
			if err := p.Publish(ctx, "t.full", fmt.Sprint("full", i), []byte(item)); err != nil {
				errs <- fmt.Errorf("publish %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A caller that gives up gets its context's error at once.
func TestPublishReturnsTheContextError(t *testing.T) {
	e := newEnv(t)
	p := batcher.New(e.js, protocol.JoinCompletionBatch)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Publish(ctx, "t.a", "gone", []byte(`{"i":1}`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled context = %v, want context.Canceled", err)
	}
	deadlined, cancel2 := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel2()
	<-deadlined.Done()
	if err := p.Publish(deadlined, "t.a", "late", []byte(`{"i":2}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish past its deadline = %v, want context.DeadlineExceeded", err)
	}
	// The subject's queue is not left blocked by the callers that left.
	live, cancel3 := context.WithTimeout(context.Background(), wait)
	defer cancel3()
	if err := p.Publish(live, "t.a", "next", []byte(`{"i":3}`)); err != nil {
		t.Fatalf("Publish after abandoned ones = %v", err)
	}
	// "It may still be published": the abandoned items were queued and
	// went out; none is lost silently or stored twice.
	waitCounts(t, p, 3, 3)
	if n := len(e.messages()); n != 3 {
		t.Errorf("stream holds %d messages, want 3", n)
	}
}

// When JetStream refuses a batch, every item in it learns of it: no caller
// believes its item stored when it is not.
func TestPublishErrorReachesEveryItem(t *testing.T) {
	e := newEnv(t)
	p := batcher.New(e.js, protocol.JoinCompletionBatch)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			// No stream captures "nostream.x": no responders.
			errs <- p.Publish(ctx, "nostream.x", fmt.Sprint("id", i), []byte(fmt.Sprintf(`{"i":%d}`, i)))
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err == nil {
			t.Error("Publish to a subject without a stream returned nil")
			continue
		}
		if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("Publish error = %v, want no responders", err)
		}
		failed++
	}
	msgs, items := p.Counts()
	t.Logf("%d failed items; Counts: %d messages, %d items", failed, msgs, items)
	if msgs >= n {
		t.Errorf("%d items in %d messages: no batch formed, so no batch error was seen", n, msgs)
	}
	// The publisher still works for other subjects, and for this one.
	if err := p.Publish(ctx, "t.ok", "ok", []byte(`{"i":0}`)); err != nil {
		t.Fatalf("Publish after failures = %v", err)
	}
	if err := p.Publish(ctx, "nostream.x", "again", []byte(`{"i":0}`)); err == nil {
		t.Fatal("Publish to a subject without a stream returned nil")
	}
}

// A publish whose acknowledgement never comes (here: a plain subscriber,
// not a stream, takes the subject and never answers) must not hold the
// subject's in-flight slots for ever, or every later item of the subject
// queues behind it. With a publish-async timeout on the JetStream context
// (the worker sets one) the publisher recovers.
func TestLostAcksDoNotWedgeTheSubject(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
	}{
		{"with a publish-async timeout (worker)", 300 * time.Millisecond},
		{"without one (coordinator)", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Server(t)
			nc := natstest.Connect(t, srv)
			var opts []jetstream.JetStreamOpt
			if tc.timeout > 0 {
				opts = append(opts, jetstream.WithPublishAsyncTimeout(tc.timeout))
			}
			js, err := jetstream.New(nc, opts...)
			if err != nil {
				t.Fatal(err)
			}
			silent, err := natstest.Connect(t, srv).SubscribeSync("u.silent")
			if err != nil {
				t.Fatal(err)
			}
			p := batcher.New(js, protocol.JoinCompletionBatch)
			if tc.timeout == 0 {
				// The publisher's own bound (AckTimeout), shortened: the
				// lost publishes fail with it, their senders done.
				batcher.SetAckTimeout(p, 300*time.Millisecond)
			}
			for i := range batcher.MaxInFlight {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := p.Publish(ctx, "u.silent", fmt.Sprint("lost", i), []byte(`{"i":0}`))
				cancel()
				if err == nil {
					t.Fatal("a publish nobody acknowledged returned nil")
				}
				// Worth a retry: callers (the coordinator's dispatcher)
				// publish again, as a stream electing a leader acks late.
				if !natserr.Transient(err) {
					t.Fatalf("a publish nobody acknowledged failed with %v, which is not transient", err)
				}
			}
			silent.Unsubscribe()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "U", Subjects: []string{"u.>"}, Storage: jetstream.MemoryStorage}); err != nil {
				t.Fatal(err)
			}
			ctx5, cancel5 := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel5()
			if err := p.Publish(ctx5, "u.silent", "next", []byte(`{"i":1}`)); err != nil {
				t.Fatalf("Publish once the stream exists = %v: the subject is wedged by the lost acks", err)
			}
		})
	}
}

// Stop lets every item taken be stored before it returns, and Publish
// after it refuses.
func TestStopDrainsWhatWasTaken(t *testing.T) {
	e := newEnv(t)
	p := batcher.New(e.js, protocol.JoinCompletionBatch)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- p.Publish(context.Background(), "t.a", fmt.Sprint("id", i), encode(t, completion("a", i)))
		})
	}
	wg.Wait() // every item taken
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if _, items := p.Counts(); items != n {
		t.Errorf("Counts after Stop: %d items, want %d", items, n)
	}
	if err := p.Publish(context.Background(), "t.a", "late", encode(t, completion("a", n))); !errors.Is(err, batcher.ErrStopped) {
		t.Fatalf("Publish after Stop = %v, want ErrStopped", err)
	}
}

// A Stop whose context ends while an acknowledgement is still awaited
// gives the item up (its Publish returns ErrStopped) and returns once the
// sending goroutine has: none outlives Stop (the leak check in TestMain).
func TestStopGivesUpUnacknowledgedItems(t *testing.T) {
	srv := natstest.Server(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	silent, err := natstest.Connect(t, srv).SubscribeSync("u.silent")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Unsubscribe()
	p := batcher.New(js, protocol.JoinCompletionBatch)
	published := make(chan error, 1)
	go func() { published <- p.Publish(context.Background(), "u.silent", "lost", []byte(`{"i":0}`)) }()
	// The message reached the server, and its acknowledgement never comes.
	if _, err := silent.NextMsg(wait); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop = %v, want it to wrap context.Canceled", err)
	}
	select {
	case err := <-published:
		if !errors.Is(err, batcher.ErrStopped) {
			t.Fatalf("Publish of a given up item = %v, want ErrStopped", err)
		}
	case <-time.After(wait):
		t.Fatal("Publish did not return after Stop gave its item up")
	}
}
