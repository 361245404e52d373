package security_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/internal/daemon"
	"github.com/flowstone-go/flowstone/internal/tlstest"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// confPath is the shipped server configuration the tests start from.
const confPath = "../../deploy/nats.conf"

// The roles of deploy/nats.conf, which are also their users' names.
const (
	roleClient      = "client"
	roleWorker      = "worker"
	roleCoordinator = "coordinator"
	roleAdmin       = "admin"
)

// passwords are the roles' passwords, made up for this process and given
// to the configuration through the environment, as an operator does.
var passwords = map[string]string{}

// bigSize is over protocol.InlineValueLimit: such a result does not travel
// in the get reply, the client reads it from a bucket.
const bigSize = protocol.InlineValueLimit + 64<<10

// testPipelines are the bundled example, daily_sales and dynamic (a
// scatter across the fleet) and "sec": small and large results, in the
// JetStream object store and in files (read through a staged copy), an
// asset that runs until cancelled, a daily one to backfill, and one behind
// an approval gate.
func testPipelines() []*flowstone.Pipeline {
	big := func(*flowstone.Context) (any, error) {
		return bytes.Repeat([]byte("0123456789abcdef"), bigSize/16), nil
	}
	sec := flowstone.MustPipeline("sec",
		flowstone.Asset("small", func(c *flowstone.Context) (any, error) { return "hello " + c.Partition(), nil },
			flowstone.PartitionedBy(flowstone.AnyKey)),
		flowstone.Asset("big", big, flowstone.PartitionedBy(flowstone.AnyKey)),
		flowstone.Asset("bigfile", big, flowstone.PartitionedBy(flowstone.AnyKey), flowstone.StorageOf("file")),
		flowstone.Asset("slow", func(c *flowstone.Context) (any, error) {
			<-c.Context().Done()
			return nil, c.Context().Err()
		}, flowstone.PartitionedBy(flowstone.AnyKey)),
		flowstone.Asset("daily", func(c *flowstone.Context) (any, error) { return "day " + c.Partition(), nil },
			flowstone.PartitionedBy(flowstone.Daily)),
		flowstone.Asset("gated", func(c *flowstone.Context) (any, error) { return "approved " + c.Partition(), nil },
			flowstone.PartitionedBy(flowstone.AnyKey), flowstone.Approval(flowstone.ApprovalConfig{Message: "ship it?"})),
	)
	return []*flowstone.Pipeline{pipelines.Example(), pipelines.DailySales(pipelines.Options{}), pipelines.Dynamic(pipelines.Options{}), sec}
}

func TestMain(m *testing.M) {
	for _, role := range []string{roleClient, roleWorker, roleCoordinator, roleAdmin} {
		passwords[role] = "pw-" + role + "-" + rand.Text()
		os.Setenv("NATS_"+strings.ToUpper(role)+"_PASSWORD", passwords[role])
	}
	code := m.Run()
	shared.mu.Lock()
	if shared.f != nil {
		shared.f.stop()
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// natsServer is a nats-server started from confPath, JetStream on, on a
// random loopback port, its store in a temp dir.
type natsServer struct {
	srv   *server.Server
	url   string
	log   *serverLog
	mode  tlsMode
	certs *tlstest.Certs // nil without TLS
}

// tlsMode is how a server speaks TLS.
type tlsMode int

const (
	plain    tlsMode = iota
	verified         // TLS, the server's certificate verified by clients
	mutual           // TLS with client certificates required
)

// startServer starts a server from the shipped configuration in dir, with
// TLS as mode says (certs signed by certs' CA).
func startServer(dir string, mode tlsMode, certs *tlstest.Certs) (*natsServer, error) {
	opts, err := server.ProcessConfigFile(confPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", confPath, err)
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
	opts.StoreDir = filepath.Join(dir, "jetstream")
	opts.NoSigs = true
	if mode != plain {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certs.ServerCert, KeyFile: certs.ServerKey,
			CaFile: certs.CAFile, Verify: mode == mutual, Timeout: 5})
		if err != nil {
			return nil, err
		}
		opts.TLSConfig, opts.TLS, opts.TLSVerify, opts.TLSTimeout = tc, true, mode == mutual, 5
	} else {
		certs = nil
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	log := &serverLog{}
	srv.SetLogger(log, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("nats-server not ready")
	}
	return &natsServer{srv: srv, url: srv.ClientURL(), log: log, mode: mode, certs: certs}, nil
}

// serverLog keeps the server's error lines: permissions violations among
// them, each naming the connection (by its name) that was refused.
type serverLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *serverLog) Errorf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}
func (l *serverLog) Noticef(string, ...any) {}
func (l *serverLog) Warnf(string, ...any)   {}
func (l *serverLog) Fatalf(string, ...any)  {}
func (l *serverLog) Debugf(string, ...any)  {}
func (l *serverLog) Tracef(string, ...any)  {}

// violations returns the permissions violations logged for connections
// named name.
func (l *serverLog) violations(name string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, "Violation") && strings.Contains(line, ":"+name+`"`) {
			out = append(out, line)
		}
	}
	return out
}

// daemonConfig is the NATS and storage settings of a daemon of role, as
// its flags or environment would give them.
func (s *natsServer) daemonConfig(role, fileDir string) daemon.Config {
	cfg := daemon.Config{NATSURL: s.url, NATSUser: role, NATSPassword: passwords[role], Storage: "jetstream", FileDir: fileDir, Replicas: 1}
	if s.certs != nil {
		cfg.TLSCA = s.certs.CAFile
	}
	if s.mode == mutual {
		cfg.TLSCert, cfg.TLSKey = s.certs.ClientCert, s.certs.ClientKey
	}
	return cfg
}

// clientOptions are the NATS options of a client of role: its user, and
// the CA and client certificate when the server speaks TLS.
func (s *natsServer) clientOptions(role string) []nats.Option {
	opts := []nats.Option{nats.UserInfo(role, passwords[role])}
	if s.certs != nil {
		opts = append(opts, nats.RootCAs(s.certs.CAFile))
	}
	if s.mode == mutual {
		opts = append(opts, nats.ClientCert(s.certs.ClientCert, s.certs.ClientKey))
	}
	return opts
}

// fleet is a server with a coordinator and a worker connected as their
// roles, each on its own connection and result stores.
type fleet struct {
	*natsServer
	dir   string
	coord *coordinator.Coordinator
	work  *worker.Worker
	conns []*nats.Conn
}

// Names of the daemons' connections, as the server logs them.
const (
	coordinatorConn = "flowstone-coordinator"
	workerConn      = "flowstone-worker"
)

// startFleet starts a server from the shipped configuration in dir (TLS as
// mode says), a coordinator and a worker (the worker first if
// workerFirst: it then creates the fleet's streams and buckets), and
// waits until the coordinator knows the worker's pipelines.
func startFleet(ctx context.Context, dir string, mode tlsMode, certs *tlstest.Certs, workerFirst bool) (f *fleet, err error) {
	ns, err := startServer(dir, mode, certs)
	if err != nil {
		return nil, err
	}
	f = &fleet{natsServer: ns, dir: dir}
	defer func() {
		if err != nil {
			f.stop()
		}
	}()
	log := zerolog.Nop()
	files := filepath.Join(dir, "objects")

	startCoordinator := func() error {
		cd := ns.daemonConfig(roleCoordinator, files)
		nc, err := cd.Connect(coordinatorConn, log)
		if err != nil {
			return err
		}
		f.conns = append(f.conns, nc)
		stores, def, err := cd.Stores(ctx, nc, log)
		if err != nil {
			return fmt.Errorf("coordinator stores: %w", err)
		}
		if f.coord, err = coordinator.New(coordinator.Config{Conn: nc, Stores: stores, DefaultStorage: def, ID: "sec-coordinator"}); err != nil {
			return err
		}
		if err := f.coord.Start(ctx); err != nil {
			f.coord = nil
			return fmt.Errorf("coordinator: %w", err)
		}
		return nil
	}
	startWorker := func() error {
		wd := ns.daemonConfig(roleWorker, files)
		nc, err := wd.Connect(workerConn, log)
		if err != nil {
			return err
		}
		f.conns = append(f.conns, nc)
		stores, def, err := wd.Stores(ctx, nc, log)
		if err != nil {
			return fmt.Errorf("worker stores: %w", err)
		}
		if f.work, err = worker.New(worker.Config{Conn: nc, Pipelines: testPipelines(), Stores: stores, DefaultStorage: def, ID: "sec-worker"}); err != nil {
			return err
		}
		if err := f.work.Start(ctx); err != nil {
			f.work = nil
			return fmt.Errorf("worker: %w", err)
		}
		return nil
	}
	first, second := startCoordinator, startWorker
	if workerFirst {
		first, second = startWorker, startCoordinator
	}
	if err := first(); err != nil {
		return f, err
	}
	if err := second(); err != nil {
		return f, err
	}
	return f, f.awaitPipelines(ctx)
}

// awaitPipelines waits, asking as the client role, until the coordinator
// lists every pipeline the worker hosts.
func (f *fleet) awaitPipelines(ctx context.Context) error {
	c, err := client.Connect(f.url, client.WithNATSOptions(f.clientOptions(roleClient)...))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := c.Pipelines(ctx)
		if err == nil && len(got) == len(testPipelines()) && !slices.ContainsFunc(got, func(p protocol.PipelineSummary) bool { return p.Workers == 0 }) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the coordinator did not learn the worker's pipelines (last: %v, %v)", got, err)
		case <-tick.C:
		}
	}
}

func (f *fleet) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if f.work != nil {
		f.work.Stop(ctx)
	}
	if f.coord != nil {
		f.coord.Stop(ctx)
	}
	for _, nc := range f.conns {
		nc.Close()
	}
	f.srv.Shutdown()
	f.srv.WaitForShutdown()
	if f.dir != "" {
		os.RemoveAll(f.dir)
	}
}

// shared is the fleet the role tests share (no TLS); each test keeps to
// partitions of its own.
var shared struct {
	mu  sync.Mutex
	f   *fleet
	err error
}

func sharedFleet(t *testing.T) *fleet {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.f == nil && shared.err == nil {
		dir, err := os.MkdirTemp("", "flowstone-security-")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared.f, shared.err = startFleet(ctx, dir, plain, nil, false)
	}
	if shared.err != nil {
		t.Fatalf("start the fleet: %v", shared.err)
	}
	return shared.f
}

// connectClient connects a client.Client as role.
func (f *fleet) connectClient(t *testing.T, role string) *client.Client {
	t.Helper()
	c, err := client.Connect(f.url, client.WithNATSOptions(f.clientOptions(role)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// probe is a raw connection of a role, for trying what the role may and
// may not do; it hears of every permissions violation the server sends
// it.
type probe struct {
	*nats.Conn
	role string
	errs chan error
}

// probeAs connects as role.
func (f *fleet) probeAs(t *testing.T, role string) *probe {
	t.Helper()
	p := &probe{role: role, errs: make(chan error, 1024)}
	opts := append(f.clientOptions(role), nats.Name("sec-probe-"+role), nats.PermissionErrOnSubscribe(true),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case p.errs <- err:
			default:
			}
		}))
	nc, err := nats.Connect(f.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	p.Conn = nc
	return p
}

// refused waits for the server's permissions violation of a publish to
// subject, which must come: the server drops such a publish.
func (p *probe) refused(t *testing.T, subject string) {
	t.Helper()
	want := fmt.Sprintf("Publish to %q", subject)
	if err := p.FlushTimeout(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case err := <-p.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
				return
			}
		case <-timeout.C:
			t.Fatalf("%s published to %s without a permissions violation", p.role, subject)
		}
	}
}

// denyPublish publishes data to subject (with a reply subject, as a
// request would) and checks that the server refuses it.
func (p *probe) denyPublish(t *testing.T, subject string, data []byte) {
	t.Helper()
	if err := p.PublishRequest(subject, p.NewRespInbox(), data); err != nil {
		t.Fatal(err)
	}
	p.refused(t, subject)
}

// denySubscribe checks that the server refuses a subscription to subject.
func (p *probe) denySubscribe(t *testing.T, subject string) {
	t.Helper()
	sub, err := p.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := p.FlushTimeout(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The violation arrives before the flush's reply, and marks the
	// subscription.
	if _, err := sub.NextMsg(10 * time.Second); !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("%s subscribed to %s: %v, want a permissions violation", p.role, subject, err)
	}
}

// allowRequest sends a request to subject and checks that the server let
// it through: a reply, or no responders (a verb nobody serves yet), never
// a violation or a timeout.
func (p *probe) allowRequest(t *testing.T, subject string, data []byte) *nats.Msg {
	t.Helper()
	msg, err := p.Request(subject, data, 10*time.Second)
	if err != nil && !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("%s's request to %s: %v, want a reply or no responders", p.role, subject, err)
	}
	return msg
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// freshDays returns n consecutive days of a year picked at random: a
// backfill's partitions of its own, though the fleet is shared.
func freshDays(n int) []string {
	start := time.Date(2100+mrand.IntN(5000), time.March, 1, 0, 0, 0, 0, time.UTC)
	days := make([]string, n)
	for i := range days {
		days[i] = start.AddDate(0, 0, i).Format(time.DateOnly)
	}
	return days
}

// uniq is a partition key of the test's own.
func uniq(t *testing.T) string {
	return strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + strings.ToLower(rand.Text()[:6])
}
