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

// acquire takes a slot for one expected task, waiting in line for one if
// need be. It returns false, having taken nothing, if ctx ends first.
func (s *slots) acquire(ctx context.Context) bool {
	s.mu.Lock()
	s.expected--
	if s.free > 0 && len(s.line) == 0 {
		s.free--
		s.mu.Unlock()
		return true
	}
	turn := make(chan struct{})
	s.line = append(s.line, turn)
	s.mu.Unlock()
	select {
	case <-turn:
		return true
	case <-ctx.Done():
	}
	s.mu.Lock()
	for i, c := range s.line {
		if c == turn {
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
