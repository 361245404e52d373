package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
)

// firedTicks returns the ticks a coordinator's log says it fired
// (schedule_fired, one line per run it started).
func firedTicks(p *proc) []string {
	var out []string
	for _, l := range p.stderr.all() {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "schedule_fired" && m["schedule"] == "every_second" {
			out = append(out, fmt.Sprint(m["tick"]))
		}
	}
	return out
}

// TestScheduleFiresOncePerTickAcrossCoordinators: a daily asset's
// schedule, every second, with two coordinator processes up, fires each
// tick once (one of them starts its run, for the day before the tick);
// once the coordinator that fired the latest tick is SIGKILLed, the other
// goes on firing, still once per tick. The sensor of the same pipeline is
// evaluated by the worker once per interval throughout.
func TestScheduleFiresOncePerTickAcrossCoordinators(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tickworker")
	if out, err := exec.Command("go", "build", "-o", path, "github.com/flowstone-go/flowstone/internal/e2e/tickworker").CombinedOutput(); err != nil {
		t.Fatalf("go build of the tick worker: %v\n%s", err, out)
	}
	f := newFleet(t)
	coords := []*proc{f.coordinator("c1"), f.coordinator("c2")}
	start(t, "tickworker", path, "--nats-url", f.url, "--storage", "file", "--file-dir", f.dir, "--id", "tick-1", "--http", "", "--log-level", "debug").
		waitLog(t, "worker_started")

	schedule := func() flowstone.ScheduleStatus {
		var out struct {
			Schedules []flowstone.ScheduleStatus `json:"schedules"`
		}
		r := f.fsctl("schedules", "ticker")
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || len(out.Schedules) != 1 {
			return flowstone.ScheduleStatus{}
		}
		return out.Schedules[0]
	}
	var before flowstone.ScheduleStatus
	f.eventually("the schedule to fire 3 ticks", func() (bool, string) {
		before = schedule()
		return before.Fired >= 3, fmt.Sprintf("%+v", before)
	})
	if before.LastPartition == "" || before.TimeZone != "Europe/Paris" || before.Mapping != "previous_day" {
		t.Fatalf("schedule: %+v", before)
	}

	// Which coordinator fired the latest tick: it goes.
	last := before.LastTick.UTC().Format("2006-01-02T15:04:05Z07:00")
	victim, survivor := coords[0], coords[1]
	f.eventually("a coordinator to log the latest tick", func() (bool, string) {
		for i, c := range coords {
			for _, tick := range firedTicks(c) {
				if sameTick(tick, last) {
					victim, survivor = c, coords[1-i]
					return true, ""
				}
			}
		}
		return false, "tick " + last + " in no log"
	})
	victim.kill(t)
	f.eventually("the survivor to fire 3 more ticks", func() (bool, string) {
		s := schedule()
		return s.Fired >= before.Fired+3, fmt.Sprintf("%+v", s)
	})

	// Each tick fired once: no tick in two logs, or twice in one.
	seen := map[string]string{}
	for _, c := range coords {
		for _, tick := range firedTicks(c) {
			if other, dup := seen[tick]; dup {
				t.Errorf("tick %s fired by %s and by %s", tick, other, c.name)
			}
			seen[tick] = c.name
		}
	}
	if n := len(firedTicks(survivor)); n < 3 {
		t.Errorf("the survivor fired %d ticks after the kill", n)
	}
	after := schedule()
	ticks := make([]string, 0, len(seen))
	for tick := range seen {
		ticks = append(ticks, tick)
	}
	sort.Strings(ticks)
	if int64(len(ticks)) < after.Fired-1 { // the latest may be fired and not logged yet when read
		t.Errorf("%d ticks fired, %d in the logs: %v", after.Fired, len(ticks), ticks)
	}
	// Every tick's run is recorded, one per tick.
	runs := f.runRecords("ticker", "daily", after.LastPartition)
	perTick := map[string]int{}
	for _, r := range runs {
		if strings.HasPrefix(r.RunID, "sched-every_second-") {
			perTick[strings.Split(r.RunID, "-")[2]]++
		}
	}
	for tick, n := range perTick {
		if n != 1 {
			t.Errorf("tick %s has %d runs", tick, n)
		}
	}
	if len(perTick) < 6 {
		t.Errorf("%d ticks have runs, want at least 6: %v", len(perTick), perTick)
	}

	// The sensor went on too: its cursor grows by one dot per evaluation,
	// so a lost or repeated evaluation would show.
	var sensors struct {
		Sensors []flowstone.SensorStatus `json:"sensors"`
	}
	f.ok(&sensors, "sensors", "ticker")
	if len(sensors.Sensors) != 1 {
		t.Fatalf("sensors: %+v", sensors)
	}
	s := sensors.Sensors[0]
	if s.Evaluations < 3 || int64(len(s.Cursor)) != s.Evaluations-s.Failures {
		t.Errorf("sensor: %d evaluations, %d failures, cursor %q", s.Evaluations, s.Failures, s.Cursor)
	}
}

// sameTick compares a logged tick (zerolog's RFC 3339) with a tick.
func sameTick(logged, tick string) bool {
	return strings.TrimSuffix(logged, "Z") == strings.TrimSuffix(strings.TrimSuffix(tick, "+00:00"), "Z")
}
