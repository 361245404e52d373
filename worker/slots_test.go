package worker

import (
	"context"
	"testing"
)

// Tasks get their slots in the order they took their places, whichever
// waits first.
func TestSlotsServeInTheOrderPlacesWereTaken(t *testing.T) {
	s := newSlots(1)
	s.expect(3)
	ctx := context.Background()
	first, _ := s.take(ctx)
	second, _ := s.take(ctx)
	third, _ := s.take(ctx)
	if first.turn != nil || second.turn == nil || third.turn == nil {
		t.Fatal("with one slot, only the first place holds it")
	}
	// The third waits first; the slot still goes to the second.
	got := make(chan string, 2)
	go func() {
		if s.wait(ctx, third) {
			got <- "third"
		}
	}()
	go func() {
		if s.wait(ctx, second) {
			got <- "second"
		}
	}()
	if !s.wait(ctx, first) {
		t.Fatal("the first place did not get its slot")
	}
	s.release()
	if g := <-got; g != "second" {
		t.Fatalf("after the first, the slot went to the %s", g)
	}
	s.release()
	if g := <-got; g != "third" {
		t.Fatalf("then to the %s", g)
	}
	s.release()
	if n, _ := s.room(ctx); n != 1 {
		t.Fatalf("room %d after every slot came back, want 1", n)
	}
}

// Once the queue's context has ended, no task starts: not one taking its
// place, nor one whose slot was free or handed over; the slots come back.
func TestSlotsStartNothingOnceStopping(t *testing.T) {
	s := newSlots(1)
	s.expect(3)
	queue, stop := context.WithCancel(context.Background())
	granted, _ := s.take(queue)
	waiting, _ := s.take(queue)
	stop()
	if _, ok := s.take(queue); ok {
		t.Fatal("a place was taken after the stop")
	}
	if s.wait(queue, granted) {
		t.Fatal("a slot held at the stop started its task")
	}
	if s.wait(queue, waiting) {
		t.Fatal("a place in line started its task after the stop")
	}
	if n, _ := s.room(context.Background()); n != 1 {
		t.Fatalf("room %d after the stop, want the slot back", n)
	}
}
