package client_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/filestore"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats.go"
)

// A follower keeps following a backfill while no coordinator answers at
// all (the only one stopped), and gets the counts once a coordinator
// (the same, restarted) has adopted and finished it. An ended backfill is
// followed at once; an unknown id is not_found.
func TestFollowBackfillAcrossACoordinatorRestart(t *testing.T) {
	srv := natstest.Server(t)
	fs, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]objectstore.Store{"file": fs}
	hold := make(chan struct{})
	started := make(chan string, 100)
	p := flowstone.MustPipeline("follow", flowstone.Asset("a", func(c *flowstone.Context) (any, error) {
		started <- c.Partition()
		select {
		case <-hold:
			return c.Partition(), nil
		case <-c.Context().Done():
			return nil, c.Context().Err()
		}
	}, flowstone.PartitionedBy(flowstone.AnyKey)))
	startCoordinator := func() *coordinator.Coordinator {
		co, err := coordinator.New(coordinator.Config{ID: "follow-c", Conn: natstest.Connect(t, srv), Stores: stores})
		if err != nil {
			t.Fatal(err)
		}
		if err := co.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stop(co) })
		return co
	}
	first := startCoordinator()
	w, err := worker.New(worker.Config{Conn: natstest.Connect(t, srv), Pipelines: []*flowstone.Pipeline{p}, Stores: stores, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(w) })
	c, err := client.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := testCtx(t)
	waitHosted(t, c, "follow")

	parts := []string{"f1", "f2", "f3", "f4", "f5", "f6"}
	stats, err := c.Backfill(ctx, "follow", "a", flowstone.Partitions(parts...), flowstone.Parallel(3), flowstone.Async())
	if err != nil || stats.ID == "" || stats.Succeeded != 0 {
		t.Fatalf("async backfill = %+v, %v", stats, err)
	}
	var mu sync.Mutex
	var reports []flowstone.BackfillProgress
	type outcome struct {
		stats flowstone.BackfillStats
		err   error
	}
	followed := make(chan outcome, 1)
	go func() {
		s, err := c.FollowBackfill(ctx, stats.ID, flowstone.OnProgress(func(p flowstone.BackfillProgress) {
			mu.Lock()
			reports = append(reports, p)
			mu.Unlock()
		}))
		followed <- outcome{s, err}
	}()
	for range 3 {
		<-started
	}
	stop(first)
	// Nobody answers now.
	nc := natstest.Connect(t, srv)
	body, _ := protocol.EncodeRequest(protocol.BackfillStatusRequest{V: protocol.Version, ID: stats.ID})
	if _, err := nc.Request(protocol.APISubject(protocol.VerbBackfillStatus), body, 5*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("status with the coordinator stopped: %v, want no responders", err)
	}
	close(hold)
	startCoordinator()

	var got outcome
	select {
	case got = <-followed:
	case <-ctx.Done():
		t.Fatal("FollowBackfill did not return")
	}
	if got.err != nil || got.stats.ID != stats.ID || got.stats.Succeeded != len(parts) || got.stats.Failed+got.stats.Skipped+got.stats.NotStarted != 0 {
		t.Fatalf("FollowBackfill = %+v, %v; want %d succeeded", got.stats, got.err, len(parts))
	}
	mu.Lock()
	done := make([]int, len(reports))
	for i, r := range reports {
		done[i] = r.Done
		if r.Total != len(parts) {
			t.Errorf("report %+v has total %d", r, r.Total)
		}
	}
	mu.Unlock()
	if len(done) == 0 || !slices.IsSorted(done) || done[len(done)-1] != len(parts) {
		t.Errorf("progress reports Done %v, want rising to %d", done, len(parts))
	}

	again, err := c.FollowBackfill(ctx, stats.ID)
	if err != nil || again.Succeeded != len(parts) {
		t.Errorf("following an ended backfill = %+v, %v", again, err)
	}
	if _, err := c.FollowBackfill(ctx, "nosuchbackfill"); !errors.Is(err, flowstone.ErrNotFound) {
		t.Errorf("following an unknown backfill: %v, want not_found", err)
	}
	if _, err := c.FollowBackfill(ctx, "bad.id"); !errors.Is(err, flowstone.ErrBadRequest) {
		t.Errorf("following a malformed id: %v, want bad_request", err)
	}
}

// stop stops a coordinator or worker, giving it a few seconds.
func stop(s interface{ Stop(context.Context) error }) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Stop(ctx)
}

// waitHosted waits until the fleet hosts the pipeline.
func waitHosted(t *testing.T, c *client.Client, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ps, _ := c.Pipelines(testCtx(t))
		if slices.ContainsFunc(ps, func(p protocol.PipelineSummary) bool { return p.Name == name }) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("pipeline %s never hosted", name)
}
