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
// It does not ask consumers it knows to be empty. For the whole time it
// runs it is subscribed (core NATS) to the bells of its pipelines' task
// subjects (protocol.BellSubject), which a coordinator rings once a task
// message is stored: a consumer that came up empty is asked again when its
// bell rings, or once IdlePoll has passed (tasks that come back without a
// bell: redeliveries, a lost bell). So a busy worker hosting many
// pipelines does not send a fetch to every consumer of every priority for
// each batch it takes, and an idle worker waits without polling JetStream.
//
// A look can come too early: JetStream tells a consumer about a stored
// message asynchronously (after the PubAck, so possibly after the bell),
// and a no-wait fetch that arrives first is told there is nothing. So a
// consumer whose bell rang but whose look found nothing is asked again
// settleDelay later, and a few more times with growing waits while it
// stays empty (another worker may have taken the task, too): such a task
// waits that long, not a whole idle poll.
func (w *Worker) dispatch(ctx context.Context) {
	defer w.fetchLoop.Done()
	bells := w.arm()
	defer func() {
		for _, s := range bells {
			s.Unsubscribe()
		}
	}()
	// Without bells nothing says when an empty consumer fills: ask them all.
	trustEmpty := bells != nil
	timer := time.NewTimer(w.cfg.IdlePoll)
	timer.Stop()
	failures, rotation := 0, 0
	// settling holds consumers whose bell rang but whose look found
	// nothing: each is asked again settleDelay later, then after twice as
	// long each time, settleLooks times at most, while it stays empty.
	settling := map[*source]settle{}
	// perMsg estimates the tasks a message brings (batches hold several),
	// so that a fetch asks for about as many tasks as there are free slots.
	perMsg := 1.0
	for {
		free, ok := w.slots.room(ctx)
		if !ok {
			return
		}
		now := time.Now()
		rung := w.takeRung()
		for s := range rung {
			s.empty = false
			delete(settling, s) // a fresh bell starts its settling over
		}
		for s, st := range settling {
			if !now.Before(st.at) {
				s.empty = false // due: look again
			}
		}
		n := max(1, int(float64(free)/perMsg))
		got, tasks, err := w.fetch(ctx, n, rotation, now, trustEmpty)
		rotation++
		if got > 0 {
			perMsg = 0.8*perMsg + 0.2*float64(tasks)/float64(got)
		}
		for s, st := range settling {
			if now.Before(st.at) {
				continue // not due this round
			}
			switch {
			case !s.empty && s.lookedAt.Equal(now):
				delete(settling, s) // found its tasks
			case s.empty && st.looks < settleLooks:
				settling[s] = settle{at: now.Add(settleDelay << st.looks), looks: st.looks + 1}
			case s.empty:
				delete(settling, s) // the idle poll looks after it now
			}
		}
		for s := range rung {
			if s.empty {
				settling[s] = settle{at: now.Add(settleDelay), looks: 1}
			}
		}
		switch {
		case got > 0:
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
		// Every consumer worth asking was empty: wait for a bell, a
		// settle look, or the next consumer due for its IdlePoll look.
		wait := w.nextLook(now)
		for _, st := range settling {
			wait = min(wait, time.Until(st.at))
		}
		timer.Reset(max(wait, time.Millisecond))
		select {
		case <-w.wake:
		case <-timer.C:
		case <-ctx.Done():
			return
		}
		timer.Stop()
	}
}

// settleDelay is how soon a worker asks a rung consumer again after a look
// that may have come before JetStream had told it about the stored task;
// settleLooks is how many such looks it makes, each after twice the wait
// of the one before (5, 10, 20, ... 160 ms), for a server slow to tell: a
// loaded server has been seen to take over 20 ms.
const (
	settleDelay = 5 * time.Millisecond
	settleLooks = 6
)

// settle is a rung consumer's next look and how many it has had.
type settle struct {
	at    time.Time
	looks int
}

// nextLook is how long until an empty consumer is due for its IdlePoll
// look.
func (w *Worker) nextLook(now time.Time) time.Duration {
	next := w.cfg.IdlePoll
	for _, srcs := range w.sources {
		for _, s := range srcs {
			if s.empty {
				next = min(next, s.lookedAt.Add(w.cfg.IdlePoll).Sub(now))
			}
		}
	}
	return next
}

// fetch takes up to n task messages, highest priority first, and launches
// each. Consumers of one priority are visited from a rotating start, so no
// pipeline starves another. With trustEmpty, a consumer found empty before
// is skipped until IdlePoll has passed since (its bell clears it sooner).
// It returns how many messages it launched, how many tasks they hold, and
// the last error it met.
func (w *Worker) fetch(ctx context.Context, n, rotation int, now time.Time, trustEmpty bool) (got, tasks int, err error) {
	for prio := protocol.MaxPriority; prio >= 0; prio-- {
		srcs := w.sources[prio]
		for i := range srcs {
			if got == n || ctx.Err() != nil {
				return got, tasks, err
			}
			s := srcs[(rotation+i)%len(srcs)]
			if trustEmpty && s.empty && now.Sub(s.lookedAt) < w.cfg.IdlePoll {
				continue
			}
			asked, before := n-got, got
			s.lookedAt = now
			batch, ferr := s.c.FetchNoWait(asked)
			if ferr == nil {
				for m := range batch.Messages() {
					tasks += w.launch(s, m)
					got++
				}
				ferr = batch.Error()
			}
			// Fewer than asked: the consumer had no more.
			s.empty = ferr == nil && got-before < asked
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
	if err := fleet.Ensure(ctx, w.js, w.cfg.fleetOptions(w.log)...); err != nil {
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
// could not subscribe (the worker then asks every consumer every time).
func (w *Worker) arm() []*nats.Subscription {
	ring := func(m *nats.Msg) {
		w.rungMu.Lock()
		if s := w.bells[m.Subject]; s != nil {
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
			w.log.Warn().Err(err).Msg("task_doorbell_failed")
			return nil
		}
		subs = append(subs, s)
	}
	return subs
}

// takeRung returns the consumers rung since the last call (every consumer
// after a bell of no consumer we know).
func (w *Worker) takeRung() map[*source]bool {
	w.rungMu.Lock()
	defer w.rungMu.Unlock()
	rung, all := w.rung, w.rungAll
	if len(rung) == 0 && !all {
		return nil
	}
	w.rung, w.rungAll = make(map[*source]bool), false
	if all {
		for _, srcs := range w.sources {
			for _, s := range srcs {
				rung[s] = true
			}
		}
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
