// Package gopool runs functions on reused goroutines. A fresh goroutine
// starts with a small stack that grows, by copying, each time a deep call
// (a JetStream request, a JSON codec) needs more; when every task of a busy
// fleet runs on a new goroutine, that copying is a measurable share of the
// CPU. A Pool hands each function to an idle goroutine if there is one (its
// stack already grown) and starts a new one otherwise; goroutines idle for
// IdleTimeout exit, so an idle process holds none.
//
// The pool owns its goroutines: Stop lets the idle ones go and waits for
// the busy ones to finish their functions.
package gopool

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"
)

// IdleTimeout is how long a pool goroutine waits for work before it exits,
// unless Pool.Linger says otherwise.
const IdleTimeout = 10 * time.Second

// Pool runs functions on reused goroutines. The zero value is ready to use;
// a Pool is safe for concurrent use and must not be copied after first use.
type Pool struct {
	// Linger is how long a goroutine waits for work before it exits.
	// Defaults to IdleTimeout. Set it before the first Go.
	Linger time.Duration

	mu      sync.Mutex
	idle    []*runner     // parked goroutines, the last parked last
	live    int           // goroutines of the pool, busy or idle
	busy    int           // goroutines running (or handed) a function
	stopped bool          // Stop began: no goroutine parks any more
	quit    chan struct{} // made by the first to need it; closed by Stop: the parked goroutines exit
	gone    chan struct{} // closed by the last goroutine to exit after Stop
}

// runner is one goroutine of the pool. Its channel holds at most the one
// function handed to it while it was parked, so handing it over never
// blocks.
type runner struct {
	work chan func()
	// Guarded by Pool.mu:
	taken bool // Go took it off the idle list: a function is on its way
	at    int  // its index in Pool.idle while parked
}

// Go runs f on an idle goroutine of the pool, or on a new one. Like the go
// statement it never waits for f, and there is no limit on how many run at
// once. After Stop, f runs on a new goroutine that exits when f returns
// (Stop's wait includes it).
//
// A goroutine counts as idle from the moment it has finished its function
// and parked: a Go after that reuses it, whatever the scheduler has done
// with it since.
func (p *Pool) Go(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		r := p.idle[n-1]
		p.idle = p.idle[:n-1]
		r.taken = true
		p.busy++
		p.mu.Unlock()
		r.work <- f
		return
	}
	p.live++
	p.busy++
	p.mu.Unlock()
	go p.run(&runner{work: make(chan func(), 1)}, f)
}

// Idle returns how many goroutines are parked, waiting for work.
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// Stop lets the idle goroutines go, makes the busy ones exit when their
// function returns, and waits until every goroutine of the pool has exited.
// If ctx ends while some still run a function, it returns an error
// wrapping ctx's cause that says how many (idle goroutines are waited for
// whatever ctx says: they exit at once). The pool stays usable (see Go);
// Stop may be called again, to wait for goroutines started since.
func (p *Pool) Stop(ctx context.Context) error {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		if p.quit == nil {
			p.quit = make(chan struct{})
		}
		close(p.quit)
	}
	p.idle = nil // unparked: each sees quit and exits
	if p.live == 0 {
		p.mu.Unlock()
		return nil
	}
	if p.gone == nil {
		p.gone = make(chan struct{})
	}
	gone := p.gone
	p.mu.Unlock()
	select {
	case <-gone:
		return nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	n := p.busy
	p.mu.Unlock()
	if n == 0 {
		<-gone // only idle goroutines, on their way out
		return nil
	}
	return fmt.Errorf("gopool: %d goroutines still busy: %w", n, context.Cause(ctx))
}

// Close is Stop without a limit: it returns once every goroutine of the
// pool has exited, busy ones included.
func (p *Pool) Close() { _ = p.Stop(context.Background()) }

func (p *Pool) run(r *runner, f func()) {
	defer p.exit()
	var idle *time.Timer
	for {
		f()
		f = nil
		p.mu.Lock()
		p.busy--
		if p.stopped {
			p.mu.Unlock()
			return
		}
		r.taken, r.at = false, len(p.idle)
		p.idle = append(p.idle, r)
		if p.quit == nil {
			p.quit = make(chan struct{})
		}
		quit := p.quit
		p.mu.Unlock()
		linger := cmp.Or(p.Linger, IdleTimeout)
		if idle == nil {
			idle = time.NewTimer(linger)
			defer idle.Stop()
		} else {
			idle.Reset(linger)
		}
		select {
		case f = <-r.work:
			idle.Stop()
			continue
		case <-idle.C:
		case <-quit:
		}
		// Leaving: unless Go took this goroutine off the idle list (and
		// handed it a function) just now, it is gone from the pool.
		if !p.unpark(r) {
			f = <-r.work
			continue
		}
		return
	}
}

// unpark takes r off the idle list and reports true, or false if Go took
// it off first: its function is on the way. (Stop empties the list
// without taking anyone: those goroutines just go.)
func (p *Pool) unpark(r *runner) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.taken {
		return false
	}
	// Out of the middle in O(1), the last one taking its place: when a
	// burst of many thousand goroutines ends, they all time out together.
	if i := r.at; i < len(p.idle) && p.idle[i] == r {
		last := len(p.idle) - 1
		moved := p.idle[last]
		moved.at = i
		p.idle[i] = moved
		p.idle[last] = nil
		p.idle = p.idle[:last]
	}
	return true
}

func (p *Pool) exit() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.live--
	if p.live == 0 && p.gone != nil {
		close(p.gone)
		p.gone = nil
	}
}
