package protocol_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

// TestAutomationMessages: the automation's messages round-trip, and the
// checks refuse what a peer must not send.
func TestAutomationMessages(t *testing.T) {
	now := time.Date(2025, 3, 10, 2, 0, 0, 0, time.UTC)
	b, perr := protocol.EncodeSensorEvaluation(protocol.SensorEvaluation{V: 1, Pipeline: "sales", Sensor: "files", Cursor: "7", Now: now})
	wantOK(t, perr)
	ev, perr := protocol.DecodeSensorEvaluation(b)
	wantOK(t, perr)
	if ev.Cursor != "7" || !ev.Now.Equal(now) || ev.Sensor != "files" {
		t.Fatalf("round trip: %+v", ev)
	}
	out := protocol.SensorOutcome{V: 1, Runs: []protocol.SensorRun{{Asset: "revenue", Partition: "2025-03-01", RunKey: "f.csv"}}, Cursor: "8"}
	b, perr = protocol.EncodeSensorOutcome(out)
	wantOK(t, perr)
	back, perr := protocol.DecodeSensorOutcome(b)
	wantOK(t, perr)
	if len(back.Runs) != 1 || back.Runs[0].RunKey != "f.csv" || back.Cursor != "8" {
		t.Fatalf("round trip: %+v", back)
	}
	for name, bad := range map[string]protocol.SensorOutcome{
		"bad asset":   {V: 1, Runs: []protocol.SensorRun{{Asset: "*"}}},
		"long cursor": {V: 1, Cursor: strings.Repeat("x", protocol.MaxCursorBytes+1)},
		"long key":    {V: 1, Runs: []protocol.SensorRun{{Asset: "a", RunKey: strings.Repeat("k", protocol.MaxRunKeyBytes+1)}}},
	} {
		if _, perr := protocol.EncodeSensorOutcome(bad); perr == nil || perr.Code != protocol.CodeBadRequest {
			t.Errorf("%s: %v", name, perr)
		}
	}
	if got := protocol.SensorSubject("sales"); got != "flowstone.sensor.sales" {
		t.Errorf("SensorSubject = %s", got)
	}
	if got := protocol.AutomationKey("sched", "sales", "nightly"); got != "sched.sales.nightly" {
		t.Errorf("AutomationKey = %s", got)
	}
}

// TestManifestAutomation: a manifest's schedules must run its assets, and
// schedules and sensors share one set of names.
func TestManifestAutomation(t *testing.T) {
	m := protocol.Manifest{V: 1, Pipeline: "sales", Worker: "w1", UpdatedAt: time.Now(),
		Assets:    []protocol.AssetSpec{{Name: "orders"}},
		Schedules: []protocol.ScheduleSpec{{Name: "nightly", Cron: "0 2 * * *", TimeZone: "UTC", Assets: []string{"orders"}, Mapping: "previous_day", CatchUp: "latest"}},
		Sensors:   []protocol.SensorSpec{{Name: "files", IntervalMS: 1000, TimeoutMS: 1000}},
	}
	wantOK(t, m.Validate())
	for name, mutate := range map[string]func(*protocol.Manifest){
		"unknown asset":   func(m *protocol.Manifest) { m.Schedules[0].Assets = []string{"revenue"} },
		"shared name":     func(m *protocol.Manifest) { m.Sensors[0].Name = "nightly" },
		"bad policy":      func(m *protocol.Manifest) { m.Schedules[0].CatchUp = "some" },
		"no interval":     func(m *protocol.Manifest) { m.Sensors[0].IntervalMS = 0 },
		"empty selection": func(m *protocol.Manifest) { m.Schedules[0].Assets = nil },
	} {
		c := m
		c.Schedules = append([]protocol.ScheduleSpec(nil), m.Schedules...)
		c.Sensors = append([]protocol.SensorSpec(nil), m.Sensors...)
		mutate(&c)
		if perr := c.Validate(); perr == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
