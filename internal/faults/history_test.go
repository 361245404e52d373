//go:build faults

package faults

import (
	"fmt"
	"sort"
	"time"

	"github.com/flowstone-go/flowstone"
)

// execution is one execution of an asset that reached a completed record:
// the revisions of one key that share run, worker, attempt and start.
type execution struct {
	key       string
	run       string
	worker    string
	attempt   int
	started   time.Time
	completed time.Time
}

func (e execution) String() string {
	return fmt.Sprintf("%s by %s attempt %d, %s to %s", e.run, e.worker, e.attempt,
		e.started.Format("15:04:05.000"), e.completed.Format("15:04:05.000"))
}

// findings is what the records' history shows.
type findings struct {
	executions     int // executions that reached a completed record
	dupExplained   int // extra executions in one run that a kill or stop of the first explains
	dupUnexplained int // extra executions in one run that nothing explains
	overlapping    int // extra executions that started before the first one ended: two at once
	recomputed     int // keys completed in more than one run (nothing forces or invalidates here)
	overwritten    int // completed records later replaced by another state or deleted
	stale          int // writes of an older attempt, or a completed record of an execution that started before the one it replaced, in one run
	examples       []string
}

func (fd *findings) example(format string, args ...any) {
	if len(fd.examples) < 12 {
		fd.examples = append(fd.examples, fmt.Sprintf(format, args...))
	}
}

// analyse reads the revisions (in stream order) of every key in keys.
func analyse(revs []revision, keys []string, faults []fault) findings {
	var fd findings
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	type keyState struct {
		completed  bool                 // the latest revision holds a value
		maxAttempt map[string]int       // run → the highest attempt written so far
		lastStart  map[string]time.Time // run → the start of the execution whose completed record was written last
		execs      []execution
		seen       map[string]bool
	}
	byKey := map[string]*keyState{}
	for _, rv := range revs {
		if !want[rv.key] {
			continue
		}
		ks := byKey[rv.key]
		if ks == nil {
			ks = &keyState{maxAttempt: map[string]int{}, lastStart: map[string]time.Time{}, seen: map[string]bool{}}
			byKey[rv.key] = ks
		}
		rec := rv.rec
		if ks.completed && !rec.Materialized() {
			fd.overwritten++
			fd.example("%s: completed value replaced by %s at %s", rv.key, describe(rec), rv.at.Format("15:04:05.000"))
		}
		ks.completed = rec.Materialized()
		if rec == nil || rec.StartedAt == nil || rec.Attempt == 0 {
			continue // a delete, or a coordinator's pending mark
		}
		if top := ks.maxAttempt[rec.RunID]; rec.Attempt < top {
			fd.stale++
			fd.example("%s: attempt %d (%s) wrote %s after attempt %d had written", rv.key, rec.Attempt, rec.Worker, rec.State, top)
		}
		ks.maxAttempt[rec.RunID] = max(ks.maxAttempt[rec.RunID], rec.Attempt)
		if rec.State != flowstone.StateCompleted {
			continue
		}
		if prev, ok := ks.lastStart[rec.RunID]; ok && rec.StartedAt.Before(prev) && rec.Attempt >= ks.maxAttempt[rec.RunID] {
			fd.stale++
			fd.example("%s: %s's execution started at %s replaced the record of one started later, at %s", rv.key, rec.Worker,
				rec.StartedAt.Format("15:04:05.000"), prev.Format("15:04:05.000"))
		}
		ks.lastStart[rec.RunID] = *rec.StartedAt
		id := fmt.Sprintf("%s|%s|%d|%d", rec.RunID, rec.Worker, rec.Attempt, rec.StartedAt.UnixNano())
		if ks.seen[id] {
			continue
		}
		ks.seen[id] = true
		e := execution{key: rv.key, run: rec.RunID, worker: rec.Worker, attempt: rec.Attempt, started: *rec.StartedAt, completed: rv.at}
		if rec.CompletedAt != nil {
			e.completed = *rec.CompletedAt
		}
		ks.execs = append(ks.execs, e)
	}
	for key, ks := range byKey {
		fd.executions += len(ks.execs)
		runs := map[string][]execution{}
		for _, e := range ks.execs {
			runs[e.run] = append(runs[e.run], e)
		}
		if len(runs) > 1 {
			fd.recomputed++
			fd.example("%s: completed in %d runs", key, len(runs))
		}
		for _, es := range runs {
			sort.Slice(es, func(i, j int) bool { return es[i].started.Before(es[j].started) })
			for _, later := range es[1:] {
				if later.started.Before(es[0].completed) {
					fd.overlapping++
				}
				why, ok := explain(es[0], later, faults)
				if ok {
					fd.dupExplained++
				} else {
					fd.dupUnexplained++
				}
				fd.example("%s executed twice in run %s: first %s; again %s: %s", key, es[0].run, es[0], later, why)
			}
		}
	}
	return fd
}

// explain says whether a kill (or stop) of the first execution preceded
// its record, so that the fleet could not know the work was done when it
// started it again.
func explain(first, later execution, faults []fault) (string, bool) {
	if !later.started.Before(first.completed) {
		return "unexplained: it started after the first execution's completed record was written", false
	}
	for _, f := range faults {
		if f.at.Before(first.started) || f.at.After(first.completed) {
			continue
		}
		switch {
		case f.class == "worker" && (f.action == "SIGKILL" || f.action == "SIGSTOP") && f.target == first.worker,
			(f.class == "coordinator" || f.class == "nats") && f.action == "SIGKILL":
			return fmt.Sprintf("explained: %s %s %s during the first execution", f.action, f.class, f.target), true
		}
	}
	return "unexplained: no kill or stop of its worker, of a coordinator or of NATS during the first execution", false
}

func describe(rec *flowstone.Materialization) string {
	if rec == nil {
		return "a delete"
	}
	s := string(rec.State)
	if rec.Worker != "" {
		s += " by " + rec.Worker
	}
	if rec.Error != nil {
		s += " (" + rec.Error.Error() + ")"
	}
	return s
}
