package gopool_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/gopool"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Sequential work reuses one goroutine instead of starting one per call.
func TestReusesIdleGoroutines(t *testing.T) {
	var p gopool.Pool
	defer p.Close()
	before := runtime.NumGoroutine()
	for range 100 {
		done := make(chan struct{})
		p.Go(func() { close(done) })
		<-done
		// Let the goroutine get back to waiting for work.
		deadline := time.Now().Add(time.Second)
		for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
			runtime.Gosched()
		}
	}
	if n := runtime.NumGoroutine() - before; n > 1 {
		t.Fatalf("%d goroutines left after 100 sequential calls, want at most 1", n)
	}
}

// Concurrent work is never queued behind a busy goroutine: every function
// runs at once, whatever the others do.
func TestNeverWaitsForBusyGoroutines(t *testing.T) {
	var p gopool.Pool
	defer p.Close()
	const n = 50
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	var done sync.WaitGroup
	done.Add(n)
	for range n {
		p.Go(func() {
			defer done.Done()
			started.Done()
			<-release
		})
	}
	ok := make(chan struct{})
	go func() { started.Wait(); close(ok) }()
	select {
	case <-ok:
	case <-time.After(5 * time.Second):
		t.Fatal("not every function started while the others were blocked")
	}
	close(release)
	done.Wait()
}

// Close lets the idle goroutines go (the leak check in TestMain fails
// otherwise), and the pool still runs work after it.
func TestCloseReleasesIdleGoroutines(t *testing.T) {
	var p gopool.Pool
	for range 10 {
		p.Go(func() {})
	}
	p.Close()
	done := make(chan struct{})
	p.Go(func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Go after Close did not run")
	}
}
