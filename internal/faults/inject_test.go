//go:build faults

package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"
)

// injection is what an injector works with: the run, its seeded random
// source, and a context that ends when the harness stops waiting. Every
// injector leaves the fleet whole when it returns (processes restarted,
// continued, servers back), except where losing a part is the scenario.
type injection struct {
	ctx context.Context
	r   *run
	rng *rand.Rand
}

// between returns a random duration in [lo, hi).
func (x *injection) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(x.rng.Int64N(int64(hi-lo)))
}

// atFraction waits until a random instant between lo and hi of the
// undisturbed backfill's duration, counted from the backfill's start. It
// returns false if the harness stopped waiting first.
func (x *injection) atFraction(lo, hi float64) bool {
	f := lo + x.rng.Float64()*(hi-lo)
	return x.pause(time.Until(x.r.start.Add(time.Duration(f * float64(x.r.expected)))))
}

// pause waits d, or returns false if the harness stopped waiting first. The
// waits are the faults' own timing (a server down for 10 s), never a way
// to let the fleet catch up.
func (x *injection) pause(d time.Duration) bool {
	if d <= 0 {
		return x.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-x.ctx.Done():
		return false
	}
}

// pick returns one of n, at random.
func (x *injection) pick(n int) int { return x.rng.IntN(n) }

// failed notes an injector that could not do its part.
func (x *injection) failed(class string, err error) {
	x.r.tl.add(time.Now(), class, "error", "", err.Error())
}

// killWorkers SIGKILLs a random worker every ~2 s and restarts it at once
// (under a new id), until the backfill is over or the size's kill count
// is reached.
func killWorkers(x *injection) {
	if !x.pause(x.between(500*time.Millisecond, 2*time.Second)) {
		return
	}
	limit := x.r.start.Add(2*x.r.expected + 30*time.Second)
	for kills := 0; x.r.sz.workerKills == 0 || kills < x.r.sz.workerKills; kills++ {
		if x.r.finished() || time.Now().After(limit) {
			return
		}
		d := x.r.f.slots("worker")[x.pick(workers)]
		killed := x.r.f.current(d)
		old, at := d.id(), time.Now()
		if err := x.r.f.restart(d); err != nil {
			x.failed("worker", err)
			return
		}
		x.r.tl.add(at, "worker", "SIGKILL", old, fmt.Sprintf("killed %s, restarted as %s", killed.name, d.id()))
		if !x.pause(x.between(1500*time.Millisecond, 2500*time.Millisecond)) {
			return
		}
	}
}

// killCoordinators SIGKILLs the coordinator driving the backfill (the one
// that queued most records in the last seconds; a random one if none
// did) at two random instants, and restarts it at once with the same --id.
func killCoordinators(x *injection) {
	windows := [][2]float64{{0.15, 0.35}, {0.55, 0.75}}
	for i := range x.r.sz.coordinatorKills {
		w := windows[i%len(windows)]
		if !x.atFraction(w[0], w[1]) {
			return
		}
		id, how := x.r.rec.driver(5*time.Second), "the driver (queued most records in the last 5 s)"
		if id == "" {
			id, how = x.r.f.slots("coordinator")[x.pick(coordinators)].slot, "random (no record queued in the last 5 s)"
		}
		at := time.Now()
		if err := x.r.f.restart(x.r.f.daemons[id]); err != nil {
			x.failed("coordinator", err)
			return
		}
		x.r.tl.add(at, "coordinator", "SIGKILL", id, "killed "+how+", restarted with the same --id")
	}
}

// restartNATS SIGKILLs the nats-server at a random instant and starts it
// again on the same port and store after 3 s.
func restartNATS(x *injection) {
	if !x.atFraction(0.2, 0.6) {
		return
	}
	n := x.r.f.nats.nodes[0]
	at := time.Now()
	if err := n.p.kill(); err != nil {
		x.failed("nats", err)
		return
	}
	x.r.tl.add(at, "nats", "SIGKILL", n.name, "")
	x.pause(3 * time.Second) // the outage itself; cut short only if the harness gives up
	if err := n.start(x.r.t, x.r.f.logDir); err != nil {
		x.failed("nats", err)
		return
	}
	if err := x.r.f.nats.waitJetStream(); err != nil {
		x.failed("nats", err)
		return
	}
	x.r.tl.add(time.Now(), "nats", "restart", n.name, "JetStream answers again")
}

// stopS3 SIGKILLs the S3 server at a random instant and starts it again
// after 10 s, on the same address and data.
func stopS3(x *injection) {
	if !x.atFraction(0.2, 0.6) {
		return
	}
	s := x.r.f.s3
	at := time.Now()
	if err := s.p.kill(); err != nil {
		x.failed("s3", err)
		return
	}
	x.r.tl.add(at, "s3", "SIGKILL", "s3", "")
	x.pause(10 * time.Second)
	if err := s.start(x.r.t, x.r.f.logDir); err != nil {
		x.failed("s3", err)
		return
	}
	x.r.tl.add(time.Now(), "s3", "restart", "s3", "answers again")
}

// killClusterNode SIGKILLs one random node of the three at a random
// instant; it stays down: the other two must finish the work.
func killClusterNode(x *injection) {
	if !x.atFraction(0.2, 0.6) {
		return
	}
	n := x.r.f.nats.nodes[x.pick(len(x.r.f.nats.nodes))]
	at := time.Now()
	if err := n.p.kill(); err != nil {
		x.failed("nats", err)
		return
	}
	x.r.tl.add(at, "nats", "SIGKILL", n.name, "left down")
}

// stopWorkers SIGSTOPs a random worker for longer than --ack-wait (its
// heartbeats stop, JetStream redelivers its tasks to the others while it
// still holds them), then SIGCONTs it: its executions resume and end
// after the redelivered ones started. It does so the size's number of
// times, while the backfill runs.
func stopWorkers(x *injection) {
	if !x.atFraction(0.1, 0.3) {
		return
	}
	for i := range x.r.sz.stops {
		if i > 0 && (!x.pause(x.between(time.Second, 3*time.Second)) || x.r.finished()) {
			return
		}
		d := x.r.f.slots("worker")[x.pick(workers)]
		p, id := x.r.f.current(d), d.id()
		at := time.Now()
		if err := p.signal(syscall.SIGSTOP); err != nil {
			x.failed("worker", err)
			return
		}
		x.r.tl.add(at, "worker", "SIGSTOP", id, "")
		x.pause(*ackWaitFlag + 5*time.Second)
		if err := p.signal(syscall.SIGCONT); err != nil {
			x.failed("worker", err)
			return
		}
		x.r.tl.add(time.Now(), "worker", "SIGCONT", id, fmt.Sprintf("after --ack-wait %v + 5 s", *ackWaitFlag))
	}
}
