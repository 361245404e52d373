package gopool_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/gopool"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every wait: generous for a busy machine, short of a hang.
const wait = 30 * time.Second

// goroutineID returns the id of the calling goroutine, from the header of
// its stack trace ("goroutine 42 [running]:").
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := bytes.Cut(bytes.TrimPrefix(buf, []byte("goroutine ")), []byte(" "))
	return string(id)
}

// waitIdle waits until n goroutines of p are parked.
func waitIdle(t *testing.T, p *gopool.Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for p.Idle() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines idle, want %d", p.Idle(), n)
		}
		runtime.Gosched()
	}
}

// Sequential work reuses one goroutine instead of starting one per call:
// once a goroutine has parked, the next Go hands it the function, however
// late the scheduler lets it run.
func TestReusesIdleGoroutines(t *testing.T) {
	var p gopool.Pool
	defer p.Close()
	ids := map[string]bool{}
	for range 100 {
		got := make(chan string)
		p.Go(func() { got <- goroutineID() })
		ids[<-got] = true
		waitIdle(t, &p, 1)
	}
	if len(ids) != 1 {
		t.Fatalf("100 sequential calls ran on %d goroutines, want 1", len(ids))
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
	case <-time.After(wait):
		t.Fatal("not every function started while the others were blocked")
	}
	close(release)
	done.Wait()
}

// Stop lets the idle goroutines go at once and waits for the busy ones;
// if its context ends first it says how many are still busy. The leak
// check in TestMain fails if any goroutine outlives the test.
func TestStopWaitsForBusyGoroutines(t *testing.T) {
	var p gopool.Pool
	for range 3 {
		p.Go(func() {})
	}
	release := make(chan struct{})
	started := make(chan struct{})
	p.Go(func() { close(started); <-release })
	<-started

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.Stop(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with a busy goroutine and an ended context = %v, want context.Canceled", err)
	}
	if n := p.Idle(); n != 0 {
		t.Fatalf("%d goroutines idle after Stop", n)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a function still ran", err)
	default:
	}
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("Stop did not return once the function did")
	}
}

// The pool stays usable after Stop: Go runs the function on a goroutine
// that exits when it returns, and a later Stop waits for it.
func TestGoAfterStop(t *testing.T) {
	var p gopool.Pool
	p.Close()
	done := make(chan struct{})
	release := make(chan struct{})
	p.Go(func() { <-release; close(done) })
	close(release)
	p.Close()
	select {
	case <-done:
	default:
		t.Fatal("Close returned before the function started after Stop had run")
	}
	if n := p.Idle(); n != 0 {
		t.Fatalf("%d goroutines parked after Stop", n)
	}
}

// A Stop whose context has already ended still waits for the idle
// goroutines, which exit at once, and reports no error when none is busy.
func TestStopWithAnEndedContextReleasesIdleGoroutines(t *testing.T) {
	var p gopool.Pool
	for range 5 {
		done := make(chan struct{})
		p.Go(func() { close(done) })
		<-done
		waitIdle(t, &p, 1) // parked, so the next Go reuses it: one goroutine
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("Stop with only idle goroutines = %v", err)
	}
	if n := blockedIn("gopool.(*Pool).run"); n != 0 {
		t.Fatalf("%d pool goroutines after Stop", n)
	}
}

// blockedIn counts the goroutines with fn in their stack that are blocked
// (waiting on a channel, a timer, a lock): one that Stop has let go may
// still be finishing its return, runnable, for a moment.
func blockedIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		header, _, _ := bytes.Cut(g, []byte("\n"))
		if bytes.Contains(g, []byte(fn)) && !bytes.Contains(header, []byte("[running]")) && !bytes.Contains(header, []byte("[runnable]")) {
			n++
		}
	}
	return n
}

// Goroutines that time out while Go hands out work, many at once: every
// function runs exactly once, the idle list stays whole (the goroutines
// that time out leave it, those handed work just then run it), and in the
// end every goroutine has exited by itself.
func TestIdleTimeoutsRacingGo(t *testing.T) {
	p := gopool.Pool{Linger: time.Millisecond}
	const rounds, burst = 50, 64
	var ran sync.WaitGroup
	var count sync.Map
	for round := range rounds {
		release := make(chan struct{})
		ran.Add(burst)
		for i := range burst {
			p.Go(func() {
				defer ran.Done()
				if _, dup := count.LoadOrStore([2]int{round, i}, true); dup {
					t.Errorf("function %d/%d ran twice", round, i)
				}
				<-release
			})
		}
		close(release)
		// Not a wait for anything: a varying gap, so that some goroutines
		// park and time out while the next burst is handed out.
		time.Sleep(time.Duration(round%3) * time.Millisecond)
	}
	ran.Wait()
	n := 0
	count.Range(func(any, any) bool { n++; return true })
	if n != rounds*burst {
		t.Fatalf("%d functions ran, want %d", n, rounds*burst)
	}
	deadline := time.Now().Add(wait)
	for p.Idle() != 0 || blockedIn("gopool.(*Pool).run") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still idle past their linger", p.Idle())
		}
		runtime.Gosched()
	}
	p.Close()
}
