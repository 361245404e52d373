package flowstone

import (
	"context"
	"sync"
	"time"
)

// leaseKeeper renews the leases of an executor's running attempts. One
// goroutine, running while any attempt is live, looks every lease/6 for
// the attempts whose renewal is due (a third of the lease after the last),
// and renews them each on a goroutine of its own: a store that is slow to
// answer holds up one attempt, not the rest. Most executions end long
// before their first renewal and cost a map insert and delete.
type leaseKeeper struct {
	lease time.Duration

	mu      sync.Mutex
	live    map[*attempt]struct{}
	running bool
	stopped bool
	quit    chan struct{}  // closed by stop
	idle    chan struct{}  // signalled when the last live attempt goes
	wg      sync.WaitGroup // the sweep loop and the renewals it started
}

// add keeps a's lease until remove; false if the keeper has stopped.
func (k *leaseKeeper) add(a *attempt) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return false
	}
	if k.live == nil {
		k.live = make(map[*attempt]struct{})
		k.quit = make(chan struct{})
		k.idle = make(chan struct{}, 1)
	}
	k.live[a] = struct{}{}
	if !k.running {
		k.running = true
		k.wg.Add(1)
		go k.sweep()
	}
	return true
}

func (k *leaseKeeper) remove(a *attempt) {
	k.mu.Lock()
	delete(k.live, a)
	if len(k.live) == 0 && k.running {
		// The sweep loop ends now, not at its next tick: an executor
		// that runs nothing keeps no goroutine.
		select {
		case k.idle <- struct{}{}:
		default:
		}
	}
	k.mu.Unlock()
}

// sweep renews due leases every lease/6 until no attempt is live (or the
// keeper stops).
func (k *leaseKeeper) sweep() {
	defer k.wg.Done()
	t := time.NewTicker(max(k.lease/6, time.Millisecond))
	defer t.Stop()
	var due []*attempt
	for {
		var now time.Time
		select {
		case now = <-t.C:
		case <-k.idle:
			now = time.Now()
		case <-k.quit:
			return
		}
		due = due[:0]
		k.mu.Lock()
		for a := range k.live {
			if a.renewDue(now) {
				due = append(due, a)
			}
		}
		idle := len(k.live) == 0 || k.stopped
		if idle {
			k.running = false
		} else {
			k.wg.Add(len(due))
		}
		k.mu.Unlock()
		if idle {
			return
		}
		for _, a := range due {
			go func() {
				defer k.wg.Done()
				a.renew(context.Background(), now)
			}()
		}
	}
}

// stop ends the sweeps and waits for the renewals in flight; attempts
// still live after it lose their leases by time, as a dead process's do.
func (k *leaseKeeper) stop() {
	k.mu.Lock()
	if !k.stopped && k.quit != nil {
		close(k.quit)
	}
	k.stopped = true
	k.mu.Unlock()
	k.wg.Wait()
}

// renewDue reports whether a's lease is due for renewal at now (without
// waiting for a write of a in flight).
func (a *attempt) renewDue(now time.Time) bool {
	if !a.mu.TryLock() {
		return false
	}
	defer a.mu.Unlock()
	return !a.over && !a.lapsed && !now.Before(a.renewAt)
}
