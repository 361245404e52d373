package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// clusterFleet is a coordinator and a worker in this process on a
// three-node cluster, every stream, bucket and object store at R3, results
// in the JetStream object store, and a client.
type clusterFleet struct {
	t       *testing.T
	cluster *natstest.Cluster
	client  *client.Client
	log     *logBuffer // the coordinator's and the worker's
	conns   []*nats.Conn
}

// reconnected waits until every connection of the fleet is connected to
// a running node. Requests sent while a connection moves can be lost
// (core NATS is at most once), and the client would wait for an answer
// until its deadline; this test is about the streams, not that race.
func (f *clusterFleet) reconnected(ctx context.Context) {
	f.t.Helper()
	running := map[string]bool{}
	for i := range f.cluster.Size() {
		if s := f.cluster.Server(i); s != nil {
			running[s.Name()] = true
		}
	}
	for {
		moved := true
		for _, nc := range f.conns {
			moved = moved && nc.IsConnected() && running[nc.ConnectedServerName()]
		}
		if moved {
			return
		}
		if ctx.Err() != nil {
			f.t.Fatalf("connections never left the stopped nodes: %s", f.where())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// where tells which node each connection is on.
func (f *clusterFleet) where() string {
	out := ""
	for _, nc := range f.conns {
		out += fmt.Sprintf("%s@%s(%v) ", nc.Opts.Name, nc.ConnectedServerName(), nc.Status())
	}
	return out
}

// connect opens a connection to every node of the cluster that fails
// over quickly, closed when the test ends (after the fleet has stopped).
func (f *clusterFleet) connect(name string) *nats.Conn {
	f.t.Helper()
	nc, err := nats.Connect(f.cluster.URLs(), nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(nc.Close)
	f.conns = append(f.conns, nc)
	return nc
}

func startClusterFleet(t *testing.T) *clusterFleet {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a three-node cluster and a fleet")
	}
	f := &clusterFleet{t: t, cluster: natstest.NewCluster(t, 3), log: &logBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the fleet's log:\n%s", f.log.text())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	log := f.log.logger()

	js, err := jetstream.New(f.connect("results"))
	if err != nil {
		t.Fatal(err)
	}
	// As the daemons open it with --replicas 3.
	results, err := fleet.ObjectStore(ctx, js, protocol.ResultsBucket, "results", 0, fleet.WithReplicas(3), fleet.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]objectstore.Store{"jetstream": results}

	coord, err := coordinator.New(coordinator.Config{Conn: f.connect("coordinator"), Stores: stores, ID: "coord-1",
		Replicas: 3, Logger: &log, PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := coord.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, coord.Stop) })
	w, err := worker.New(worker.Config{Conn: f.connect("worker"), Pipelines: pipelines.All(pipelines.Options{}), Stores: stores,
		Concurrency: 16, AckWait: 2 * time.Second, Replicas: 3, Logger: &log})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, w.Stop) })

	if f.client, err = client.New(f.connect("client"), client.WithTimeout(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.waitHosted(ctx, "daily_sales")
	for _, name := range startStreams {
		if cfg := streamConfig(ctx, t, js, name); cfg.Replicas != 3 {
			t.Fatalf("%s has %d replicas, want 3", name, cfg.Replicas)
		}
	}
	return f
}

func stop(t *testing.T, fn func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fn(ctx); err != nil {
		t.Logf("stop: %v", err)
	}
}

// waitHosted waits until the coordinator knows a worker hosting pipeline.
func (f *clusterFleet) waitHosted(ctx context.Context, pipeline string) {
	f.t.Helper()
	for {
		ps, err := f.client.Pipelines(ctx)
		for _, p := range ps {
			if p.Name == pipeline && p.Workers > 0 {
				return
			}
		}
		if ctx.Err() != nil {
			f.t.Fatalf("pipeline %s never hosted: %v", pipeline, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startStreams are the streams start-up creates; the staged bucket is
// created when a client first needs a copy.
var startStreams = fleetStreams[:len(fleetStreams)-1]

// waitLeaders waits until every stream of the fleet has a leader among
// the running nodes.
func (f *clusterFleet) waitLeaders() {
	f.t.Helper()
	for _, name := range startStreams {
		f.cluster.StreamLeader(name)
	}
}

// days returns n consecutive days from start, as partition keys.
func days(start string, n int) []string {
	d, _ := time.Parse(time.DateOnly, start)
	out := make([]string, n)
	for i := range out {
		out[i] = d.AddDate(0, 0, i).Format(time.DateOnly)
	}
	return out
}

// wantRevenue fails the test unless every day's revenue is readable and
// is that day's.
func (f *clusterFleet) wantRevenue(ctx context.Context, days []string) {
	f.t.Helper()
	for _, day := range days {
		res, err := f.client.Get(ctx, "daily_sales", "revenue", flowstone.Partition(day))
		if err != nil {
			f.t.Errorf("get revenue %s: %v", day, err)
			continue
		}
		var rev pipelines.Revenue
		if err := res.Decode(&rev); err != nil || rev.Day != day || rev.Orders == 0 {
			f.t.Errorf("revenue %s: %+v (%v), want that day's", day, rev, err)
		}
	}
}

// A three-node cluster at R3 loses the node leading the tasks stream; a
// 50-partition backfill then completes, every partition readable.
func TestClusterLosesOneNodeAndTheWorkCompletes(t *testing.T) {
	f := startClusterFleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	down := f.cluster.StreamLeader(protocol.TaskStream)
	t.Logf("stopping n%d, leader of %s (%s is led by n%d)", down+1, protocol.TaskStream,
		"KV_"+protocol.MaterializationsBucket, f.cluster.StreamLeader("KV_"+protocol.MaterializationsBucket)+1)
	f.cluster.Stop(down)
	f.waitLeaders()
	f.reconnected(ctx)
	f.waitHosted(ctx, "daily_sales")

	parts := days("2024-03-01", 50)
	stats, err := f.client.Backfill(ctx, "daily_sales", "revenue", flowstone.Partitions(parts...), flowstone.Parallel(8))
	if err != nil {
		t.Fatalf("backfill with n%d down: %v (connections: %s)", down+1, err, f.where())
	}
	if stats.Succeeded != len(parts) || stats.Failed != 0 || stats.NotStarted != 0 {
		t.Fatalf("backfill with one node down: %+v", stats)
	}
	f.wantRevenue(ctx, parts)
}

// loseQuorum stops every node but the one leading the tasks stream, and
// waits for the fleet's connections to reach it.
func (f *clusterFleet) loseQuorum(ctx context.Context) {
	f.t.Helper()
	alive := f.cluster.StreamLeader(protocol.TaskStream)
	for i := range f.cluster.Size() {
		if i != alive {
			f.cluster.Stop(i)
		}
	}
	f.reconnected(ctx)
}

// regainQuorum starts every node again and waits for the streams' leaders.
func (f *clusterFleet) regainQuorum(ctx context.Context) {
	f.t.Helper()
	for i := range f.cluster.Size() {
		f.cluster.Start(i)
	}
	f.cluster.WaitReady()
	f.waitLeaders()
	f.reconnected(ctx)
}

// With two of three nodes down the cluster has no quorum: a run fails (it
// does not hang: the client's timeout bounds it), and once the nodes are
// back a run completes and the values made before are there.
func TestClusterWithoutQuorumRecovers(t *testing.T) {
	f := startClusterFleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := f.client.Run(ctx, "daily_sales", "revenue", flowstone.Partition("2024-04-01")); err != nil {
		t.Fatal(err)
	}

	f.loseQuorum(ctx)
	// No deadline of its own: the client's (5 s) bounds the call.
	_, err := f.client.Run(context.Background(), "daily_sales", "revenue", flowstone.Partition("2024-04-02"))
	var fe *flowstone.Error
	if !errors.As(err, &fe) {
		t.Errorf("run without quorum: %v (%T), want a structured error", err, err)
	}

	f.regainQuorum(ctx)
	if _, err := f.client.Run(ctx, "daily_sales", "revenue", flowstone.Partition("2024-04-03")); err != nil {
		t.Fatalf("run after quorum returned: %v", err)
	}
	f.wantRevenue(ctx, []string{"2024-04-01", "2024-04-03"})
}

// Without quorum a run and a get end with an unavailable error, the one
// that tells an operator the cluster, not the request, is at fault. (A get
// may also still succeed, while the last node has not yet noticed it lost
// its peers: then it must return the value.)
func TestClusterWithoutQuorumIsUnavailable(t *testing.T) {
	f := startClusterFleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := f.client.Run(ctx, "daily_sales", "revenue", flowstone.Partition("2024-05-01")); err != nil {
		t.Fatal(err)
	}

	f.loseQuorum(ctx)
	for _, call := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"get", func(ctx context.Context) error {
			res, err := f.client.Get(ctx, "daily_sales", "revenue", flowstone.Partition("2024-05-01"))
			if err != nil {
				return err
			}
			var v any
			if err := res.Decode(&v); err != nil {
				return err
			}
			// Read before the cluster noticed: the value is what counts.
			return &flowstone.Error{Type: flowstone.TypeUnavailable, Message: "read in time"}
		}},
		{"run", func(ctx context.Context) error {
			_, err := f.client.Run(ctx, "daily_sales", "revenue", flowstone.Partition("2024-05-02"))
			return err
		}},
	} {
		// No deadline of its own: the client's (5 s) bounds the call.
		err := call.fn(context.Background())
		var fe *flowstone.Error
		if !errors.As(err, &fe) || fe.Type != flowstone.TypeUnavailable {
			t.Errorf("%s without quorum: %v (%s), want a %s error", call.name, err, errType(err), flowstone.TypeUnavailable)
		}
	}
}

func errType(err error) string {
	var fe *flowstone.Error
	if errors.As(err, &fe) {
		return string(fe.Type)
	}
	return fmt.Sprintf("%T", err)
}
