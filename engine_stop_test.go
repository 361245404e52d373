package flowstone_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// blocking returns a pipeline whose asset "slow" reports each start on
// started and returns when release is closed or its context ends.
func blocking(started chan<- struct{}, release <-chan struct{}) *flowstone.Pipeline {
	return flowstone.MustPipeline("blocking", flowstone.Asset("slow", func(c *flowstone.Context) (any, error) {
		started <- struct{}{}
		select {
		case <-release:
			return 1, nil
		case <-c.Context().Done():
			return nil, context.Cause(c.Context())
		}
	}))
}

// Stop lets a run in flight finish (a soft stop) and returns only once
// it has.
func TestEngineStopWaitsForRunsInFlight(t *testing.T) {
	e, err := flowstone.NewEngine(flowstone.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}, 1), make(chan struct{})
	p := blocking(started, release)
	ran := make(chan error, 1)
	go func() {
		_, err := e.Run(ctxT(t), p, "slow")
		ran <- err
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- e.Stop(ctxT(t)) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a run was in flight", err)
	case err := <-ran:
		t.Fatalf("the run ended (%v) before it was released", err)
	default:
	}
	close(release)
	if err := <-ran; err != nil {
		t.Fatalf("run = %v", err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("soft Stop = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Stop did not return once the run finished")
	}
}

// When Stop's context ends first, the runs in flight are cancelled with
// an error that says so, and Stop returns once they have ended.
func TestEngineStopCancelsRunsWhenItsContextEnds(t *testing.T) {
	e, err := flowstone.NewEngine(flowstone.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	p := blocking(started, release)
	ran := make(chan error, 1)
	go func() {
		_, err := e.Run(ctxT(t), p, "slow")
		ran <- err
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop = %v, want it to wrap context.Canceled", err)
	}
	select {
	case err := <-ran:
		wantType(t, err, flowstone.TypeCancelled)
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end after the hard stop")
	}
	st, err := e.Status(ctxT(t), p, "slow")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != flowstone.StateCancelled {
		t.Errorf("state after a hard stop = %s, want cancelled", st.State)
	}
	// The engine stays usable.
	go func() {
		<-started
		release <- struct{}{}
	}()
	if _, err := e.Run(ctxT(t), p, "slow", flowstone.Force()); err != nil {
		t.Fatalf("Run after Stop = %v", err)
	}
	e.Close()
}
