package worker

import (
	"context"
	"sync"
)

// slots counts the tasks a worker executes against its concurrency. The
// dispatcher fetches only while a slot is free; a fetched batch takes one
// slot per task, even past the limit (its tasks run at once), and the
// dispatcher then waits until enough have ended.
type slots struct {
	mu    sync.Mutex
	free  int
	ready chan struct{} // holds a token once free turns positive
}

func newSlots(n int) *slots {
	return &slots{free: n, ready: make(chan struct{}, 1)}
}

// wait blocks until a slot is free and returns how many are; ok is false
// when ctx ended first. One goroutine (the dispatcher) waits at a time.
func (s *slots) wait(ctx context.Context) (free int, ok bool) {
	for {
		s.mu.Lock()
		free = s.free
		s.mu.Unlock()
		if free > 0 {
			return free, true
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return 0, false
		}
	}
}

// take uses n slots (n may be negative: a correction).
func (s *slots) take(n int) { s.release(-n) }

// release frees n slots.
func (s *slots) release(n int) {
	s.mu.Lock()
	s.free += n
	positive := s.free > 0
	s.mu.Unlock()
	if positive && n > 0 {
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
}
