package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats.go"
)

// publishBatch publishes body on subject as a batch message whose
// BatchHeader says count, and waits for the stream to store it.
func (e *fleetEnv) publishBatch(subject string, body []byte, count string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{protocol.BatchHeader: []string{count}}}
	if _, err := e.js.PublishMsg(ctx, msg); err != nil {
		e.t.Fatal(err)
	}
	e.ring(subject)
}

// publishTasks publishes tasks as one TaskBatch, where the coordinator
// would.
func (e *fleetEnv) publishTasks(tasks ...protocol.Task) {
	e.t.Helper()
	body, perr := protocol.EncodeTaskBatch(protocol.TaskBatch{V: protocol.Version, Tasks: tasks})
	if perr != nil {
		e.t.Fatal(perr)
	}
	e.publishBatch(protocol.TaskSubject(tasks[0].Pipeline, tasks[0].Priority), body, itoa(len(tasks)))
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noRecord fails the test if the asset/partition has a record.
func (e *fleetEnv) noRecord(pipeline, asset, partition string) {
	e.t.Helper()
	_, err := e.mats.Get(context.Background(), bridge.MaterializationKey(pipeline, asset, partition))
	if !errors.Is(err, kv.ErrNotFound) {
		e.t.Errorf("record of %s/%s/%s: err = %v, want none", pipeline, asset, partition, err)
	}
}

// Every task of a batch message is executed, recorded and completed, and
// the one message is acked: nothing stays queued or comes back.
func TestBatchTasksAreAllExecutedAndTheMessageAcked(t *testing.T) {
	e := newFleet(t)
	w := e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipelines.Bench()}, Concurrency: 8})

	const n = 40 // more tasks than slots: a batch runs at once anyway
	tasks := make([]protocol.Task, n)
	want := map[string]protocol.Task{}
	for i := range tasks {
		tasks[i] = task("bench", "noop", fmt.Sprint("p", i), 1)
		want[tasks[i].ID] = tasks[i]
	}
	e.publishTasks(tasks...)

	for range n {
		c := e.completion()
		tk, ok := want[c.TaskID]
		if !ok {
			t.Fatalf("unexpected or repeated completion %+v", c)
		}
		delete(want, c.TaskID)
		if !c.OK || c.RunID != tk.RunID || c.Partition != tk.Partition || c.Worker != w.ID() || c.Attempt != 1 {
			t.Errorf("completion = %+v %+v", c, c.Error)
		}
	}
	for _, tk := range tasks {
		if rec := e.record("bench", "noop", tk.Partition); rec.State != flowstone.StateCompleted || rec.RunID != tk.RunID || rec.Worker != w.ID() {
			t.Errorf("record of %s = %+v", tk.Partition, rec)
		}
	}
	if info := e.waitSettled("bench", 1); info.NumRedelivered != 0 || info.Delivered.Consumer != 1 {
		t.Errorf("consumer: %d message(s) delivered, %d redelivered; want the one batch delivered once",
			info.Delivered.Consumer, info.NumRedelivered)
	}
	if m := e.streamMsgs(); m != 0 {
		t.Errorf("task stream holds %d messages after the ack", m)
	}
	waitFor(t, "stats of the batch", func() bool { return w.Stats() == worker.Stats{Started: n, Succeeded: n} })
	select {
	case c := <-e.done:
		t.Errorf("a completion more than the tasks: %+v", c)
	case <-time.After(200 * time.Millisecond):
	}

	// The batch gave its slots back: single tasks still run after it.
	single := task("bench", "noop", "after", 0)
	e.publish(single)
	if c := e.completion(); !c.OK || c.TaskID != single.ID {
		t.Fatalf("completion after the batch = %+v", c)
	}
}

// A batch message that breaks the batch rules is terminated, whatever its
// header says: none of its tasks runs, none is completed or recorded, and
// the worker goes on with the next message.
func TestMalformedBatchIsTerminated(t *testing.T) {
	e := newFleet(t)
	w := e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipelines.Example()}, Concurrency: 2})
	subject := protocol.TaskSubject("example", 0)
	raw := func(v any) []byte { return mustMarshal(t, v) }

	// Two tasks with the same id (the header claims the most tasks a
	// batch may hold: the slots it reserved must come back).
	dup1 := task("example", "numbers", "dup1", 0)
	dup2 := dup1
	dup2.Partition = "dup2"
	e.publishBatch(subject, raw(protocol.TaskBatch{V: protocol.Version, Tasks: []protocol.Task{dup1, dup2}}), itoa(protocol.MaxBatchItems))
	// The header on a single task's body.
	single := task("example", "numbers", "single", 0)
	body, _ := protocol.EncodeTask(single)
	e.publishBatch(subject, body, "1")
	// A batch body without the header.
	nohdr := task("example", "numbers", "nohdr", 0)
	body, _ = protocol.EncodeTaskBatch(protocol.TaskBatch{V: protocol.Version, Tasks: []protocol.Task{nohdr}})
	e.publishRaw(subject, body, "nohdr")
	// A valid batch of another pipeline on this pipeline's subject.
	other := task("sales", "numbers", "other", 0)
	body, _ = protocol.EncodeTaskBatch(protocol.TaskBatch{V: protocol.Version, Tasks: []protocol.Task{other}})
	e.publishBatch(subject, body, "1")
	// Tasks of two priorities in one batch.
	mixed1, mixed2 := task("example", "numbers", "mixed1", 0), task("example", "numbers", "mixed2", 1)
	e.publishBatch(subject, raw(protocol.TaskBatch{V: protocol.Version, Tasks: []protocol.Task{mixed1, mixed2}}), "2")
	// Not JSON, with an unreadable header.
	e.publishBatch(subject, []byte(`{"v":1,"tasks":[`), "many")

	good := task("example", "numbers", "good", 0)
	e.publish(good)
	if c := e.completion(); !c.OK || c.TaskID != good.ID {
		t.Fatalf("first completion = %+v, want the good task's", c)
	}
	if info := e.waitSettled("example", 0); info.NumRedelivered != 0 {
		t.Errorf("consumer: redelivered %d", info.NumRedelivered)
	}
	if m := e.streamMsgs(); m != 0 {
		t.Errorf("stream holds %d messages: malformed batches were not terminated", m)
	}
	for _, p := range []string{"dup1", "dup2", "single", "nohdr", "mixed1", "mixed2"} {
		e.noRecord("example", "numbers", p)
	}
	e.noRecord("sales", "numbers", "other")
	if s := w.Stats(); s.Started != 1 {
		t.Errorf("stats = %+v, want only the good task started", s)
	}
	select {
	case c := <-e.done:
		t.Errorf("a malformed batch was completed: %+v", c)
	case <-time.After(200 * time.Millisecond):
	}

	// Its slots are all free again: two tasks (Concurrency 2) run at once.
	a, b := task("example", "numbers", "a", 0), task("example", "numbers", "b", 0)
	e.publishTasks(a, b)
	for range 2 {
		if c := e.completion(); !c.OK {
			t.Fatalf("completion = %+v", c)
		}
	}
}

// counter is an asset that counts its executions per partition.
type counter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *counter) fn(ctx *flowstone.Context) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[ctx.Partition()]++
	return ctx.Partition(), nil
}

func (c *counter) count(p string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[p]
}

// mixedBatch is a pipeline "mixed" with an asset "hold" that blocks on a
// gate and an asset "count" that counts its executions, a first worker
// with the given concurrency already started on it, and the tasks of one
// run: hold for partition "x", then count for each of parts.
type mixedBatch struct {
	g        *gate
	cnt      *counter
	pipeline func() *flowstone.Pipeline
	first    *worker.Worker
	tasks    []protocol.Task
}

func newMixedBatch(t *testing.T, e *fleetEnv, concurrency int, parts ...string) *mixedBatch {
	t.Helper()
	mb := &mixedBatch{g: newGate(), cnt: &counter{calls: map[string]int{}}}
	mb.pipeline = func() *flowstone.Pipeline {
		return flowstone.MustPipeline("mixed", flowstone.Asset("hold", mb.g.fn), flowstone.Asset("count", mb.cnt.fn))
	}
	mb.first = e.newWorker(worker.Config{Pipelines: []*flowstone.Pipeline{mb.pipeline()}, Concurrency: concurrency})
	if err := mb.first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	hold := task("mixed", "hold", "x", 0)
	mb.tasks = []protocol.Task{hold}
	for _, p := range parts {
		tk := task("mixed", "count", p, 0)
		tk.RunID, tk.ID = hold.RunID, protocol.TaskID(hold.RunID, "count", p, 1)
		mb.tasks = append(mb.tasks, tk)
	}
	return mb
}

// A worker stopped while one task of a batch still runs hands the whole
// message back; the next worker completes the task that was cut short and
// finds the others completed in their records: they are reported again,
// not executed again.
func TestStoppedBatchIsRedeliveredWithoutRepeatingEndedTasks(t *testing.T) {
	e := newFleet(t)
	// Slots for every task: the counting tasks end while hold runs.
	mb := newMixedBatch(t, e, 4, "a", "b", "c")
	g, cnt, pipeline, first, tasks := mb.g, mb.cnt, mb.pipeline, mb.first, mb.tasks
	e.publishTasks(tasks...)
	if p := g.next(t); p != "x" {
		t.Fatalf("hold started for %q", p)
	}
	for range 3 {
		if c := e.completion(); !c.OK || c.Asset != "count" || c.Worker != first.ID() || c.Attempt != 1 {
			t.Fatalf("completion while hold runs = %+v %+v", c, c.Error)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := first.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop after the grace period = %v, want it to wrap DeadlineExceeded", err)
	}
	if rec := e.record("mixed", "hold", "x"); rec.State != flowstone.StatePending {
		t.Fatalf("record of the handed back task = %+v, want pending", rec)
	}
	select {
	case c := <-e.done:
		t.Fatalf("the stopped worker completed a task it handed back: %+v", c)
	default:
	}

	handedBack := time.Now()
	second := e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipeline()}})
	if p := g.next(t); p != "x" {
		t.Fatalf("hold started again for %q", p)
	}
	// Nak'ed, so at once: without it the batch would wait for AckWait (30s).
	if d := time.Since(handedBack); d > 10*time.Second {
		t.Fatalf("the handed back batch took %v to reach another worker", d)
	}
	g.release <- struct{}{}
	got := map[string]protocol.Completion{}
	for range 4 {
		c := e.completion()
		if _, dup := got[c.TaskID]; dup {
			t.Fatalf("two completions of %s from the redelivery", c.TaskID)
		}
		got[c.TaskID] = c
		if !c.OK || c.Worker != second.ID() || c.Attempt != 2 {
			t.Errorf("completion of the redelivered batch = %+v %+v", c, c.Error)
		}
	}
	for _, tk := range tasks {
		if _, ok := got[tk.ID]; !ok {
			t.Errorf("no completion of %s/%s from the redelivery", tk.Asset, tk.Partition)
		}
	}
	for _, p := range []string{"a", "b", "c"} {
		if n := cnt.count(p); n != 1 {
			t.Errorf("count/%s executed %d times, want once", p, n)
		}
		if rec := e.record("mixed", "count", p); rec.State != flowstone.StateCompleted || rec.Worker != first.ID() || rec.Attempt != 1 {
			t.Errorf("record of count/%s = %+v, want the first worker's", p, rec)
		}
	}
	if n := g.calls.Load(); n != 2 {
		t.Errorf("hold executed %d times, want 2 (cut short, then completed)", n)
	}
	if rec := e.record("mixed", "hold", "x"); rec.State != flowstone.StateCompleted || rec.Worker != second.ID() || rec.Attempt != 2 {
		t.Errorf("record of hold = %+v", rec)
	}
	e.waitSettled("mixed", 0)
	if m := e.streamMsgs(); m != 0 {
		t.Errorf("task stream holds %d messages after the redelivery was acked", m)
	}
}

// A batch never takes a worker past its concurrency: its tasks wait for
// slots, first come first served, all in the one delivery.
func TestBatchRespectsConcurrency(t *testing.T) {
	e := newFleet(t)
	g := newGate()
	p := flowstone.MustPipeline("gated", flowstone.Asset("a", g.fn))
	w := e.start(worker.Config{Pipelines: []*flowstone.Pipeline{p}, Concurrency: 2})
	var tasks []protocol.Task
	for i := range 10 {
		tasks = append(tasks, task("gated", "a", fmt.Sprint("p", i), 0))
	}
	e.publishTasks(tasks...)
	for i := range 10 {
		g.next(t)
		if i >= 1 {
			// Two run; let one end, so the next in line starts.
			g.release <- struct{}{}
		}
	}
	g.release <- struct{}{}
	for range 10 {
		if c := e.completion(); !c.OK || c.Attempt != 1 {
			t.Fatalf("completion = %+v", c)
		}
	}
	if peak := g.peak.Load(); peak != 2 {
		t.Errorf("peak concurrency %d with Concurrency 2", peak)
	}
	if info := e.waitSettled("gated", 0); info.NumRedelivered != 0 {
		t.Errorf("redelivered %d: the waiting tasks' message was not kept alive", info.NumRedelivered)
	}
	if s := w.Stats(); s.Succeeded != 10 {
		t.Errorf("stats = %+v", s)
	}
}

// Tasks of a batch still waiting for a slot when the worker stops never
// start there: the message goes back at once and another worker runs them.
func TestStopHandsBackTasksWaitingForASlot(t *testing.T) {
	e := newFleet(t)
	mb := newMixedBatch(t, e, 1, "a", "b")
	g, cnt, pipeline, first, tasks := mb.g, mb.cnt, mb.pipeline, mb.first, mb.tasks
	e.publishTasks(tasks...)
	if p := g.next(t); p != "x" {
		t.Fatalf("hold started for %q", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	first.Stop(ctx)
	if n := cnt.count("a") + cnt.count("b"); n != 0 {
		t.Fatalf("the stopping worker started %d tasks that were waiting for its slot", n)
	}
	e.start(worker.Config{Pipelines: []*flowstone.Pipeline{pipeline()}})
	if p := g.next(t); p != "x" {
		t.Fatalf("hold started again for %q", p)
	}
	g.release <- struct{}{}
	for range 3 {
		if c := e.completion(); !c.OK {
			t.Fatalf("completion = %+v %+v", c, c.Error)
		}
	}
	for _, p := range []string{"a", "b"} {
		if n := cnt.count(p); n != 1 {
			t.Errorf("count/%s executed %d times, want once", p, n)
		}
	}
}
