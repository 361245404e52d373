package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/examples/ownpipeline/shop"
	"github.com/flowstone-go/flowstone/protocol"
)

// TestOwnPipelineWorker is the README's "Deploy your own pipelines": the
// example's worker (examples/ownpipeline/cmd/shop-worker, one call to
// workercmd.Main with the shop pipeline), built as a user builds it, joins
// a fleet of a coordinator process, and the shop pipeline's daily_report
// runs on it, through the client and through fsctl. Had Main hosted the
// bundled pipelines instead of the one it was given, shop would be unknown
// to the fleet.
func TestOwnPipelineWorker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shop-worker")
	build := exec.Command("go", "build", "-o", path, "github.com/flowstone-go/flowstone/examples/ownpipeline/cmd/shop-worker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the example worker: %v\n%s", err, out)
	}
	f := newFleet(t)
	f.coordinator("c1")
	// Its defaults but for the fleet's address and the shared file store;
	// no --http: the endpoint is off by default.
	w := start(t, "shop-worker", path, "--nats-url", f.url, "--storage", "file", "--file-dir", f.dir,
		"--id", "shop-1", "--log-level", "debug")
	if got := fmt.Sprint(w.waitLog(t, "worker_started")["pipelines"]); got != "["+shop.Name+"]" {
		t.Fatalf("the example worker hosts %s, want [%s]", got, shop.Name)
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := client.Connect(f.url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var hosted []protocol.PipelineSummary
	eventually(t, "the coordinator to list the shop pipeline on the example worker", func() (bool, string) {
		hosted, err = c.Pipelines(ctx)
		i := slices.IndexFunc(hosted, func(s protocol.PipelineSummary) bool { return s.Name == shop.Name })
		return err == nil && i >= 0 && hosted[i].Workers == 1, fmt.Sprintf("%+v, %v", hosted, err)
	})
	for _, s := range hosted {
		if s.Name != shop.Name && s.Workers > 0 {
			t.Errorf("the fleet lists pipeline %s on %d worker(s): the example worker hosts only %s", s.Name, s.Workers, shop.Name)
		}
	}

	res, err := c.Run(ctx, shop.Name, "daily_report", flowstone.Partition("2025-01-04"))
	if err != nil {
		t.Fatal(err)
	}
	var report shop.Report
	if err := res.Decode(&report); err != nil {
		t.Fatal(err)
	}
	// Orders of 104, 204, 304, 404 (refunded), 504, 604 and 704 cents: two
	// each of coffee, cocoa and tea left.
	if want := (shop.Report{Day: "2025-01-04", Orders: 7, Refunds: 1, RevenueCents: 2424, TopProduct: "cocoa"}); report != want {
		t.Fatalf("daily_report of 2025-01-04 = %+v, want %+v", report, want)
	}

	// The README's command.
	var out runOut
	f.ok(&out, "run", shop.Name, "daily_report", "--partition", "2025-01-15")
	report = shop.Report{}
	if err := json.Unmarshal(out.Value, &report); err != nil {
		t.Fatalf("fsctl run value %s: %v", out.Value, err)
	}
	if want := (shop.Report{Day: "2025-01-15", Orders: 3, RevenueCents: 645, TopProduct: "cocoa"}); report != want {
		t.Fatalf("daily_report of 2025-01-15 = %+v, want %+v", report, want)
	}

	w.signal(t, syscall.SIGTERM)
	if code := w.waitExit(t); code != 0 {
		t.Fatalf("the example worker exited %d after SIGTERM, want 0", code)
	}
}
