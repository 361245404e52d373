package worker

import (
	"context"
	"errors"
	"time"

	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// dispatch is the worker's only consumer of tasks. Whenever slots are free
// it asks the consumers for about that many tasks, highest priority first
// (FetchNoWait: what is there now, never a pull left waiting), so no task
// waits in this process for a slot: its AckWait clock starts when it can
// run, and a task published at priority 3 is taken before any priority-0
// task still queued, however long the queue.
//
// When every consumer is empty it waits without polling JetStream: it
// subscribes (core NATS) to the bells of its pipelines' task subjects
// (protocol.BellSubject), which a coordinator rings once a task message is
// stored, looks once more (the subscription is in place before that look,
// and a bell it missed belongs to a task already stored, which the look
// finds) and sleeps until woken or until IdlePoll passes (redeliveries
// come without a bell). It unsubscribes as soon as it finds work, so a
// busy worker is not rung for every task message.
//
// A look can still come too early: JetStream tells a consumer about a
// stored message asynchronously (after the PubAck, so possibly after the
// bell), and a no-wait fetch that arrives first is told there is nothing.
// So the first wait after arming, and the wait after a bell whose look
// found nothing, last settleDelay, not IdlePoll: such a task waits that
// long, not a whole idle poll.
func (w *Worker) dispatch(ctx context.Context) {
	defer w.fetchLoop.Done()
	var bells []*nats.Subscription
	disarm := func() {
		for _, s := range bells {
			s.Unsubscribe()
		}
		bells = nil
	}
	defer disarm()
	idle := time.NewTimer(w.cfg.IdlePoll)
	idle.Stop()
	failures, rotation := 0, 0
	settle := false // the next idle wait is settleDelay, not IdlePoll
	// only, when set, limits the next looks to the consumers whose bells
	// rang: an idle worker does not visit every consumer of every hosted
	// pipeline and priority for each task message published.
	var only map[*source]bool
	// perMsg estimates the tasks a message brings (batches hold several),
	// so that a fetch asks for about as many tasks as there are free slots.
	perMsg := 1.0
	for {
		free, ok := w.slots.room(ctx)
		if !ok {
			return
		}
		n := max(1, int(float64(free)/perMsg))
		got, tasks, err := w.fetch(ctx, n, rotation, only)
		rotation++
		if got > 0 {
			perMsg = 0.8*perMsg + 0.2*float64(tasks)/float64(got)
		}
		if got > 0 || !settle {
			// Busy again, or a settle look done: look everywhere next.
			only = nil
		}
		switch {
		case got > 0:
			disarm()
			failures = 0
			continue
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			if failures == 1 {
				w.log.Warn().Err(err).Msg("task_fetch_failed")
			}
			if !sleep(ctx, min(w.cfg.IdlePoll, time.Duration(failures)*50*time.Millisecond)) {
				return
			}
			continue
		}
		if failures > 0 {
			w.log.Info().Int("failures", failures).Msg("task_fetch_recovered")
			failures = 0
		}
		wait := w.cfg.IdlePoll
		if settle {
			// Just armed, or rung for a task not found: look again soon.
			wait, settle = min(wait, settleDelay), false
		}
		if bells == nil {
			bells = w.arm()
			if bells != nil {
				settle = true
				continue // look once more, now that a bell would wake us
			}
		}
		idle.Reset(wait)
		select {
		case <-w.wake:
			settle = true
			only = w.takeRung()
		case <-idle.C:
		case <-ctx.Done():
			return
		}
		idle.Stop()
	}
}

// settleDelay is how soon an idle worker looks again after a look that may
// have come before JetStream had told the consumer about a stored task.
const settleDelay = 20 * time.Millisecond

// fetch takes up to n task messages, highest priority first, and launches
// each. Consumers of one priority are visited from a rotating start, so no
// pipeline starves another. It returns how many messages it launched, how
// many tasks they hold, and the last error it met. With only, it visits
// only those consumers.
func (w *Worker) fetch(ctx context.Context, n, rotation int, only map[*source]bool) (got, tasks int, err error) {
	for prio := protocol.MaxPriority; prio >= 0; prio-- {
		srcs := w.sources[prio]
		for i := range srcs {
			if got == n || ctx.Err() != nil {
				return got, tasks, err
			}
			s := srcs[(rotation+i)%len(srcs)]
			if only != nil && !only[s] {
				continue
			}
			batch, ferr := s.c.FetchNoWait(n - got)
			if ferr == nil {
				for m := range batch.Messages() {
					tasks += w.launch(s, m)
					got++
				}
				ferr = batch.Error()
			}
			if ferr != nil {
				err = ferr
				if errors.Is(ferr, nats.ErrNoResponders) {
					// The consumer is gone (deleted, or its stream
					// recreated): bind it again.
					w.rebind(ctx, s)
				}
			}
		}
	}
	return got, tasks, err
}

// rebind creates s's consumer again. Failures are left to the next fetch.
func (w *Worker) rebind(ctx context.Context, s *source) {
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := fleet.Ensure(ctx, w.js); err != nil {
		return
	}
	c, err := fleet.TaskConsumer(ctx, w.js, s.h.name, s.priority, w.cfg.AckWait)
	if err != nil {
		return
	}
	s.c = c
	w.log.Info().Str("consumer", fleet.ConsumerName(s.h.name, s.priority)).Msg("task_consumer_rebound")
}

// launch runs one fetched message on its own goroutine and returns how
// many tasks it holds (from its header; decoding corrects it). Each task
// takes a slot before it starts.
func (w *Worker) launch(s *source, m jetstream.Msg) int {
	k := taskCount(m)
	w.slots.expect(k)
	w.tasks.Add(1)
	w.pool.Go(func() {
		defer w.tasks.Done()
		w.run(s, m, k)
	})
	return k
}

// arm subscribes to the bells of the hosted pipelines' task subjects; a
// bell records its consumer as rung and rings w.wake. It returns nil if it
// could not subscribe (the idle poll still finds the work).
func (w *Worker) arm() []*nats.Subscription {
	ring := func(m *nats.Msg) {
		w.rungMu.Lock()
		if s := w.bells[m.Subject]; s != nil && !w.rungAll {
			w.rung[s] = true
		} else {
			w.rungAll = true // a bell of no consumer we know: look everywhere
		}
		w.rungMu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	subs := make([]*nats.Subscription, 0, len(w.hosted))
	for _, h := range w.hosted {
		s, err := w.cfg.Conn.Subscribe(protocol.BellFilter(h.name), ring)
		if err != nil {
			for _, s := range subs {
				s.Unsubscribe()
			}
			w.log.Debug().Err(err).Msg("task_doorbell_failed")
			return nil
		}
		subs = append(subs, s)
	}
	return subs
}

// takeRung returns the consumers rung since the last call, or nil if the
// next look should visit every consumer.
func (w *Worker) takeRung() map[*source]bool {
	w.rungMu.Lock()
	defer w.rungMu.Unlock()
	rung, all := w.rung, w.rungAll
	w.rung, w.rungAll = make(map[*source]bool), false
	if all || len(rung) == 0 {
		return nil
	}
	return rung
}

// sleep waits for d or ctx, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
