//go:build faults

package faults

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge"
)

// size is a variant's scale.
type size struct {
	name             string
	partitions       int
	parallel         int
	workerKills      int // most worker kills; 0: until the backfill ends
	coordinatorKills int
	stops            int // SIGSTOPs of the duplicate-delivery scenario
	sample           int // partitions read back with fsctl get and status
}

var (
	shortSize = size{name: "short", partitions: 150, parallel: 32, workerKills: 5, coordinatorKills: 2, stops: 1, sample: 8}
	longSize  = size{name: "long", partitions: 1000, parallel: 32, coordinatorKills: 2, stops: 3, sample: 20}
)

// assets are daily_sales's assets: a backfill of revenue materializes all
// three for every day.
var assets = []string{"orders", "cleaned", "revenue"}

// firstDay is the first partition of every backfill.
var firstDay = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// run is one scenario's backfill on its own fleet.
type run struct {
	t        *testing.T
	sc       scenario
	sz       size
	f        *fleet
	rec      *recorder
	days     []string
	keys     []string // every asset's record key of every day
	revenue  []string // revenue's record keys
	start    time.Time
	expected time.Duration // how long the undisturbed backfill took
	tl       *timeline
	backfill *proc
	workDone time.Duration // when every record was first seen completed; 0 if never
}

// execute runs sc at size sz: starts its fleet, starts the backfill,
// injects its faults, waits for the backfill to end or stall, and checks
// the outcome against base (nil for the baseline itself).
func execute(t *testing.T, sc scenario, sz size, base *outcome) *outcome {
	r := &run{t: t, sc: sc, sz: sz, tl: &timeline{}}
	for i := range sz.partitions {
		day := firstDay.AddDate(0, 0, i).Format(time.DateOnly)
		r.days = append(r.days, day)
		for _, a := range assets {
			r.keys = append(r.keys, bridge.MaterializationKey("daily_sales", a, day))
		}
		r.revenue = append(r.revenue, bridge.MaterializationKey("daily_sales", "revenue", day))
	}
	r.expected = 2 * time.Minute // a guess, for the baseline only
	if base != nil {
		r.expected = base.workDone
	}
	r.f = startFleet(t, sc.fleet)
	r.rec = startRecorder(t, r.f.js)
	r.start = time.Now()
	r.backfill = r.f.fsctlProc("fsctl-backfill", "backfill", "daily_sales", "revenue",
		"--partitions", r.days[0]+".."+r.days[len(r.days)-1], "--parallel", fmt.Sprint(sz.parallel))

	ctx, cancel := context.WithCancel(context.Background())
	injected := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(injected)
		if sc.inject != nil {
			sc.inject(&injection{ctx: ctx, r: r, rng: rand.New(rand.NewPCG(*seedFlag, nameHash(sc.name)))})
		}
	}()
	reason := r.wait(injected)
	cancel()
	wg.Wait()
	return r.check(reason, base)
}

func nameHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// wait waits until the backfill has returned with no record left pending
// or running and the injector is done; or until no record has changed for
// -faults.stall once the injector is done; or until a deadline that only a
// livelock reaches. It returns why it stopped.
func (r *run) wait(injected <-chan struct{}) string {
	deadline := r.start.Add(3*r.expected + 10*time.Minute)
	for {
		st := r.rec.states(r.keys)
		if r.workDone == 0 && st["completed"] == len(r.keys) {
			r.workDone = time.Since(r.start)
		}
		injectorDone := isClosed(injected)
		switch {
		case injectorDone && !r.backfill.running() && st["pending"]+st["running"] == 0:
			return backfillReturned
		case injectorDone && r.rec.quietFor() > *stallFlag:
			return fmt.Sprintf("no record changed for %v", *stallFlag)
		case time.Now().After(deadline):
			return fmt.Sprintf("deadline of %v passed", deadline.Sub(r.start).Round(time.Second))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// backfillReturned is why the harness stops waiting when all went well
// enough: fsctl answered and nothing is left pending or running.
const backfillReturned = "fsctl backfill returned"

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// finished reports whether the backfill is over: fsctl returned, or every
// revenue record is completed.
func (r *run) finished() bool {
	return !r.backfill.running() || r.rec.states(r.revenue)["completed"] == len(r.revenue)
}

// fault is one injected fault, at the instant it took effect.
type fault struct {
	at     time.Time
	class  string // "worker", "coordinator", "nats", "s3"
	action string // "SIGKILL", "SIGSTOP", "SIGCONT", "restart", "error"
	target string // a worker's id (w2-g1), a coordinator's id, a nats node, "s3"
	note   string
}

// timeline is the faults of one run, in order.
type timeline struct {
	mu     sync.Mutex
	faults []fault
}

// add notes a fault that took effect at at.
func (tl *timeline) add(at time.Time, class, action, target, note string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.faults = append(tl.faults, fault{at: at, class: class, action: action, target: target, note: note})
}

func (tl *timeline) all() []fault {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]fault(nil), tl.faults...)
}
