//go:build faults

package faults

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readyWait bounds how long a started server may take to serve.
const readyWait = 60 * time.Second

// natsNode is one nats-server process with JetStream on a file store. It
// keeps its ports and store directory across restarts, as an operator's
// server does.
type natsNode struct {
	name        string
	port        int
	clusterPort int      // 0 when alone
	routes      []string // every node's cluster URL, when clustered
	storeDir    string
	gen         int // how many times it was started
	p           *proc
}

func (n *natsNode) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// start starts (or restarts) the node's process; it does not wait for it
// to serve.
func (n *natsNode) start(t *testing.T, logDir string) error {
	n.gen++
	args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.storeDir, "-n", n.name}
	if n.clusterPort != 0 {
		args = append(args, "--cluster_name", "faults", "--cluster", "nats://127.0.0.1:"+strconv.Itoa(n.clusterPort),
			"--routes", strings.Join(n.routes, ","))
	}
	p, err := startProc(t, logDir, fmt.Sprintf("%s-g%d", n.name, n.gen), false, exec.Command(bin.natsServer, args...))
	if err != nil {
		return err
	}
	n.p = p
	return nil
}

// natsCluster is one node, or three routed nodes.
type natsCluster struct {
	nodes []*natsNode
}

// startNATS starts size nodes (1 or 3) with their stores under dataDir and
// waits until JetStream answers. A port picked free may be taken by
// another process before the node binds it (tests of other packages run
// alongside): then the nodes are stopped and started again on new ports.
func startNATS(t *testing.T, dataDir, logDir string, size int) *natsCluster {
	t.Helper()
	const tries = 3
	for try := 1; ; try++ {
		c, err := tryStartNATS(t, filepath.Join(dataDir, fmt.Sprintf("try%d", try)), logDir, size, try)
		if err == nil {
			return c
		}
		if try == tries || !c.portTaken() {
			t.Fatal(err)
		}
		t.Logf("NATS start-up, try %d: %v; again on other ports", try, err)
		c.stop()
	}
}

// tryStartNATS is one attempt of startNATS; its nodes' names and logs
// carry try after the first.
func tryStartNATS(t *testing.T, dataDir, logDir string, size, try int) (*natsCluster, error) {
	c := &natsCluster{}
	for i := range size {
		name := fmt.Sprintf("nats%d", i+1)
		if try > 1 {
			name = fmt.Sprintf("nats%d-try%d", i+1, try)
		}
		n := &natsNode{name: name, port: freePort(t), storeDir: filepath.Join(dataDir, fmt.Sprintf("nats%d", i+1))}
		if size > 1 {
			n.clusterPort = freePort(t)
		}
		c.nodes = append(c.nodes, n)
	}
	if size > 1 {
		var routes []string
		for _, n := range c.nodes {
			routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(n.clusterPort))
		}
		for _, n := range c.nodes {
			n.routes = routes
		}
	}
	for _, n := range c.nodes {
		if err := n.start(t, logDir); err != nil {
			return c, err
		}
	}
	return c, c.waitJetStream()
}

// portTaken reports whether a node exited because its port was in use.
func (c *natsCluster) portTaken() bool {
	for _, n := range c.nodes {
		if n.p == nil || n.p.running() {
			continue
		}
		if b, err := os.ReadFile(n.p.logPath); err == nil && strings.Contains(string(b), "address already in use") {
			return true
		}
	}
	return false
}

// stop kills every node still running and waits for it to exit.
func (c *natsCluster) stop() {
	for _, n := range c.nodes {
		if n.p != nil && n.p.running() {
			if err := n.p.kill(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}
	}
}

// urls is the server list the fleet connects to.
func (c *natsCluster) urls() string {
	var u []string
	for _, n := range c.nodes {
		u = append(u, n.url())
	}
	return strings.Join(u, ",")
}

// waitJetStream waits until a client reaches JetStream through the
// cluster and a stream can be created on every node: a fresh cluster
// answers before its meta leader can place streams, and daemons started
// then fail their start-up (see RELIABILITY.md).
func (c *natsCluster) waitJetStream() error {
	deadline := time.Now().Add(readyWait)
	var last error
	for time.Now().Before(deadline) {
		for _, n := range c.nodes {
			if n.p != nil && !n.p.running() {
				return fmt.Errorf("%s exited while starting (%v); see %s", n.p.name, n.p.err, n.p.logPath)
			}
		}
		if last = jetStreamAnswers(c.urls(), len(c.nodes)); last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("JetStream at %s not ready after %v: %v", c.urls(), readyWait, last)
}

func jetStreamAnswers(urls string, replicas int) error {
	nc, err := nats.Connect(urls, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil || replicas == 1 {
		return err
	}
	const probe = "FAULTS_PROBE"
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: probe, Subjects: []string{"faults.probe"},
		Replicas: replicas, Storage: jetstream.MemoryStorage}); err != nil {
		return fmt.Errorf("create a stream of %d replicas: %w", replicas, err)
	}
	return js.DeleteStream(ctx, probe)
}

// connect opens the harness's own connection, which rides out restarts.
func (c *natsCluster) connect(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.urls(), nats.Name("flowstone-faults"), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatalf("connect to %s: %v", c.urls(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// freePort returns a loopback port nothing listens on now. The process it
// is meant for binds it a moment later; a clash shows as a process that
// exits at start and fails the test with its log.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
