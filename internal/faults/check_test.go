//go:build faults

package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
)

// outcome is what one run measured.
type outcome struct {
	scenario scenario
	skipped  string
	size     size
	faults   []fault
	start    time.Time     // when the backfill started
	reason   string        // why the harness stopped waiting
	elapsed  time.Duration // from the backfill's start to then
	workDone time.Duration // until every record was completed; 0 if never
	backfill string        // what fsctl backfill answered

	states      map[string]map[string]int // asset → latest state → count, read from the bucket
	unreadable  int                       // records that could not be read
	objects     int                       // results read back (stored objects and inline)
	objBad      []string                  // results missing or with another checksum
	compared    int                       // records compared with the baseline
	differ      []string                  // records whose checksum differs from the baseline's
	sums        map[string]string         // key → SHA-256 of each completed record
	sampleVals  map[string]string         // day → fsctl get revenue's value
	sampled     int
	sampleBad   []string
	history     findings
	missed      uint64 // revisions the recorder never saw
	logs        logFindings
	recordErrs  []string // failed records' errors, grouped
	failures    []string
	checkErrors []string // the harness could not check something
	starts      []string // daemons that exited at start-up and were started again
	left        []string // records left pending or running, some of them
	hung        []string // the daemons' goroutines waiting on the network when the backfill stalled
}

// check measures the run once the harness has stopped waiting.
func (r *run) check(reason string, base *outcome) *outcome {
	o := &outcome{scenario: r.sc, size: r.sz, faults: r.tl.all(), start: r.start, reason: reason, elapsed: time.Since(r.start),
		workDone: r.workDone, sums: map[string]string{}, sampleVals: map[string]string{}}
	o.backfill = r.backfillAnswer()
	o.starts = r.f.startFailures

	recs, errs, err := readRecords(r.f.js, r.keys)
	if err != nil {
		o.checkErrors = append(o.checkErrors, err.Error())
	}
	o.unreadable = len(errs)
	o.states = map[string]map[string]int{}
	errCount := map[string]int{}
	for _, a := range assets {
		o.states[a] = map[string]int{}
	}
	for _, day := range r.days {
		for _, a := range assets {
			k := bridge.MaterializationKey("daily_sales", a, day)
			rec := recs[k]
			switch {
			case errs[k] != nil:
				o.states[a]["unreadable"]++
			case rec == nil:
				o.states[a]["missing"]++
			default:
				o.states[a][string(rec.State)]++
				if (rec.State == flowstone.StatePending || rec.State == flowstone.StateRunning) && len(o.left) < 6 {
					since := "-"
					if rec.StartedAt != nil {
						since = rec.StartedAt.Format("15:04:05.000")
					}
					o.left = append(o.left, fmt.Sprintf("%s: %s, worker %q, run %s, attempt %d, started %s", k, rec.State, rec.Worker, rec.RunID, rec.Attempt, since))
				}
				if rec.Error != nil {
					errCount[a+": "+string(rec.State)+": "+clip(genericError(rec.Error.Error()), 220)]++
				}
			}
		}
	}
	o.recordErrs = topCounts(errCount, 8)

	objs, err := newObjects(r.f)
	if err != nil {
		o.checkErrors = append(o.checkErrors, err.Error())
	}
	failing := map[string]int{} // storage → reads failed in a row
	for _, k := range r.keys {
		rec := recs[k]
		if rec == nil || rec.State != flowstone.StateCompleted || rec.Value == nil || objs == nil {
			continue
		}
		o.sums[k] = rec.Value.SHA256
		o.objects++
		if failing[rec.Value.Storage] >= 10 {
			// Each read waits callWait: a store that is gone would hold
			// the check for minutes.
			o.objBad = append(o.objBad, fmt.Sprintf("%s (%s %s): not read, the last 10 reads of %s failed", k, rec.Value.Storage, rec.Value.ObjectKey, rec.Value.Storage))
			continue
		}
		sum, err := objs.sum(rec)
		if err != nil {
			failing[rec.Value.Storage]++
		} else {
			failing[rec.Value.Storage] = 0
		}
		switch {
		case err != nil:
			o.objBad = append(o.objBad, fmt.Sprintf("%s (%s %s): %v", k, rec.Value.Storage, rec.Value.ObjectKey, err))
		case sum != rec.Value.SHA256:
			o.objBad = append(o.objBad, fmt.Sprintf("%s (%s %s): sha256 %s, record says %s", k, rec.Value.Storage, rec.Value.ObjectKey, sum, rec.Value.SHA256))
		}
	}
	if base != nil {
		for k, sum := range o.sums {
			if want, ok := base.sums[k]; ok {
				o.compared++
				if sum != want {
					o.differ = append(o.differ, fmt.Sprintf("%s: sha256 %s, undisturbed %s", k, sum, want))
				}
			}
		}
	}
	r.readBack(o, base)

	revs, missed := r.rec.history()
	o.missed = missed
	o.history = analyse(revs, r.keys, o.faults)
	if o.logs, err = readLogs(r.f.allProcs(), r.days); err != nil {
		o.checkErrors = append(o.checkErrors, "logs: "+err.Error())
	}
	if reason != backfillReturned {
		r.dumpWaits(o)
	}
	o.judge()
	return o
}

// dumpWaits asks every daemon still running for its goroutines, which
// ends it: where work hangs is what a stalled backfill needs explained.
func (r *run) dumpWaits(o *outcome) {
	for _, d := range r.f.slots("") {
		p := r.f.current(d)
		lines, err := waitingOnIO(p)
		if err != nil {
			o.checkErrors = append(o.checkErrors, "goroutine dump: "+err.Error())
			continue
		}
		for i, l := range lines {
			if i == 6 {
				o.hung = append(o.hung, fmt.Sprintf("%s: … %d more", p.name, len(lines)-6))
				break
			}
			o.hung = append(o.hung, p.name+": "+l)
		}
	}
}

// backfillAnswer is what fsctl backfill answered, or that it had not.
func (r *run) backfillAnswer() string {
	p := r.backfill
	if p.running() {
		p.kill()
		return fmt.Sprintf("no answer after %v (killed)", time.Since(r.start).Round(time.Second))
	}
	out := strings.TrimSpace(p.stdout.String())
	var stats flowstone.BackfillStats
	var e struct {
		Error *struct{ Type, Message string } `json:"error"`
	}
	switch {
	case json.Unmarshal([]byte(out), &e) == nil && e.Error != nil:
		return fmt.Sprintf("exit %d: %s: %s", p.cmd.ProcessState.ExitCode(), e.Error.Type, clip(e.Error.Message, 200))
	case json.Unmarshal([]byte(out), &stats) == nil && out != "":
		return fmt.Sprintf("exit %d: %d succeeded, %d failed, %d skipped", p.cmd.ProcessState.ExitCode(), stats.Succeeded, stats.Failed, stats.Skipped)
	default:
		return fmt.Sprintf("exit %d: %q", p.cmd.ProcessState.ExitCode(), clip(out, 200))
	}
}

// sampleDays are the partitions read back with fsctl: the first, the last
// and some in between, the same for every scenario of a seed.
func sampleDays(days []string, n int) []string {
	rng := rand.New(rand.NewPCG(*seedFlag, 0x5a3))
	pick := map[string]bool{days[0]: true, days[len(days)-1]: true}
	for len(pick) < min(n, len(days)) {
		pick[days[rng.IntN(len(days))]] = true
	}
	out := make([]string, 0, len(pick))
	for d := range pick {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// readBack reads the sample's revenue with fsctl get and status, as a user
// would, and compares the values with the baseline's.
func (r *run) readBack(o *outcome, base *outcome) {
	for _, day := range sampleDays(r.days, r.sz.sample) {
		o.sampled++
		st := r.f.fsctl(30*time.Second, "status", "daily_sales", "revenue", "--partition", day)
		var status struct {
			State string `json:"state"`
		}
		if st.code != 0 || json.Unmarshal([]byte(st.stdout), &status) != nil || status.State != "completed" {
			o.sampleBad = append(o.sampleBad, fmt.Sprintf("status %s: %s", day, clip(compact(st.stdout)+" "+st.stderr, 300)))
			continue
		}
		g := r.f.fsctl(30*time.Second, "get", "daily_sales", "revenue", "--partition", day)
		var got struct {
			Value json.RawMessage `json:"value"`
		}
		if g.code != 0 || json.Unmarshal([]byte(g.stdout), &got) != nil || len(got.Value) == 0 {
			o.sampleBad = append(o.sampleBad, fmt.Sprintf("get %s: %s", day, clip(compact(g.stdout)+" "+g.stderr, 300)))
			continue
		}
		val := compact(string(got.Value))
		o.sampleVals[day] = val
		if base != nil {
			if want, ok := base.sampleVals[day]; ok && want != val {
				o.sampleBad = append(o.sampleBad, fmt.Sprintf("get %s = %s, undisturbed %s", day, val, want))
			}
		}
	}
}

// judge lists the checks that failed, with their numbers.
func (o *outcome) judge() {
	fail := func(format string, args ...any) { o.failures = append(o.failures, fmt.Sprintf(format, args...)) }
	n := o.size.partitions
	if c := o.states["revenue"]["completed"]; c < n {
		fail("%d of %d partitions not completed (%s)", n-c, n, stateList(o.states["revenue"]))
	}
	left := 0
	for _, a := range assets {
		left += o.states[a]["pending"] + o.states[a]["running"]
	}
	if left > 0 {
		fail("%d records left pending or running", left)
	}
	if o.unreadable > 0 {
		fail("%d records unreadable", o.unreadable)
	}
	if len(o.objBad) > 0 {
		fail("%d of %d results missing or with a wrong checksum", len(o.objBad), o.objects)
	}
	if len(o.differ) > 0 {
		fail("%d of %d results differ from the undisturbed run", len(o.differ), o.compared)
	}
	if len(o.sampleBad) > 0 {
		fail("%d of %d fsctl status/get read-backs wrong", len(o.sampleBad), o.sampled)
	}
	h := o.history
	if h.dupUnexplained > 0 {
		fail("%d unexplained duplicate executions in one run", h.dupUnexplained)
	}
	if h.overlapping > 0 {
		fail("%d executions recorded completed while another of the same run ran (two at once)", h.overlapping)
	}
	if h.overwritten > 0 {
		fail("%d completed records overwritten", h.overwritten)
	}
	if h.stale > 0 {
		fail("%d stale writes (an older attempt or execution replaced a newer one's record)", h.stale)
	}
	if h.recomputed > 0 {
		fail("%d asset-partitions recomputed in a second run", h.recomputed)
	}
	if !strings.HasPrefix(o.backfill, "exit 0:") {
		fail("fsctl backfill: %s", o.backfill)
	}
	for _, e := range o.checkErrors {
		fail("not checked: %s", e)
	}
}

// report logs the run's measurements and fails the test for each check
// that failed.
func (o *outcome) report(t *testing.T) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s (%s storage, %d nats node(s)): %s\n", o.scenario.name, o.scenario.fleet.storage, o.scenario.fleet.natsNodes, o.scenario.injected)
	done := "never"
	if o.workDone > 0 {
		done = "after " + o.workDone.Round(time.Millisecond).String()
	}
	fmt.Fprintf(&b, "  stopped waiting after %v: %s; all records completed: %s\n", o.elapsed.Round(time.Millisecond), o.reason, done)
	for _, s := range o.starts {
		fmt.Fprintf(&b, "  start-up: %s\n", s)
	}
	for _, f := range o.faults {
		fmt.Fprintf(&b, "  fault +%v: %s %s %s %s\n", f.at.Sub(o.start).Round(time.Millisecond), f.class, f.action, f.target, f.note)
	}
	fmt.Fprintf(&b, "  fsctl backfill: %s\n", o.backfill)
	for _, a := range assets {
		fmt.Fprintf(&b, "  %s records: %s\n", a, stateList(o.states[a]))
	}
	for _, e := range o.recordErrs {
		fmt.Fprintf(&b, "    %s\n", e)
	}
	for _, l := range o.left {
		fmt.Fprintf(&b, "    left %s\n", l)
	}
	if len(o.hung) > 0 {
		fmt.Fprintf(&b, "  goroutines waiting on NATS or S3 when the harness stopped waiting (SIGQUIT dumps):\n")
	}
	for _, l := range o.hung {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	fmt.Fprintf(&b, "  results read back: %d, bad %d; compared with the undisturbed run: %d, differ %d; fsctl read-backs %d, wrong %d\n",
		o.objects, len(o.objBad), o.compared, len(o.differ), o.sampled, len(o.sampleBad))
	for _, list := range [][]string{o.objBad, o.differ, o.sampleBad} {
		for i, s := range list {
			if i == 5 {
				fmt.Fprintf(&b, "    … %d more\n", len(list)-5)
				break
			}
			fmt.Fprintf(&b, "    %s\n", s)
		}
	}
	h := o.history
	fmt.Fprintf(&b, "  executions recorded completed: %d; duplicates in one run: %d explained, %d unexplained (%d at once); recomputed in a second run: %d; completed records overwritten: %d; stale writes: %d; revisions the recorder missed: %d\n",
		h.executions, h.dupExplained, h.dupUnexplained, h.overlapping, h.recomputed, h.overwritten, h.stale, o.missed)
	for _, e := range h.examples {
		fmt.Fprintf(&b, "    %s\n", e)
	}
	fmt.Fprintf(&b, "  completions reported by workers (task_succeeded): %d; asset-partitions reported twice in one run: %d (a redelivered task whose record is complete is reported again without executing)\n",
		o.logs.reported, o.logs.reportedTwice)
	fmt.Fprintf(&b, "  most frequent warnings and errors in the daemons' logs:\n")
	for _, l := range o.logs.top {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	t.Log(b.String())
	for _, f := range o.failures {
		t.Errorf("%s: %s", o.scenario.name, f)
	}
}

// often says how often the faults were injected.
func (o *outcome) often() string {
	if o.skipped != "" || len(o.faults) == 0 {
		return "-"
	}
	count := map[string]int{}
	var order []string
	for _, f := range o.faults {
		k := f.class + " " + f.action
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
	}
	parts := make([]string, 0, len(order))
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%d× %s", count[k], k))
	}
	span := o.faults[len(o.faults)-1].at.Sub(o.faults[0].at).Round(time.Second)
	return fmt.Sprintf("%s over %v", strings.Join(parts, ", "), span)
}

func stateList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func topCounts(m map[string]int, n int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	var out []string
	for i, k := range keys {
		if i == n {
			break
		}
		out = append(out, fmt.Sprintf("%d× %s", m[k], k))
	}
	return out
}

// compact is JSON text on one line (other text trimmed).
func compact(s string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) == nil {
		return b.String()
	}
	return strings.TrimSpace(s)
}

var (
	quoted = regexp.MustCompile(`"[^"]*"`)
	number = regexp.MustCompile(`[0-9]+`)
)

// genericError is an error message without the keys, ids and numbers
// that would make each one unique, so that errors can be counted by kind.
func genericError(s string) string {
	s = quoted.ReplaceAllStringFunc(s, func(q string) string {
		if strings.ContainsAny(q, "/0123456789") {
			return `"…"`
		}
		return q
	})
	return number.ReplaceAllString(s, "N")
}
