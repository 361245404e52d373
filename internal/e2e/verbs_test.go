package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
)

// TestEveryVerb drives every fsctl verb with --json against a coordinator
// and a worker process, checking what a user reads and the exit codes.
func TestEveryVerb(t *testing.T) {
	f := newFleet(t)
	f.coordinator("c1")
	f.worker("w1")
	f.waitReady(1)

	// pipelines, assets, info
	var ps struct {
		Pipelines []protocol.PipelineSummary `json:"pipelines"`
	}
	f.ok(&ps, "pipelines")
	want := []protocol.PipelineSummary{{Name: "bench", Assets: 2, Workers: 1}, {Name: "daily_sales", Assets: 3, Workers: 1}, {Name: "dynamic", Assets: 3, Workers: 1},
		{Name: "example", Assets: 3, Workers: 1}, {Name: "release", Assets: 4, Workers: 1}}
	got := slices.Clone(ps.Pipelines)
	slices.SortFunc(got, func(a, b protocol.PipelineSummary) int { return strings.Compare(a.Name, b.Name) })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pipelines = %+v, want %+v", got, want)
	}
	var assets struct {
		Assets []string `json:"assets"`
	}
	f.ok(&assets, "assets", "example")
	if !slices.Equal(assets.Assets, []string{"numbers", "doubled", "sum"}) {
		t.Errorf("assets example = %v, want dependencies first", assets.Assets)
	}
	var info struct {
		Name          string   `json:"name"`
		DependsOn     []string `json:"depends_on"`
		OptionalDeps  []string `json:"optional_deps"`
		Description   string   `json:"description"`
		PartitionedBy string   `json:"partitioned_by"`
		Scatter       bool     `json:"scatter"`
		Parallel      bool     `json:"parallel"`
		HasApproval   bool     `json:"has_approval"`
	}
	f.ok(&info, "info", "daily_sales", "revenue")
	if info.Name != "revenue" || !slices.Equal(info.DependsOn, []string{"cleaned"}) || info.Description == "" || info.PartitionedBy == "" {
		t.Errorf("info daily_sales revenue = %+v", info)
	}

	// graph in three formats
	for format, wantIn := range map[string][]string{
		"ascii":   {"numbers", "doubled", "sum"},
		"mermaid": {"graph", "numbers", "doubled", "sum", "-->"},
		"dot":     {"digraph", "numbers", "doubled", "sum", "->"},
	} {
		var g struct {
			Graph string `json:"graph"`
		}
		f.ok(&g, "graph", "example", "--format", format)
		for _, w := range wantIn {
			if !strings.Contains(g.Graph, w) {
				t.Errorf("graph --format %s lacks %q:\n%s", format, w, g.Graph)
			}
		}
	}

	// run, get, exists, status
	f.fails(1, "not_found", "get", "example", "sum")
	var exists struct {
		Exists bool `json:"exists"`
	}
	r := f.fsctl("exists", "example", "sum")
	decode(t, r, &exists)
	if r.code != 1 || exists.Exists {
		t.Errorf("exists before the run: %s", r)
	}
	var run runOut
	f.ok(&run, "run", "example", "sum")
	if string(run.Value) != "30" || run.Cached || run.RunID == "" || run.Asset != "sum" || run.Partition != "default" || run.Storage == "" || run.SHA256 == "" {
		t.Errorf("run example sum = %+v (value %s)", run, run.Value)
	}
	var got30 runOut
	f.ok(&got30, "get", "example", "sum")
	if string(got30.Value) != "30" || got30.RunID != run.RunID {
		t.Errorf("get example sum = %+v (value %s), want 30 of run %s", got30, got30.Value, run.RunID)
	}
	r = f.ok(&exists, "exists", "example", "sum")
	if !exists.Exists {
		t.Errorf("exists after the run: %s", r)
	}
	st := f.status("example", "sum", "default")
	if st.State != "completed" || st.Partition != "default" || st.RunID != run.RunID || st.CompletedAt == nil || st.Storage != run.Storage || st.Error != nil {
		t.Errorf("status example sum = %+v", st)
	}
	if st := f.status("example", "numbers", "default"); st.State != "completed" || st.RunID != run.RunID {
		t.Errorf("status example numbers = %+v, want completed by run %s", st, run.RunID)
	}

	// run again: cached; --force: a new run
	var again runOut
	f.ok(&again, "run", "example", "sum")
	if !again.Cached || string(again.Value) != "30" || again.RunID != run.RunID {
		t.Errorf("second run = %+v (value %s), want cached from run %s", again, again.Value, run.RunID)
	}
	var forced runOut
	f.ok(&forced, "run", "example", "sum", "--force")
	if forced.Cached || string(forced.Value) != "30" || forced.RunID == run.RunID || forced.RunID == "" {
		t.Errorf("forced run = %+v (value %s), want a new run", forced, forced.Value)
	}
	// Force re-runs the target only: numbers keeps its run.
	if st := f.status("example", "numbers", "default"); st.RunID != run.RunID {
		t.Errorf("numbers after run --force sum: %+v, want still from run %s", st, run.RunID)
	}

	// invalidate --cascade from the root: all three
	var inv struct {
		Invalidated int `json:"invalidated"`
	}
	f.ok(&inv, "invalidate", "example", "numbers", "--cascade")
	if inv.Invalidated != 3 {
		t.Errorf("invalidate --cascade = %d, want 3", inv.Invalidated)
	}
	r = f.fsctl("exists", "example", "sum")
	if r.code != 1 {
		t.Errorf("exists after invalidate: %s", r)
	}
	if st := f.status("example", "doubled", "default"); st.State == "completed" {
		t.Errorf("doubled after invalidate --cascade: %+v", st)
	}

	// backfill a week with parallelism, then again: all skipped
	type stats struct {
		ID         string                `json:"id"`
		Succeeded  int                   `json:"succeeded"`
		Failed     int                   `json:"failed"`
		Skipped    int                   `json:"skipped"`
		NotStarted int                   `json:"not_started"`
		Errors     map[string]*jsonError `json:"errors"`
	}
	var bf stats
	f.ok(&bf, "backfill", "daily_sales", "revenue", "--partitions", "2025-01-01..2025-01-07", "--parallel", "3")
	if bf.Succeeded != 7 || bf.Failed != 0 || bf.Skipped != 0 || len(bf.Errors) != 0 {
		t.Errorf("backfill = %+v, want 7 succeeded", bf)
	}
	f.ok(&bf, "backfill", "daily_sales", "revenue", "--partitions", "2025-01-01..2025-01-07", "--parallel", "3")
	if bf.Succeeded != 0 || bf.Failed != 0 || bf.Skipped != 7 {
		t.Errorf("second backfill = %+v, want 7 skipped", bf)
	}

	// get a backfilled value, and write it to a file
	var rev runOut
	f.ok(&rev, "get", "daily_sales", "revenue", "--partition", "2025-01-03")
	var value pipelines.Revenue
	if err := json.Unmarshal(rev.Value, &value); err != nil || value.Day != "2025-01-03" || value.Total <= 0 || value.Orders == 0 {
		t.Errorf("get revenue 2025-01-03 = %s (%v)", rev.Value, err)
	}
	out := filepath.Join(t.TempDir(), "revenue.json")
	var written runOut
	f.ok(&written, "get", "daily_sales", "revenue", "--partition", "2025-01-03", "--out", out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var fromFile pipelines.Revenue
	if err := json.Unmarshal(b, &fromFile); err != nil || !reflect.DeepEqual(fromFile, value) || written.Out != out || int64(len(b)) != written.Size {
		t.Errorf("get --out wrote %q (%v); printed %+v", b, err, written)
	}

	// A result too large to keep in its record went through the file
	// store the processes share: the worker wrote it, fsctl reads it back.
	var orders runOut
	f.ok(&orders, "get", "daily_sales", "orders", "--partition", "2025-01-03")
	var list []pipelines.Order
	if err := json.Unmarshal(orders.Value, &list); err != nil || len(list) != len(pipelines.GenerateOrders("2025-01-03")) {
		t.Errorf("get orders 2025-01-03: %d orders (%v)", len(list), err)
	}
	if orders.Storage != "file" || orders.ObjectKey == "" || orders.Size < 4096 {
		t.Errorf("get orders = storage %q, key %q, size %d; want a file object", orders.Storage, orders.ObjectKey, orders.Size)
	}
	// The file store maps an object key to a path of the same segments
	// (with a suffix on the last).
	if fi, err := os.Stat(filepath.Join(f.dir, filepath.FromSlash(orders.ObjectKey)) + "@"); err != nil || fi.Size() < orders.Size {
		t.Errorf("the file store %s has no file for %s: %v", f.dir, orders.ObjectKey, err)
	}

	// cancel with nothing running
	e := f.fails(1, "not_found", "cancel", "daily_sales", "revenue", "--partition", "2025-01-03")
	if !strings.Contains(e.Message, "revenue") {
		t.Errorf("cancel of nothing: %+v", e)
	}

	// watch shows a run's events as they happen
	w := f.watch("daily_sales")
	f.ok(&run, "run", "daily_sales", "revenue", "--partition", "2025-02-01")
	for _, asset := range []string{"orders", "cleaned", "revenue"} {
		start := w.waitEvent(protocol.EventRunStart, asset, "2025-02-01")
		stop := w.waitEvent(protocol.EventRunStop, asset, "2025-02-01")
		if start.RunID != run.RunID || stop.RunID != run.RunID || stop.Pipeline != "daily_sales" || stop.Metadata["worker"] != "w1" {
			t.Errorf("%s events: start %+v stop %+v, want run %s on w1", asset, start, stop, run.RunID)
		}
	}
	w.p.signal(t, syscall.SIGINT)
	if code := w.p.waitExit(t); code != 0 {
		t.Errorf("fsctl watch exited %d on SIGINT, want 0", code)
	}
}
