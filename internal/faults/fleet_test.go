//go:build faults

package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Fleet shape: the issue's, two coordinators and three workers.
const (
	coordinators = 2
	workers      = 3
)

// fleetConfig is what differs between scenarios.
type fleetConfig struct {
	storage   string // the result store: jetstream, s3 or file
	natsNodes int    // 1, or 3 routed nodes
	replicas  int    // --replicas given to every daemon; 0: not given
}

// fleet is one scenario's processes and the harness's own connection.
type fleet struct {
	t       *testing.T
	cfg     fleetConfig
	logDir  string
	nats    *natsCluster
	s3      *s3Server
	fileDir string
	nc      *nats.Conn
	js      jetstream.JetStream

	mu      sync.Mutex // guards the daemons' generations, changed by injectors
	daemons map[string]*daemon

	startFailures []string // daemons that exited at start-up and were started again
}

// startAttempts is how often a daemon is started before a failing start-up
// fails the test.
const startAttempts = 4

// daemon is one coordinator or worker slot and every process that has
// filled it: a restart is a new process (a new generation) in the slot.
type daemon struct {
	slot  string // c1, c2, w1, w2, w3
	role  string // "coordinator" or "worker"
	gen   int
	p     *proc   // the current generation
	procs []*proc // every generation, for their logs
}

// id is the --id of the current generation: coordinators keep theirs
// (their restart resumes their runs), workers get a new one, so that
// records and logs tell the generations apart.
func (d *daemon) id() string {
	if d.role == "coordinator" {
		return d.slot
	}
	return d.slot + "-g" + strconv.Itoa(d.gen)
}

// startFleet starts NATS (and S3), two coordinators and three workers and
// waits until every worker hosts the bundled pipelines.
func startFleet(t *testing.T, cfg fleetConfig) *fleet {
	t.Helper()
	f := &fleet{t: t, cfg: cfg, logDir: logDir(t), daemons: map[string]*daemon{}}
	data := t.TempDir()
	f.nats = startNATS(t, data, f.logDir, cfg.natsNodes)
	f.nc = f.nats.connect(t)
	js, err := jetstream.New(f.nc)
	if err != nil {
		t.Fatal(err)
	}
	f.js = js
	switch cfg.storage {
	case "s3":
		f.s3 = startS3(t, data, f.logDir)
	case "file":
		f.fileDir = filepath.Join(data, "results")
	}
	for i := range coordinators {
		f.daemons[fmt.Sprintf("c%d", i+1)] = &daemon{slot: fmt.Sprintf("c%d", i+1), role: "coordinator"}
	}
	for i := range workers {
		f.daemons[fmt.Sprintf("w%d", i+1)] = &daemon{slot: fmt.Sprintf("w%d", i+1), role: "worker"}
	}
	for _, d := range f.slots("") {
		if err := f.start(d); err != nil {
			t.Fatal(err)
		}
	}
	f.waitReady()
	return f
}

// logDir is where the scenario's processes log: under -faults.logs if
// given (kept), else a temp dir.
func logDir(t *testing.T) string {
	t.Helper()
	if *logsFlag == "" {
		return t.TempDir()
	}
	dir := filepath.Join(*logsFlag, filepath.FromSlash(t.Name()))
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// slots returns the daemon slots of role ("" for all), in slot order.
func (f *fleet) slots(role string) []*daemon {
	var out []*daemon
	for _, name := range []string{"c1", "c2", "w1", "w2", "w3"} {
		if d := f.daemons[name]; role == "" || d.role == role {
			out = append(out, d)
		}
	}
	return out
}

// start starts the next generation of d. Callers hold f.mu, or own f
// alone.
func (f *fleet) start(d *daemon) error {
	d.gen++
	args := []string{"--nats-url", f.nats.urls(), "--storage", f.cfg.storage, "--id", d.id(), "--log-level", "debug"}
	if f.fileDir != "" {
		args = append(args, "--file-dir", f.fileDir)
	}
	if f.s3 != nil {
		args = append(args, f.s3.flags()...)
	}
	if f.cfg.replicas > 0 {
		args = append(args, "--replicas", strconv.Itoa(f.cfg.replicas))
	}
	path := bin.coordinator
	if d.role == "worker" {
		path = bin.worker
		args = append(args, "--http", "", "--ack-wait", ackWaitFlag.String(), "--source-latency", latencyFlag.String())
	}
	p, err := startProc(f.t, f.logDir, fmt.Sprintf("%s-g%d", d.slot, d.gen), false, exec.Command(path, args...))
	if err != nil {
		return err
	}
	d.p = p
	d.procs = append(d.procs, p)
	return nil
}

// restart SIGKILLs the slot's current process, if it runs, and starts the
// next generation.
func (f *fleet) restart(d *daemon) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := d.p.kill(); err != nil {
		return err
	}
	return f.start(d)
}

// current returns the slot's current process.
func (f *fleet) current(d *daemon) *proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return d.p
}

// allProcs returns every daemon process of every generation, with the
// generation's worker id for workers.
func (f *fleet) allProcs() []*proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*proc
	for _, d := range f.slots("") {
		out = append(out, d.procs...)
	}
	return out
}

// waitReady waits until fsctl pipelines lists daily_sales on every worker.
func (f *fleet) waitReady() {
	f.t.Helper()
	deadline := time.Now().Add(readyWait)
	var last string
	for time.Now().Before(deadline) {
		for _, d := range f.slots("") {
			p := f.current(d)
			if p.running() {
				continue
			}
			// A supervisor (systemd, Kubernetes) restarts a daemon that
			// exits at start-up; so does the harness, a few times, and
			// reports it.
			if d.gen >= startAttempts {
				f.t.Fatalf("%s exited while the fleet was starting (%v), %d times; its log:\n%s", p.name, p.err, d.gen, tail(p.logPath, 30))
			}
			f.startFailures = append(f.startFailures, fmt.Sprintf("%s exited at start-up (%v): %s", p.name, p.err, clip(lastLine(p.logPath, "start_failed"), 300)))
			if err := f.start(d); err != nil {
				f.t.Fatal(err)
			}
		}
		r := f.fsctl(10*time.Second, "pipelines")
		last = r.String()
		var out struct {
			Pipelines []protocol.PipelineSummary `json:"pipelines"`
		}
		if r.code == 0 && json.Unmarshal([]byte(r.stdout), &out) == nil {
			for _, p := range out.Pipelines {
				if p.Name == "daily_sales" && p.Workers >= workers {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("the fleet did not host daily_sales on %d workers within %v; last: %s", workers, readyWait, last)
}

// fsctlResult is one finished fsctl invocation.
type fsctlResult struct {
	args   []string
	code   int
	stdout string
	stderr string
}

func (r fsctlResult) String() string {
	return fmt.Sprintf("fsctl %q: exit %d, stdout %s, stderr %s", r.args, r.code, r.stdout, r.stderr)
}

// fsctl runs fsctl against the fleet with --json, for at most d.
func (f *fleet) fsctl(d time.Duration, args ...string) fsctlResult {
	f.t.Helper()
	args = append(args, "--server", f.nats.urls(), "--json")
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.fsctl, args...)
	var stdout, stderr lockedText
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := fsctlResult{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		r.code = -1
		r.stderr += err.Error()
	}
	return r
}

// fsctlProc starts fsctl against the fleet with --json in the background.
func (f *fleet) fsctlProc(name string, args ...string) *proc {
	f.t.Helper()
	args = append(args, "--server", f.nats.urls(), "--json")
	p, err := startProc(f.t, f.logDir, name, true, exec.Command(bin.fsctl, args...))
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// lockedText collects a short-lived process's output.
type lockedText struct {
	mu  sync.Mutex
	buf []byte
}

func (l *lockedText) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	return len(b), nil
}

func (l *lockedText) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// lastLine returns the last line of a log file that contains s.
func lastLine(path, s string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	found := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			found = l
		}
	}
	return found
}

// tail returns the last n lines of a log file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
