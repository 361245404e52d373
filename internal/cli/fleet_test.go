package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/cli"
	"github.com/flowstone-go/flowstone/internal/devfleet"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nuid"
)

var shared struct {
	once  sync.Once
	fleet *devfleet.Fleet
	err   error
}

// blob is the raw result of clitest.blob: bytes that are not JSON.
var blob = []byte("\x00\x01raw bytes\xff\n")

// bigBlob is the raw result of clitest.bigblob: too large to travel in a
// get reply (over protocol.InlineValueLimit), so it is stored in the
// fleet's default store, files on its disk, which fsctl cannot read.
var bigBlob = func() []byte {
	b := make([]byte, protocol.InlineValueLimit+100_003)
	for i := range b {
		b[i] = byte(i * 7 / 3)
	}
	return b
}()

// server starts (once) the package's fleet and returns its --server flag.
func server(t *testing.T) []string {
	t.Helper()
	shared.once.Do(func() {
		extra := flowstone.MustPipeline("clitest",
			flowstone.Asset("blob", func(*flowstone.Context) (any, error) { return blob, nil }),
			flowstone.Asset("bigblob", func(*flowstone.Context) (any, error) { return bigBlob, nil }),
			flowstone.Asset("broken", func(c *flowstone.Context) (any, error) {
				return nil, errors.New("partition " + c.Partition() + " is broken")
			}, flowstone.PartitionedBy(flowstone.AnyKey)),
			// days -> after_days, by day, are TestInvalidateMany's.
			flowstone.Asset("days", func(c *flowstone.Context) (any, error) { return c.Partition(), nil }, flowstone.PartitionedBy(flowstone.Daily)),
			flowstone.Asset("after_days", func(c *flowstone.Context) (any, error) {
				return flowstone.Dep[string](c, "days")
			}, flowstone.DependsOn("days"), flowstone.PartitionedBy(flowstone.Daily)),
		).MustAutomate(
			// TestAutomationCommands' (New Year's Day only: they list it).
			flowstone.Schedule("new_year", "0 0 1 1 *", flowstone.Select("days"), flowstone.InTimeZone("Europe/Paris")),
			flowstone.Sensor("nothing", time.Hour, func(*flowstone.SensorContext, string) (flowstone.SensorResult, error) {
				return flowstone.SensorResult{Cursor: "seen"}, nil
			}),
		)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shared.fleet, shared.err = devfleet.Start(ctx, devfleet.Config{Port: -1, Workers: 2,
			Pipelines: append(pipelines.All(pipelines.Options{}), extra, pipelines.KeyedExample()), SignalSecret: []byte("cli-test-signal-secret-32-bytes!")})
	})
	if shared.err != nil {
		t.Fatalf("start fleet: %v", shared.err)
	}
	return []string{"--server", shared.fleet.URL()}
}

// ok runs fsctl against the fleet with --json, expects exit 0 and decodes
// stdout into v.
func ok(t *testing.T, v any, args ...string) {
	t.Helper()
	r := fsctl(t, append(append(args, server(t)...), "--json")...)
	if r.code != 0 {
		t.Fatalf("fsctl %v: exit %d\nstdout %s\nstderr %s", args, r.code, r.stdout, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("fsctl %v --json wrote to stderr: %q", args, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("fsctl %v: stdout is not JSON (%v): %q", args, err, r.stdout)
	}
}

// fails runs fsctl against the fleet with --json, expects exit code and an
// error of type typ, and returns its details.
func fails(t *testing.T, code int, typ string, args ...string) map[string]any {
	t.Helper()
	r := fsctl(t, append(append(args, server(t)...), "--json")...)
	gotType, msg, details := errorJSON(t, r)
	if r.code != code || gotType != typ || msg == "" {
		t.Fatalf("fsctl %v: exit %d, error %s %q; want exit %d, %s", args, r.code, gotType, msg, code, typ)
	}
	return details
}

type runJSON struct {
	Asset     string          `json:"asset"`
	Partition string          `json:"partition"`
	RunID     string          `json:"run_id"`
	Cached    bool            `json:"cached"`
	Storage   string          `json:"storage"`
	ObjectKey string          `json:"object_key"`
	Encoding  string          `json:"encoding"`
	Size      int64           `json:"size"`
	SHA256    string          `json:"sha256"`
	Value     json.RawMessage `json:"value"`
	Out       string          `json:"out"`
	Job       *flowstone.Job  `json:"job"`
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "invalid JSON: " + string(raw)
	}
	return b.String()
}

func uniq(what string) string { return what + "-" + nuid.Next() }

func TestRunGetExistsStatusInvalidate(t *testing.T) {
	part := uniq("cli run")
	var first runJSON
	ok(t, &first, "run", "keyed", "sum", "--partition", part)
	if string(first.Value) != "30" || first.Cached || first.Partition != part || first.RunID == "" || first.SHA256 == "" {
		t.Fatalf("run = %+v value %s", first, first.Value)
	}
	var again runJSON
	ok(t, &again, "run", "keyed", "sum", "--partition", part)
	if !again.Cached || again.RunID != first.RunID {
		t.Errorf("second run = %+v, want cached %s", again, first.RunID)
	}

	var got runJSON
	ok(t, &got, "get", "keyed", "doubled", "--partition", part)
	if compact(got.Value) != "[2,4,6,8,10]" {
		t.Errorf("get doubled = %s", got.Value)
	}

	var exists struct{ Exists bool }
	ok(t, &exists, "exists", "keyed", "sum", "--partition", part)
	if !exists.Exists {
		t.Error("exists = false after run")
	}

	var st flowstone.StatusInfo
	ok(t, &st, "status", "keyed", "sum", "--partition", part)
	if st.State != flowstone.StateCompleted || st.RunID != first.RunID || st.Partition != part || st.CompletedAt == nil {
		t.Errorf("status = %+v", st)
	}

	var inv struct{ Invalidated int }
	ok(t, &inv, "invalidate", "keyed", "numbers", "--partition", part, "--cascade")
	if inv.Invalidated != 3 {
		t.Errorf("invalidated %d, want 3", inv.Invalidated)
	}
	r := fsctl(t, append([]string{"exists", "keyed", "sum", "--partition", part, "--json"}, server(t)...)...)
	if r.code != cli.ExitFailed || strings.TrimSpace(r.stdout) != `{
  "exists": false
}` {
		t.Errorf("exists after invalidate: exit %d, %q", r.code, r.stdout)
	}
	ok(t, &st, "status", "keyed", "sum", "--partition", part)
	if st.State != flowstone.StateNotFound {
		t.Errorf("status after invalidate = %s", st.State)
	}
	details := fails(t, cli.ExitFailed, "not_found", "get", "keyed", "sum", "--partition", part)
	if details["partition"] != part {
		t.Errorf("not_found details = %v", details)
	}
}

func TestInvalidateMany(t *testing.T) {
	srv := server(t)
	var stats flowstone.BackfillStats
	ok(t, &stats, "backfill", "clitest", "after_days", "--partitions", "2025-04-01..2025-04-04")
	if stats.Succeeded != 4 {
		t.Fatalf("backfill = %+v", stats)
	}
	left := func() string {
		t.Helper()
		var out []string
		for _, a := range []string{"days", "after_days"} {
			for d := 1; d <= 4; d++ {
				r := fsctl(t, append([]string{"exists", "clitest", a, "--partition", fmt.Sprintf("2025-04-%02d", d)}, srv...)...)
				if r.stdout == "true\n" {
					out = append(out, fmt.Sprintf("%s/%d", a, d))
				}
			}
		}
		return strings.Join(out, " ")
	}
	// Bare: a usage error naming the flags, and nothing deleted.
	r := fsctl(t, append([]string{"invalidate", "clitest", "days", "--cascade"}, srv...)...)
	if r.code != cli.ExitUsage || r.stdout != "" || !strings.Contains(r.stderr, "--partitions") || !strings.Contains(r.stderr, "--all") ||
		!strings.Contains(r.stderr, "Usage") {
		t.Fatalf("bare invalidate of a partitioned asset: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if typ, msg, _ := errorJSON(t, fsctl(t, append([]string{"invalidate", "clitest", "days", "--json"}, srv...)...)); typ != "usage" || !strings.Contains(msg, "--partition") {
		t.Errorf("bare invalidate --json: %s %q", typ, msg)
	}
	fails(t, cli.ExitFailed, "bad_request", "invalidate", "clitest", "days", "--partitions", "2025-04-01,soon")
	if got := left(); got != "days/1 days/2 days/3 days/4 after_days/1 after_days/2 after_days/3 after_days/4" {
		t.Fatalf("refused invalidates deleted records: left %s", got)
	}

	var inv struct{ Invalidated int }
	ok(t, &inv, "invalidate", "clitest", "days", "--partitions", "2025-04-01,2025-04-02")
	if inv.Invalidated != 2 {
		t.Errorf("--partitions a,b invalidated %d, want 2", inv.Invalidated)
	}
	ok(t, &inv, "invalidate", "clitest", "days", "--partitions", "2025-04-01..2025-04-03", "--cascade")
	if inv.Invalidated != 4 {
		t.Errorf("--partitions FROM..TO --cascade invalidated %d, want 4", inv.Invalidated)
	}
	if got := left(); got != "days/4 after_days/4" {
		t.Fatalf("after invalidating days 1-3: left %s", got)
	}
	r = fsctl(t, append([]string{"invalidate", "clitest", "days", "--all", "--cascade"}, srv...)...)
	if r.code != 0 || r.stdout != "invalidated 2 result(s)\n" {
		t.Errorf("--all --cascade: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := left(); got != "" {
		t.Fatalf("after --all --cascade: left %s", got)
	}
}

func TestHumanOutput(t *testing.T) {
	part := uniq("cli human")
	srv := server(t)
	r := fsctl(t, append([]string{"run", "keyed", "sum", "--partition", part}, srv...)...)
	if r.code != 0 || r.stdout != "30\n" {
		t.Errorf("run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = fsctl(t, append([]string{"get", "keyed", "doubled", "--partition", part}, srv...)...)
	if r.code != 0 || r.stdout != "[\n  2,\n  4,\n  6,\n  8,\n  10\n]\n" {
		t.Errorf("get: stdout %q", r.stdout)
	}
	r = fsctl(t, append([]string{"status", "keyed", "sum", "--partition", part}, srv...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "state:") || !strings.Contains(r.stdout, "completed") {
		t.Errorf("status: stdout %q", r.stdout)
	}
	r = fsctl(t, append([]string{"exists", "keyed", "sum", "--partition", uniq("nothing")}, srv...)...)
	if r.code != cli.ExitFailed || r.stdout != "false\n" || r.stderr != "" {
		t.Errorf("exists on nothing: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = fsctl(t, append([]string{"assets", "example"}, srv...)...)
	if r.code != 0 || r.stdout != "numbers\ndoubled\nsum\n" {
		t.Errorf("assets: %q", r.stdout)
	}
	r = fsctl(t, append([]string{"run", "example", "nope"}, srv...)...)
	if r.code != cli.ExitFailed || !strings.HasPrefix(r.stderr, "fsctl: asset_not_found: ") || r.stdout != "" {
		t.Errorf("unknown asset: exit %d, stderr %q", r.code, r.stderr)
	}
	r = fsctl(t, append([]string{"pipelines"}, srv...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "PIPELINE") || !strings.Contains(r.stdout, "daily_sales") {
		t.Errorf("pipelines: %q", r.stdout)
	}
}

func TestBadInput(t *testing.T) {
	details := fails(t, cli.ExitFailed, "asset_not_found", "run", "example", "nope")
	if details["asset"] != "nope" {
		t.Errorf("details = %v", details)
	}
	fails(t, cli.ExitFailed, "asset_not_found", "info", "example", "nope")
	fails(t, cli.ExitFailed, "pipeline_not_found", "assets", "nosuch")
	fails(t, cli.ExitFailed, "bad_request", "run", "daily_sales", "revenue", "--partition", "not-a-date")
	fails(t, cli.ExitFailed, "bad_request", "run", "keyed", "sum", "--partition", "")
	fails(t, cli.ExitFailed, "bad_request", "run", "example", "sum", "--priority", "9")
	fails(t, cli.ExitFailed, "bad_request", "get", "example", "no such asset")
	fails(t, cli.ExitFailed, "not_found", "cancel", "keyed", "sum", "--partition", uniq("idle"))
	details = fails(t, cli.ExitFailed, "execution_failed", "run", "clitest", "broken", "--partition", "p1")
	if details == nil {
		t.Log("execution_failed has no details")
	}
	fails(t, cli.ExitFailed, "dependency_failed", "run", "keyed", "sum", "--partition", uniq("nodeps"), "--no-deps")
}

// An unpartitioned asset refuses a partition on every verb (it made a new
// copy per key), and a daily asset a key that is no date on every verb
// (status and get said not_found); nothing runs.
func TestPartitionsAreCheckedOnEveryVerb(t *testing.T) {
	for _, verb := range []string{"run", "get", "exists", "status", "cancel", "invalidate"} {
		details := fails(t, cli.ExitFailed, "bad_request", verb, "example", "sum", "--partition", "../../etc/passwd")
		if details["asset"] != "sum" || details["partition"] != "../../etc/passwd" {
			t.Errorf("%s: details = %v", verb, details)
		}
		details = fails(t, cli.ExitFailed, "bad_request", verb, "daily_sales", "revenue", "--partition", "eu")
		if details["partitioned_by"] != "date" {
			t.Errorf("%s of a daily asset: details = %v", verb, details)
		}
	}
	fails(t, cli.ExitFailed, "bad_request", "backfill", "example", "sum", "--partitions", "a,b")
	var st flowstone.StatusInfo
	ok(t, &st, "status", "example", "sum", "--partition", "default")
	if st.Partition != "default" {
		t.Errorf("status of the default partition by name = %+v", st)
	}
}

func TestHostilePartitionRoundTrips(t *testing.T) {
	for _, key := range []string{"a b/../*.>", "$JS.API.>", "ünï ✓ \"quoted\"", "--not-a-flag", "line\nbreak"} {
		var res runJSON
		ok(t, &res, "run", "keyed", "sum", "--partition="+key)
		if res.Partition != key || string(res.Value) != "30" {
			t.Errorf("%q: run = %+v", key, res)
		}
		var st flowstone.StatusInfo
		ok(t, &st, "status", "keyed", "sum", "--partition", key)
		if st.Partition != key || st.State != flowstone.StateCompleted {
			t.Errorf("%q: status = %+v", key, st)
		}
	}
}

func TestGetOut(t *testing.T) {
	dir := t.TempDir()
	var res runJSON
	ok(t, &res, "run", "clitest", "blob")
	if res.Encoding != flowstone.EncodingRaw {
		t.Fatalf("blob = %+v", res)
	}
	out := filepath.Join(dir, "blob.bin")
	ok(t, &res, "get", "clitest", "blob", "--out", out)
	if b, err := os.ReadFile(out); err != nil || string(b) != string(blob) || res.Out != out {
		t.Errorf("--out wrote %q, %v (json %+v)", b, err, res)
	}
	r := fsctl(t, append([]string{"get", "clitest", "blob"}, server(t)...)...)
	if r.code != 0 || r.stdout != string(blob) {
		t.Errorf("raw get to stdout = %q", r.stdout)
	}

	out = filepath.Join(dir, "sum.json")
	r = fsctl(t, append([]string{"run", "example", "sum", "--out", out}, server(t)...)...)
	if b, err := os.ReadFile(out); r.code != 0 || err != nil || string(b) != "30" || r.stdout != "" || !strings.Contains(r.stderr, "wrote 2 bytes") {
		t.Errorf("run --out: exit %d, file %q %v, stdout %q, stderr %q", r.code, b, err, r.stdout, r.stderr)
	}
	fails(t, cli.ExitFailed, "config_error", "get", "clitest", "blob", "--out", filepath.Join(dir, "missing", "dir", "x"))
}

func TestGetLargeValueFromTheFileStore(t *testing.T) {
	var res runJSON
	ok(t, &res, "run", "clitest", "bigblob", "--out", filepath.Join(t.TempDir(), "run.bin"))
	if res.Storage != devfleet.StorageName || res.Size != int64(len(bigBlob)) || res.ObjectKey == "" {
		t.Fatalf("bigblob = %+v, want %d bytes in the %s store", res, len(bigBlob), devfleet.StorageName)
	}
	out := filepath.Join(t.TempDir(), "bigblob.bin")
	ok(t, &res, "get", "clitest", "bigblob", "--out", out)
	if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, bigBlob) || res.Out != out {
		t.Fatalf("get --out wrote %d bytes (want %d, equal %v), %v (json %+v)", len(b), len(bigBlob), bytes.Equal(b, bigBlob), err, res)
	}
	// Printed, too: the raw bytes to stdout.
	r := fsctl(t, append([]string{"get", "clitest", "bigblob"}, server(t)...)...)
	if r.code != 0 || r.stdout != string(bigBlob) {
		t.Errorf("get to stdout: exit %d, %d bytes (want %d), stderr %q", r.code, len(r.stdout), len(bigBlob), r.stderr)
	}
}

func TestBackfill(t *testing.T) {
	var stats flowstone.BackfillStats
	ok(t, &stats, "backfill", "daily_sales", "revenue", "--partitions", "2023-06-01..2023-06-10", "--parallel", "4")
	if stats.Succeeded+stats.Skipped != 10 || stats.Failed != 0 {
		t.Errorf("stats = %+v", stats)
	}
	var rev pipelines.Revenue
	var res runJSON
	ok(t, &res, "get", "daily_sales", "revenue", "--partition", "2023-06-05")
	if err := json.Unmarshal(res.Value, &rev); err != nil || rev.Day != "2023-06-05" || rev.Orders == 0 {
		t.Errorf("revenue = %+v, %v", rev, err)
	}

	// A list, a progress bar, and failures.
	r := fsctl(t, append([]string{"backfill", "clitest", "broken", "--partitions", "a,b,c", "--progress"}, server(t)...)...)
	if r.code != cli.ExitFailed || !strings.Contains(r.stdout, "0 succeeded, 3 failed") || !strings.Contains(r.stdout, "b: execution_failed: asset \"broken\" failed: partition b is broken") {
		t.Errorf("failing backfill: exit %d, stdout %q", r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, "(3/3)") {
		t.Errorf("no progress bar on stderr: %q", r.stderr)
	}
	r = fsctl(t, append([]string{"backfill", "clitest", "broken", "--partitions", "a,b", "--json"}, server(t)...)...)
	if err := json.Unmarshal([]byte(r.stdout), &stats); r.code != cli.ExitFailed || err != nil || stats.Failed != 2 || stats.Errors["a"] == nil {
		t.Errorf("failing backfill --json: exit %d, %q", r.code, r.stdout)
	}
	fails(t, cli.ExitFailed, "bad_request", "backfill", "daily_sales", "revenue", "--partitions", "2023-06-01,tuesday")
}

func TestInspection(t *testing.T) {
	for format, want := range map[string]string{"ascii": "└── sum", "mermaid": "graph TD", "dot": "digraph"} {
		var g struct{ Graph string }
		ok(t, &g, "graph", "example", "--format", format)
		if !strings.Contains(g.Graph, want) {
			t.Errorf("%s graph = %q", format, g.Graph)
		}
	}
	var assets struct{ Assets []string }
	ok(t, &assets, "assets", "daily_sales")
	if strings.Join(assets.Assets, ",") != "orders,cleaned,revenue" {
		t.Errorf("assets = %v", assets.Assets)
	}
	var info flowstone.Info
	ok(t, &info, "info", "daily_sales", "revenue")
	if info.Name != "revenue" || info.PartitionedBy != "date" || len(info.DependsOn) != 1 {
		t.Errorf("info = %+v", info)
	}
	var ps struct {
		Pipelines []struct {
			Name    string
			Assets  int
			Workers int
		}
	}
	ok(t, &ps, "pipelines")
	found := false
	for _, p := range ps.Pipelines {
		found = found || (p.Name == "example" && p.Assets == 3 && p.Workers == 2)
	}
	if !found {
		t.Errorf("pipelines = %+v", ps)
	}
}

func TestAsyncRun(t *testing.T) {
	part := uniq("cli async")
	var res runJSON
	ok(t, &res, "run", "keyed", "sum", "--partition", part, "--async", "--priority", "3")
	if res.Job == nil || res.Job.ID != res.RunID || res.Job.Priority != 3 || res.Value != nil {
		t.Fatalf("async run = %+v", res)
	}
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	ok(t, &res, "run", "keyed", "doubled", "--partition", part, "--at", at)
	if res.Job == nil || res.Job.State != "scheduled" {
		t.Fatalf("scheduled run = %+v", res)
	}
	var cancelled struct{ Cancelled bool }
	ok(t, &cancelled, "cancel", "keyed", "doubled", "--partition", part)
	if !cancelled.Cancelled {
		t.Error("cancel of a scheduled run did not say so")
	}
}

// status of a partition whose run is scheduled says so, with the time,
// instead of not_found.
func TestStatusOfAScheduledRun(t *testing.T) {
	part := uniq("cli scheduled")
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	var res runJSON
	ok(t, &res, "run", "keyed", "sum", "--partition", part, "--at", at.Format(time.RFC3339))
	var st flowstone.StatusInfo
	ok(t, &st, "status", "keyed", "sum", "--partition", part)
	if st.State != flowstone.StateScheduled || st.RunID != res.RunID || st.ScheduledAt == nil || !st.ScheduledAt.Equal(at) {
		t.Errorf("status --json of a scheduled run = %+v", st)
	}
	r := fsctl(t, append([]string{"status", "keyed", "sum", "--partition", part}, server(t)...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "scheduled\n") || !strings.Contains(r.stdout, "scheduled_at:  "+at.Format(time.RFC3339Nano)) {
		t.Errorf("status of a scheduled run: exit %d, stdout %q", r.code, r.stdout)
	}
	var cancelled struct{ Cancelled bool }
	ok(t, &cancelled, "cancel", "keyed", "sum", "--partition", part)
	var after flowstone.StatusInfo
	ok(t, &after, "status", "keyed", "sum", "--partition", part)
	if after.State != flowstone.StateNotFound || after.ScheduledAt != nil {
		t.Errorf("status after the cancel = %+v", after)
	}
}

func TestWatch(t *testing.T) {
	srv := server(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := newSyncBuffer(), newSyncBuffer()
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, append([]string{"watch", "keyed", "sum", "--json"}, srv...), out, errOut)
	}()
	part := uniq("cli watch")
	deadline := time.After(30 * time.Second)
	// The subscription may come after the first run: force runs until an
	// event of ours shows.
	for !strings.Contains(out.String(), `"partition":"`+part+`"`) {
		fsctl(t, append([]string{"run", "keyed", "sum", "--partition", part, "--force"}, srv...)...)
		select {
		case <-out.Written():
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no event; watch wrote %q / %q", out.String(), errOut.String())
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("watch exit %d, stderr %q", code, errOut.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev struct{ Kind, Asset string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Asset != "sum" || !strings.Contains(ev.Kind, ".") {
			t.Errorf("event line %q: %+v, %v", line, ev, err)
		}
	}
}

func TestDev(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := newSyncBuffer(), newSyncBuffer()
	done := make(chan int, 1)
	dir := t.TempDir()
	go func() {
		done <- cli.Run(ctx, []string{"dev", "--port", "-1", "--workers", "1", "--dir", dir, "--json"}, out, errOut)
	}()
	var info struct {
		URL     string
		Dir     string
		Workers int
	}
	deadline := time.After(30 * time.Second)
	for json.Unmarshal([]byte(out.String()), &info) != nil {
		select {
		case <-out.Written():
		case code := <-done:
			t.Fatalf("dev exited %d: %q", code, errOut.String())
		case <-deadline:
			t.Fatalf("dev printed no URL: %q / %q", out.String(), errOut.String())
		}
	}
	if info.Dir != dir || info.Workers != 1 {
		t.Errorf("dev info = %+v", info)
	}
	r := fsctl(t, "run", "example", "sum", "--server", info.URL)
	if r.code != 0 || r.stdout != "30\n" {
		t.Errorf("run on dev: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("dev exit %d, stderr %q", code, errOut.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		t.Errorf("--dir holds no JetStream store: %v", err)
	}
}

func TestDemo(t *testing.T) {
	r := fsctl(t, "demo", "--source-latency", "0")
	if r.code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"$ fsctl run example sum\n30\n", "└── revenue", "14 succeeded, 0 failed, 0 skipped", "state:", "\"day\": \"2025-01-07\"", "daily_sales",
		"\"products\": 2000", "scatter:       2000 total, 2000 completed, 0 failed, 0 cancelled, 0 pending"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = fsctl(t, "demo", "--json", "--source-latency", "0")
	if r.code != 0 {
		t.Fatalf("demo --json: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 9 {
		t.Fatalf("demo --json printed %d lines, want 9:\n%s", len(lines), r.stdout)
	}
	var step struct {
		Step   string
		Output struct{ Value json.RawMessage }
	}
	if err := json.Unmarshal([]byte(lines[1]), &step); err != nil || step.Step != "run example sum" || string(step.Output.Value) != "30" {
		t.Errorf("first step = %+v, %v", step, err)
	}
}

func TestRunTimeoutFlag(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := devfleet.Start(ctx, devfleet.Config{Port: -1, Workers: 1, SourceLatency: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop(context.Background())
	r := fsctl(t, "run", "daily_sales", "orders", "--partition", "2025-03-01", "--timeout", "100ms", "--server", f.URL(), "--json")
	if typ, _, _ := errorJSON(t, r); r.code != cli.ExitFailed || typ != "timeout" {
		t.Errorf("run --timeout: exit %d, type %s", r.code, typ)
	}
	// A spinner once a run takes more than a second.
	start := time.Now()
	r = fsctl(t, "run", "daily_sales", "orders", "--partition", "2025-03-02", "--server", f.URL(), "--progress")
	if r.code != 0 || !strings.Contains(r.stderr, "running orders") {
		t.Errorf("slow run: exit %d, stderr %q", r.code, r.stderr)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("run took %v", took)
	}
	var orders []pipelines.Order
	if json.Unmarshal([]byte(r.stdout), &orders) != nil || len(orders) < 50 {
		t.Errorf("orders = %.80q", r.stdout)
	}
}
