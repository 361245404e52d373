package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/cli"
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
