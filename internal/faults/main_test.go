//go:build faults

package faults

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Test flags; see doc.go.
var (
	seedFlag       = flag.Uint64("faults.seed", 1, "seed of the random fault instants and targets")
	partitionsFlag = flag.Int("faults.partitions", 0, "partitions per backfill (default: 150 short, 1000 long)")
	stallFlag      = flag.Duration("faults.stall", 60*time.Second, "stop waiting for a backfill after this long without any record changing")
	logsFlag       = flag.String("faults.logs", "", "keep every process's log in this directory (default: a temp dir, removed)")
	latencyFlag    = flag.Duration("faults.source-latency", time.Second, "the workers' --source-latency: how long daily_sales.orders takes")
	ackWaitFlag    = flag.Duration("faults.ack-wait", 10*time.Second, "the workers' --ack-wait: how long a silent worker's task waits before redelivery")
	replicasFlag   = flag.Int("faults.replicas", 3, "--replicas of the cluster scenario's fleet; 0 runs it without the flag, on the streams the fleet creates by default")
)

// bin holds the paths of the binaries TestMain builds.
var bin struct{ coordinator, worker, fsctl, natsServer string }

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "flowstone-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	// nats-server's module root is a main package: build the server the
	// module pins, so the harness runs the version the fleet is built with.
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/flowstone-go/flowstone/cmd/coordinator",
		"github.com/flowstone-go/flowstone/cmd/worker",
		"github.com/flowstone-go/flowstone/cmd/fsctl",
		"github.com/nats-io/nats-server/v2")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "faults: go build of the fleet's binaries and nats-server failed: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	bin.coordinator = filepath.Join(dir, "coordinator")
	bin.worker = filepath.Join(dir, "worker")
	bin.fsctl = filepath.Join(dir, "fsctl")
	bin.natsServer = filepath.Join(dir, "nats-server")
	fmt.Printf("faults: seed %d (change it with -faults.seed N)\n", *seedFlag)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
