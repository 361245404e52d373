package natstest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// clusterWait bounds the waits for a cluster to form and for leaders to
// be elected: raft elections take seconds, more on a busy machine.
const clusterWait = 60 * time.Second

// Cluster is a JetStream cluster of in-process nats-servers on loopback,
// each with its own file store. A node can be stopped and started again on
// the same ports over the same store, as an operator restarts a server.
// Every running node is shut down when the test ends. Its methods are safe
// for concurrent use.
type Cluster struct {
	t     testing.TB
	mu    sync.Mutex
	nodes []*clusterNode
}

// clusterNode is one server of a Cluster: its fixed options and, while it
// runs, the server.
type clusterNode struct {
	opts server.Options
	srv  *server.Server // nil while stopped
}

// NewCluster starts an n-node JetStream cluster (names n1, n2, ...) and
// waits until it has a meta leader that knows every node, so streams of up
// to n replicas can be created at once.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	routes := make([]string, n)
	for i, p := range routePorts {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	base := t.TempDir()
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		c.nodes = append(c.nodes, &clusterNode{opts: server.Options{
			ServerName: name,
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   base + "/" + name,
			Cluster:    server.ClusterOpts{Name: "flowstone-test", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
			NoLog:      true,
			NoSigs:     true,
		}})
	}
	t.Cleanup(c.shutdown)
	for i := range c.nodes {
		c.Start(i)
	}
	c.WaitReady()
	return c
}

// freePorts returns n loopback ports that were free a moment ago. The
// cluster keeps them for its whole life, across restarts, so that routes
// and client URLs stay valid.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	var lns []net.Listener
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: reserve a port: %v", err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// URLs returns the client URLs of every node, running or not, as one
// comma-separated list for nats.Connect: a client fails over between them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port)
	}
	return strings.Join(urls, ",")
}

// Size returns the number of nodes, running or not.
func (c *Cluster) Size() int { return len(c.nodes) }

// Server returns node i's server, nil while it is stopped.
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].srv
}

// Start starts node i on its ports over its store. Starting a running node
// does nothing.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[i]
	if n.srv != nil {
		return
	}
	opts := n.opts // the server keeps and changes what it is given
	s, err := server.NewServer(&opts)
	if err != nil {
		c.t.Fatalf("natstest: node %s: %v", n.opts.ServerName, err)
	}
	go s.Start()
	if !s.ReadyForConnections(clusterWait) {
		s.Shutdown()
		c.t.Fatalf("natstest: node %s not ready", n.opts.ServerName)
	}
	n.srv = s
}

// Stop shuts node i down and waits until it has stopped, as a killed
// server would be: its store stays for Start. Stopping a stopped node does
// nothing.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

func (c *Cluster) shutdown() {
	for i := range c.nodes {
		c.Stop(i)
	}
}

// WaitReady waits until the running nodes have a meta leader that counts
// every node of the cluster as a peer and every running node is current
// with it. It fails the test after a deadline.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	c.waitFor("a meta leader that knows every node", func() bool {
		leader := c.metaLeader()
		if leader == nil || len(leader.JetStreamClusterPeers()) != len(c.nodes) {
			return false
		}
		for i := range c.nodes {
			if s := c.Server(i); s != nil && !s.JetStreamIsCurrent() {
				return false
			}
		}
		return true
	})
}

// metaLeader returns the running node leading the JetStream meta group,
// or nil.
func (c *Cluster) metaLeader() *server.Server {
	for i := range c.nodes {
		if s := c.Server(i); s != nil && s.JetStreamIsLeader() {
			return s
		}
	}
	return nil
}

// StreamLeader waits until a running node leads stream (of the global
// account) and returns its index. A KV bucket's stream is "KV_<bucket>",
// an object store's "OBJ_<bucket>".
func (c *Cluster) StreamLeader(stream string) int {
	c.t.Helper()
	leader := -1
	c.waitFor("a leader of stream "+stream, func() bool {
		for i := range c.nodes {
			if s := c.Server(i); s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

// waitFor polls cond until it holds, failing the test after clusterWait.
func (c *Cluster) waitFor(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(clusterWait)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: waited %v for %s", clusterWait, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
