package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/cli"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
)

// A backfill has an id: --async prints it and returns, --follow re-attaches
// to it (running or ended) and prints the counts and errors as the backfill
// itself does; an unknown id is not_found.
func TestBackfillFollowAndAsync(t *testing.T) {
	var stats flowstone.BackfillStats
	r := fsctl(t, append([]string{"backfill", "clitest", "broken", "--partitions", "f1,f2,f3", "--parallel", "3", "--json"}, server(t)...)...)
	if err := json.Unmarshal([]byte(r.stdout), &stats); r.code != cli.ExitFailed || err != nil {
		t.Fatalf("backfill with failures: exit %d, %v: %q", r.code, err, r.stdout)
	}
	if stats.ID == "" || stats.Failed != 3 || len(stats.Errors) != 3 {
		t.Fatalf("backfill = %+v", stats)
	}

	var again flowstone.BackfillStats
	r = fsctl(t, append([]string{"backfill", "--follow", stats.ID, "--json"}, server(t)...)...)
	if r.code != cli.ExitFailed {
		t.Fatalf("--follow of a backfill with failures: exit %d, stderr %q", r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &again); err != nil {
		t.Fatalf("--follow --json: %v: %q", err, r.stdout)
	}
	if again.ID != stats.ID || again.Failed != 3 || again.Errors["f2"] == nil || !strings.Contains(again.Errors["f2"].Message, "partition f2 is broken") {
		t.Errorf("--follow = %+v, want the backfill's counts and errors %+v", again, stats)
	}
	r = fsctl(t, append([]string{"backfill", "--follow", stats.ID, "--progress"}, server(t)...)...)
	if r.code != cli.ExitFailed || !strings.Contains(r.stdout, "0 succeeded, 3 failed, 0 skipped (of 3 partitions; backfill "+stats.ID+")") ||
		!strings.Contains(r.stdout, "f3: execution_failed") || !strings.Contains(r.stderr, "(3/3)") {
		t.Errorf("--follow, human: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}

	days := []string{"2022-03-01", "2022-03-02", "2022-03-03", "2022-03-04"}
	var accepted struct{ ID string }
	ok(t, &accepted, "backfill", "daily_sales", "revenue", "--partitions", strings.Join(days, ","), "--async")
	if accepted.ID == "" {
		t.Fatalf("--async printed no id")
	}
	ok(t, &again, "backfill", "--follow", accepted.ID)
	if again.ID != accepted.ID || again.Succeeded+again.Skipped != len(days) || again.Failed != 0 {
		t.Errorf("--follow of an async backfill = %+v", again)
	}

	fails(t, cli.ExitFailed, "not_found", "backfill", "--follow", "nosuchbackfill")
	fails(t, cli.ExitFailed, "bad_request", "backfill", "--follow", "no.such")
}

// With --on-error halt the text output names the partitions not started,
// as the JSON does.
func TestBackfillHaltNamesThePartitionsNotStarted(t *testing.T) {
	r := fsctl(t, append([]string{"backfill", "clitest", "broken", "--partitions", "h1,h2,h3,h4", "--on-error", "halt", "--parallel", "1"}, server(t)...)...)
	if r.code != cli.ExitFailed || !strings.Contains(r.stdout, "0 succeeded, 1 failed, 0 skipped, 3 not started (of 4 partitions") ||
		!strings.Contains(r.stdout, "\n  not started: h2, h3, h4\n") || !strings.Contains(r.stdout, "h1: execution_failed") {
		t.Errorf("halted backfill: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	var stats flowstone.BackfillStats
	r = fsctl(t, append([]string{"backfill", "clitest", "broken", "--partitions", "j1,j2,j3", "--on-error", "halt", "--parallel", "1", "--json"}, server(t)...)...)
	if err := json.Unmarshal([]byte(r.stdout), &stats); err != nil || r.code != cli.ExitFailed {
		t.Fatalf("halted backfill --json: exit %d, %v: %q", r.code, err, r.stdout)
	}
	if stats.NotStarted != 2 || strings.Join(stats.NotStartedPartitions, ",") != "j2,j3" {
		t.Errorf("halted backfill --json = %+v", stats)
	}
	r = fsctl(t, append([]string{"backfill", "--follow", stats.ID}, server(t)...)...)
	if !strings.Contains(r.stdout, "  not started: j2, j3\n") {
		t.Errorf("--follow of a halted backfill: stdout %q", r.stdout)
	}
}

// Without --parallel a backfill runs defaultParallel partitions at once,
// not one: the fleet's record of it says so.
func TestBackfillDefaultParallel(t *testing.T) {
	var accepted struct{ ID string }
	ok(t, &accepted, "backfill", "daily_sales", "revenue", "--partitions", "2021-05-01..2021-05-03", "--async")
	nc, err := nats.Connect(shared.fleet.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	body, perr := protocol.EncodeRequest(protocol.BackfillStatusRequest{V: protocol.Version, ID: accepted.ID})
	if perr != nil {
		t.Fatal(perr)
	}
	msg, err := nc.Request(protocol.APISubject(protocol.VerbBackfillStatus), body, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rep, perr := protocol.DecodeReply[protocol.BackfillStatusReply](msg.Data)
	if perr != nil {
		t.Fatal(perr)
	}
	if rep.Request.Parallel != 64 {
		t.Errorf("a backfill without --parallel runs %d at once, want 64", rep.Request.Parallel)
	}
	r := fsctl(t, "help", "backfill")
	if !strings.Contains(r.stdout, "default, 64") {
		t.Errorf("backfill's help does not say the default parallelism: %s", r.stdout)
	}
}
