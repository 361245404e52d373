package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// TestAutomationCommands: fsctl schedules and sensors list the fleet's,
// with --json and as a table; schedule and sensor pause and resume them.
func TestAutomationCommands(t *testing.T) {
	var list struct {
		Schedules []flowstone.ScheduleStatus `json:"schedules"`
	}
	ok(t, &list, "schedules", "clitest")
	if len(list.Schedules) != 1 {
		t.Fatalf("schedules of clitest: %+v", list)
	}
	s := list.Schedules[0]
	next := time.Date(time.Now().Year()+1, 1, 1, 0, 0, 0, 0, mustZone(t, "Europe/Paris"))
	if s.Name != "new_year" || s.Cron != "0 0 1 1 *" || s.TimeZone != "Europe/Paris" || s.Paused || s.NextTick == nil ||
		!s.NextTick.Equal(next) || s.Mapping != "previous_day" || s.CatchUp != "latest" {
		t.Fatalf("schedule: %+v (next tick want %v)", s, next)
	}
	ok(t, &map[string]any{}, "schedule", "pause", "clitest", "new_year")
	list.Schedules = nil
	ok(t, &list, "schedules")
	found := false
	for _, s := range list.Schedules {
		if s.Pipeline == "clitest" && s.Name == "new_year" {
			found = true
			if !s.Paused || s.NextTick != nil {
				t.Fatalf("paused schedule: %+v", s)
			}
		}
	}
	if !found {
		t.Fatalf("fsctl schedules without a pipeline leaves clitest out: %+v", list)
	}
	r := fsctl(t, append([]string{"schedules", "clitest"}, server(t)...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "NEXT TICK") || !strings.Contains(r.stdout, "new_year") || !strings.Contains(r.stdout, "paused") {
		t.Fatalf("table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	ok(t, &map[string]any{}, "schedule", "resume", "clitest", "new_year")
	list.Schedules = nil
	ok(t, &list, "schedules", "clitest")
	if list.Schedules[0].Paused {
		t.Fatal("resumed schedule still paused")
	}

	var sensors struct {
		Sensors []flowstone.SensorStatus `json:"sensors"`
	}
	ok(t, &sensors, "sensors", "clitest")
	if len(sensors.Sensors) != 1 || sensors.Sensors[0].Name != "nothing" || sensors.Sensors[0].IntervalMS != time.Hour.Milliseconds() {
		t.Fatalf("sensors: %+v", sensors)
	}
	ok(t, &map[string]any{}, "sensor", "pause", "clitest", "nothing")
	sensors.Sensors = nil
	ok(t, &sensors, "sensors", "clitest")
	if !sensors.Sensors[0].Paused {
		t.Fatalf("paused sensor: %+v", sensors.Sensors[0])
	}
	ok(t, &map[string]any{}, "sensor", "resume", "clitest", "nothing")

	for _, args := range [][]string{{"schedule", "pause", "clitest", "weekly"}, {"schedule", "pause", "clitest", "nothing"}, {"sensor", "pause", "clitest", "new_year"}} {
		r = fsctl(t, append(append(args, "--json"), server(t)...)...)
		if typ, msg, _ := errorJSON(t, r); r.code == 0 || typ != "not_found" || !strings.Contains(msg, "Available") {
			t.Fatalf("%v: exit %d, %s %q", args, r.code, typ, msg)
		}
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
