package protocol_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/protocol"
)

func TestSubjects(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{protocol.APISubject(protocol.VerbRun), "flowstone.api.run"},
		{protocol.APISubject(protocol.VerbPipelines), "flowstone.api.pipelines"},
		{protocol.TaskSubject("sales", 0), "flowstone.task.sales.p0"},
		{protocol.TaskSubject("sales", protocol.MaxPriority), "flowstone.task.sales.p3"},
		{protocol.TaskFilter(3), "flowstone.task.*.p3"},
		{protocol.ScheduleSubject("r1"), "flowstone.sched.r1"},
		{protocol.ScheduleSubject(protocol.TaskID("r1", "sum", "x", 2)), "flowstone.sched." + protocol.TaskID("r1", "sum", "x", 2)},
		{protocol.StartSubject("sales"), "flowstone.start.sales"},
		{protocol.DoneSubject("sales"), "flowstone.done.sales"},
		{protocol.EventSubject("sales", protocol.EventStorageLoadStart), "flowstone.event.sales.storage.load.start"},
		{protocol.CancelSubject("r1"), "flowstone.cancel.r1"},
		{protocol.ManifestKey("sales", "w-1"), "sales.w-1"},
		{protocol.BellSubject(protocol.TaskSubject("sales", 2)), "flowstone.bell.sales.p2"},
		{protocol.BellFilter("sales"), "flowstone.bell.sales.*"},
		{protocol.StagedName(strings.Repeat("0f", 32)), "sha256/" + strings.Repeat("0f", 32)},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestSubjectsMatchTheirWildcards checks each subject against the wildcard
// its stream or consumer uses, with the NATS token rules.
func TestSubjectsMatchTheirWildcards(t *testing.T) {
	for _, tc := range []struct{ subject, filter string }{
		{protocol.APISubject(protocol.VerbGet), protocol.APISubjects},
		{protocol.TaskSubject("sales", 2), protocol.TaskSubjects},
		{protocol.TaskSubject("sales", 2), protocol.TaskFilter(2)},
		{protocol.ScheduleSubject(protocol.TaskID("r1", "sum", "*", 1)), protocol.ScheduleSubjects},
		{protocol.StartSubject("sales"), protocol.StartSubjects},
		{protocol.DoneSubject("sales"), protocol.DoneSubjects},
		{protocol.EventSubject("sales", protocol.EventScatterItemStop), protocol.EventSubjects},
		{protocol.CancelSubject("r1"), protocol.CancelSubjects},
	} {
		if !subjectMatches(tc.filter, tc.subject) {
			t.Errorf("%q does not match %q", tc.subject, tc.filter)
		}
	}
	if !subjectMatches(protocol.BellFilter("sales"), protocol.BellSubject(protocol.TaskSubject("sales", 3))) {
		t.Error("a pipeline's bell filter misses its priority-3 bell")
	}
	if subjectMatches(protocol.BellFilter("sales"), protocol.BellSubject(protocol.TaskSubject("sales2", 0))) {
		t.Error("a pipeline's bell filter matches another pipeline's bell")
	}
	for _, s := range append(protocol.TaskStreamSubjects(), protocol.DoneSubjects, protocol.EventSubjects) {
		if subjectMatches(s, protocol.BellSubject(protocol.TaskSubject("sales", 0))) {
			t.Errorf("stream subject %q would store bells", s)
		}
	}
	if subjectMatches(protocol.TaskFilter(1), protocol.TaskSubject("sales", 2)) {
		t.Error("priority filters overlap")
	}
	for _, s := range protocol.TaskStreamSubjects() {
		for _, other := range []string{protocol.DoneSubjects, protocol.EventSubjects, protocol.APISubjects} {
			if subjectMatches(s, strings.TrimSuffix(other, ">")+"x") {
				t.Errorf("task stream subject %q captures %q", s, other)
			}
		}
	}
}

// subjectMatches applies NATS wildcard rules: "*" matches one token, ">"
// the rest (at least one).
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

func TestSubjectBuildersPanicOnBadInput(t *testing.T) {
	for name, build := range map[string]func(){
		"unknown verb":          func() { protocol.APISubject("delete") },
		"task pipeline":         func() { protocol.TaskSubject("a.>", 0) },
		"task priority":         func() { protocol.TaskSubject("sales", 4) },
		"filter priority":       func() { protocol.TaskFilter(-1) },
		"schedule id":           func() { protocol.ScheduleSubject("a..b") },
		"start pipeline":        func() { protocol.StartSubject("") },
		"done pipeline":         func() { protocol.DoneSubject("*") },
		"event pipeline":        func() { protocol.EventSubject("a b", protocol.EventRunStart) },
		"event kind":            func() { protocol.EventSubject("sales", "run.>") },
		"cancel run":            func() { protocol.CancelSubject("r.1") },
		"manifest worker":       func() { protocol.ManifestKey("sales", "host.example") },
		"manifest pipeline":     func() { protocol.ManifestKey("9", "w1") },
		"task id attempt":       func() { protocol.TaskID("r1", "sum", "p", 0) },
		"task id asset":         func() { protocol.TaskID("r1", "a.b", "p", 1) },
		"task id run":           func() { protocol.TaskID("", "sum", "p", 1) },
		"event kind uppercase":  func() { protocol.EventSubject("sales", "RUN.START") },
		"staged name empty":     func() { protocol.StagedName("") },
		"staged name uppercase": func() { protocol.StagedName(strings.Repeat("AB", 32)) },
		"staged name path":      func() { protocol.StagedName("../" + strings.Repeat("ab", 31)) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			build()
		})
	}
}

func TestVerbs(t *testing.T) {
	want := []string{"run", "get", "exists", "status", "cancel", "invalidate", "backfill", "graph", "assets", "info", "pipelines", "backfill_status",
		"approve", "reject", "approvals", "signal", "schedules", "sensors", "automation_pause", "automation_resume"}
	if got := protocol.Verbs(); !slices.Equal(got, want) {
		t.Fatalf("Verbs() = %v, want %v", got, want)
	}
	protocol.Verbs()[0] = "mutated"
	if protocol.Verbs()[0] != "run" {
		t.Error("Verbs shares its slice")
	}
	for _, v := range want {
		if got := protocol.APISubject(v); got != "flowstone.api."+v {
			t.Errorf("APISubject(%q) = %q", v, got)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		s                string
		name, id, taskID bool
	}{
		{"sales", true, true, true},
		{"Sales_2025-eu", true, true, true},
		{"x", true, true, true},
		{"2025", false, true, true},
		{"_x", false, true, true},
		{"-", false, true, true},
		{"a.b", false, false, true},
		{"", false, false, false},
		{"a b", false, false, false},
		{"a*", false, false, false},
		{"a>", false, false, false},
		{"é", false, false, false},
		{"a\x00", false, false, false},
		{".a", false, false, false},
		{"a.", false, false, false},
		{"a..b", false, false, false},
		{"a=b", false, false, false},
		{strings.Repeat("a", protocol.MaxNameBytes), true, true, true},
		{strings.Repeat("a", protocol.MaxNameBytes+1), false, false, true},
		{strings.Repeat("a.", protocol.MaxTaskIDBytes/2-1) + "ab", false, false, true},
		{strings.Repeat("a.", protocol.MaxTaskIDBytes/2) + "a", false, false, false},
	} {
		if got := protocol.ValidName(tc.s) == nil; got != tc.name {
			t.Errorf("ValidName(%q) ok = %v, want %v", tc.s, got, tc.name)
		}
		if got := protocol.ValidID(tc.s) == nil; got != tc.id {
			t.Errorf("ValidID(%q) ok = %v, want %v", tc.s, got, tc.id)
		}
		if got := protocol.ValidTaskID(tc.s) == nil; got != tc.taskID {
			t.Errorf("ValidTaskID(%q) ok = %v, want %v", tc.s, got, tc.taskID)
		}
	}
	err := protocol.ValidName("a b")
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeBadRequest {
		t.Errorf("ValidName error = %#v, want a *protocol.Error with bad_request", err)
	}
}

func TestTaskID(t *testing.T) {
	id := protocol.TaskID("r1", "sum", "2025-01-15", 1)
	if protocol.ValidTaskID(id) != nil {
		t.Fatalf("TaskID %q is not a ValidTaskID", id)
	}
	if !strings.HasPrefix(id, "r1.sum.") || !strings.HasSuffix(id, ".1") {
		t.Errorf("TaskID = %q", id)
	}
	if id != protocol.TaskID("r1", "sum", "2025-01-15", 1) {
		t.Error("TaskID is not deterministic")
	}
	longest := protocol.TaskID(strings.Repeat("r", protocol.MaxIDBytes), "a"+strings.Repeat("s", protocol.MaxNameBytes-1), strings.Repeat("p", protocol.MaxPartitionBytes), math.MaxInt32)
	if err := protocol.ValidTaskID(longest); err != nil {
		t.Errorf("the longest TaskID is refused: %v", err)
	}
	seen := map[string]bool{}
	for _, in := range []struct {
		run, asset, partition string
		attempt               int
	}{
		{"r1", "sum", "2025-01-15", 1}, {"r1", "sum", "2025-01-15", 2}, {"r1", "sum", "2025-01-16", 1},
		{"r1", "sum", "", 1}, {"r1", "sum", "default", 1}, {"r2", "sum", "2025-01-15", 1}, {"r1", "sun", "2025-01-15", 1},
		{"r1", "a", "b.c", 1}, {"r1", "a-b", "c", 1},
	} {
		id := protocol.TaskID(in.run, in.asset, in.partition, in.attempt)
		if seen[id] {
			t.Errorf("TaskID%v repeats %q", in, id)
		}
		seen[id] = true
	}
}
