package worker

import (
	"context"
	"sync"
)

// slots bounds the tasks a worker executes at once (Config.Concurrency).
// Every task takes a slot before it starts and gives it back when the
// executor is done with it; a task that finds none waits in line (first come, first
// served). The dispatcher fetches only when a fetch would find a slot: it
// counts the tasks fetched but not yet in line (expected) and those in
// line as already using slots, so a worker holds at most one fetch's worth
// of tasks beyond its concurrency, and those only wait, never run.
type slots struct {
	mu       sync.Mutex
	free     int             // slots nobody uses
	expected int             // tasks fetched that have not asked for a slot yet
	line     []chan struct{} // tasks waiting, first first
	ready    chan struct{}   // holds a token when room may have appeared
}

func newSlots(n int) *slots {
	return &slots{free: n, ready: make(chan struct{}, 1)}
}

// room blocks until a slot is left over once every fetched task has one,
// and returns how many are; ok is false when ctx ended first. One goroutine
// (the dispatcher) calls it at a time.
func (s *slots) room(ctx context.Context) (n int, ok bool) {
	for {
		s.mu.Lock()
		n = s.free - s.expected - len(s.line)
		s.mu.Unlock()
		if n > 0 {
			return n, true
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return 0, false
		}
	}
}

// expect records that n more fetched tasks will ask for a slot (n may be
// negative: a correction, or a message that held no task after all).
func (s *slots) expect(n int) {
	s.mu.Lock()
	s.expected += n
	s.mu.Unlock()
	if n < 0 {
		s.signal()
	}
}

// ticket is a task's place for a slot: the slot itself (turn nil), or a
// place in line whose turn is closed when the slot is handed over.
type ticket struct{ turn chan struct{} }

// take gives one expected task its place without waiting: a free slot if
// nobody is in line, else the end of the line. The tasks of a message take
// their places in the message's order, before any of them runs, so that
// they start in that order however their goroutines are scheduled. It
// reports false, having taken nothing, if ctx has ended: a task whose
// worker is stopping never starts.
func (s *slots) take(ctx context.Context) (ticket, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expected--
	if ctx.Err() != nil {
		return ticket{}, false
	}
	if s.free > 0 && len(s.line) == 0 {
		s.free--
		return ticket{}, true
	}
	t := ticket{turn: make(chan struct{})}
	s.line = append(s.line, t.turn)
	return t, true
}

// wait waits for t's slot and reports true once the task holds it. It
// returns false, having given the place or the slot up, if ctx ends first,
// even with the slot already in hand: a slot handed over at the moment
// the worker begins to stop does not start a task.
func (s *slots) wait(ctx context.Context, t ticket) bool {
	if t.turn == nil {
		if ctx.Err() == nil {
			return true
		}
		s.release()
		return false
	}
	select {
	case <-t.turn:
		if ctx.Err() == nil {
			return true
		}
		s.release()
		return false
	case <-ctx.Done():
	}
	s.mu.Lock()
	for i, c := range s.line {
		if c == t.turn {
			s.line = append(s.line[:i], s.line[i+1:]...)
			s.mu.Unlock()
			s.signal()
			return false
		}
	}
	s.mu.Unlock()
	// The slot was handed over just as ctx ended: pass it on.
	s.release()
	return false
}

// release gives a slot back: to the first task in line, else to the pool.
func (s *slots) release() {
	s.mu.Lock()
	if len(s.line) > 0 {
		turn := s.line[0]
		s.line = s.line[1:]
		s.mu.Unlock()
		close(turn)
		return
	}
	s.free++
	s.mu.Unlock()
	s.signal()
}

func (s *slots) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}
