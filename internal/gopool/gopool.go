// Package gopool runs functions on reused goroutines. A fresh goroutine
// starts with a small stack that grows, by copying, each time a deep call
// (a JetStream request, a JSON codec) needs more; when every task of a busy
// fleet runs on a new goroutine, that copying is a measurable share of the
// CPU. A Pool hands each function to an idle goroutine if there is one (its
// stack already grown) and starts a new one otherwise; goroutines idle for
// IdleTimeout exit, so an idle process holds none, and Close lets them go
// at once.
package gopool

import (
	"sync"
	"time"
)

// IdleTimeout is how long a pool goroutine waits for work before it exits.
const IdleTimeout = 10 * time.Second

// Pool runs functions on reused goroutines. The zero value is ready to use;
// a Pool is safe for concurrent use and must not be copied after first use.
type Pool struct {
	once sync.Once
	work chan func()   // idle goroutines receive here
	quit chan struct{} // closed by Close
	stop sync.Once
}

func (p *Pool) init() {
	p.once.Do(func() {
		p.work = make(chan func())
		p.quit = make(chan struct{})
	})
}

// Go runs f on an idle goroutine of the pool, or on a new one. Like the go
// statement it never waits for f, and there is no limit on how many run at
// once.
func (p *Pool) Go(f func()) {
	p.init()
	select {
	case p.work <- f:
	default:
		go p.worker(f)
	}
}

// Close makes the idle goroutines exit now, and the busy ones when they
// finish. The pool stays usable: Go after Close runs f on a goroutine that
// exits when f returns.
func (p *Pool) Close() {
	p.init()
	p.stop.Do(func() { close(p.quit) })
}

func (p *Pool) worker(f func()) {
	idle := time.NewTimer(IdleTimeout)
	defer idle.Stop()
	for {
		f()
		f = nil
		idle.Reset(IdleTimeout)
		select {
		case f = <-p.work:
		case <-idle.C:
			return
		case <-p.quit:
			return
		}
	}
}
