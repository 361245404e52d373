package worker

import (
	"strconv"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// delivery is one delivered task message, a single task or a batch, and
// settles it once every task in it has ended: an ack when each task's
// completion is stored, else a nak (a task handed back, a completion that
// could not be stored) so that the message is delivered again; the tasks
// that had ended then find their records completed and are not executed
// again.
type delivery struct {
	msg    jetstream.Msg
	log    *zerolog.Logger
	forget func(*delivery) // called once, when the message is settled

	mu        sync.Mutex
	remaining int
	retry     bool          // deliver again
	delay     time.Duration // before the redelivery
	leave     bool          // another delivery of a task holds its record
	settled   bool
}

// taskCount is how many tasks a message holds, from its BatchHeader (1 for
// a single task or an unreadable header; decoding corrects it).
func taskCount(m jetstream.Msg) int {
	n, err := strconv.Atoi(m.Headers().Get(protocol.BatchHeader))
	if err != nil || n < 1 {
		return 1
	}
	return min(n, protocol.MaxBatchItems)
}

// done records that one task ended: stored says whether its completion is
// stored; if not, the message is delivered again after delay.
func (d *delivery) done(stored bool, delay time.Duration) { d.end(stored, false, delay) }

// yield records that one task ended without an outcome because another
// execution of it holds its record (a second delivery of the message, after
// this worker's claim lapsed): that execution reports the outcome and
// settles the message. Unless another task of this delivery asks for a
// redelivery, the message is then neither acked nor nak'ed; this worker
// just stops heartbeating it.
func (d *delivery) yield() { d.end(true, true, 0) }

func (d *delivery) end(stored, leave bool, delay time.Duration) {
	d.mu.Lock()
	d.leave = d.leave || leave
	if !stored {
		d.retry = true
		d.delay = max(d.delay, delay)
	}
	d.remaining--
	last := d.remaining == 0 && !d.settled
	if last {
		d.settled = true
	}
	retry, wait, leave := d.retry, d.delay, d.leave
	d.mu.Unlock()
	if !last {
		return
	}
	d.forget(d)
	var err error
	switch {
	case !retry && leave:
		d.log.Info().Str("subject", d.msg.Subject()).Msg("task_left_to_other_delivery")
	case !retry:
		err = d.msg.Ack()
	case wait > 0:
		err = d.msg.NakWithDelay(wait)
	default:
		err = d.msg.Nak()
	}
	if err != nil {
		// Acked: the completions are stored; a redelivery would only
		// repeat them. Nak'ed: AckWait redelivers it anyway.
		d.log.Warn().Err(err).Str("subject", d.msg.Subject()).Bool("nak", retry).Msg("task_settle_failed")
	}
}

// abandon naks the message now, whatever its tasks are doing (Stop gives up
// on tasks that ignore their context); later calls do nothing.
func (d *delivery) abandon() {
	d.mu.Lock()
	first := !d.settled
	d.settled = true
	d.mu.Unlock()
	if first {
		d.forget(d)
		d.msg.Nak()
	}
}
