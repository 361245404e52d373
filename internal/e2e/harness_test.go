package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// wait bounds every wait of the package: a generous deadline, never a
// sleep.
const wait = 60 * time.Second

// bin holds the paths of the binaries TestMain builds.
var bin struct{ coordinator, worker, fsctl string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flowstone-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/flowstone-go/flowstone/cmd/coordinator",
		"github.com/flowstone-go/flowstone/cmd/worker",
		"github.com/flowstone-go/flowstone/cmd/fsctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build of cmd/coordinator, cmd/worker and cmd/fsctl failed: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	bin.coordinator = filepath.Join(dir, "coordinator")
	bin.worker = filepath.Join(dir, "worker")
	bin.fsctl = filepath.Join(dir, "fsctl")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fleet is one test's embedded nats-server and the result directory its
// processes share.
type fleet struct {
	t       *testing.T
	srv     *server.Server
	nc      *nats.Conn
	url     string
	dir     string  // the file result store
	daemons []*proc // the coordinators and workers started
}

// newFleet starts an embedded JetStream nats-server (file store in a temp
// dir, random port). Processes are started by coordinator and worker.
func newFleet(t *testing.T) *fleet {
	t.Helper()
	srv := natstest.Server(t)
	return &fleet{t: t, srv: srv, nc: natstest.Connect(t, srv), url: srv.ClientURL(), dir: t.TempDir()}
}

// coordinator starts a cmd/coordinator process with the file store.
func (f *fleet) coordinator(id string, extra ...string) *proc {
	f.t.Helper()
	args := append([]string{"--nats-url", f.url, "--storage", "file", "--file-dir", f.dir, "--id", id, "--log-level", "debug"}, extra...)
	p := start(f.t, "coordinator "+id, bin.coordinator, args...)
	f.daemons = append(f.daemons, p)
	return p
}

// worker starts a cmd/worker process with the file store, no HTTP
// endpoint (several run at once) and extra flags (--ack-wait,
// --source-latency, ...).
func (f *fleet) worker(id string, extra ...string) *proc {
	f.t.Helper()
	args := append([]string{"--nats-url", f.url, "--storage", "file", "--file-dir", f.dir, "--id", id, "--http", "", "--log-level", "debug"}, extra...)
	p := start(f.t, "worker "+id, bin.worker, args...)
	f.daemons = append(f.daemons, p)
	return p
}

// waitReady polls fsctl pipelines until every bundled pipeline is hosted
// by at least workers workers.
func (f *fleet) waitReady(workers int) {
	f.t.Helper()
	f.eventually(fmt.Sprintf("fsctl pipelines to list the bundled pipelines on %d worker(s)", workers), func() (bool, string) {
		for _, d := range f.daemons {
			if !d.running() && !d.stopped {
				f.t.Fatalf("%s exited (%v) while the fleet was starting; its log:\n%s", d.name, d.err, d.stderr.text())
			}
		}
		r := f.fsctl("pipelines")
		if r.code != 0 {
			return false, r.String()
		}
		var out struct {
			Pipelines []protocol.PipelineSummary `json:"pipelines"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			return false, r.String()
		}
		hosted := map[string]int{}
		for _, p := range out.Pipelines {
			hosted[p.Name] = p.Workers
		}
		for _, name := range []string{"example", "daily_sales", "dynamic", "bench", "release"} {
			if hosted[name] < workers {
				return false, r.String()
			}
		}
		return true, ""
	})
}

// eventually polls cond until it holds, failing the test after wait with
// what cond last said.
func (f *fleet) eventually(what string, cond func() (bool, string)) {
	f.t.Helper()
	eventually(f.t, what, cond)
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", wait, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// result is one finished fsctl invocation.
type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("fsctl %q: exit %d\nstdout: %s\nstderr: %s", r.args, r.code, r.stdout, r.stderr)
}

// fsctl runs the fsctl binary against the fleet with --json and waits for
// it.
func (f *fleet) fsctl(args ...string) result {
	f.t.Helper()
	return runFsctl(f.t, append(args, "--server", f.url, "--json")...)
}

// runFsctl runs the fsctl binary with args as given.
func runFsctl(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.fsctl, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("fsctl %q did not run to its end: %v\nstdout: %s\nstderr: %s", args, err, r.stdout, r.stderr)
	}
	return r
}

// ok runs fsctl, expects exit 0, nothing on stderr, and decodes its JSON
// stdout into v (when v is not nil).
func (f *fleet) ok(v any, args ...string) result {
	f.t.Helper()
	r := f.fsctl(args...)
	if r.code != 0 {
		f.t.Fatalf("want exit 0: %s", r)
	}
	if r.stderr != "" {
		f.t.Errorf("--json wrote to stderr: %s", r)
	}
	if v != nil {
		decode(f.t, r, v)
	}
	return r
}

// fails runs fsctl, expects exit code and a JSON error of type typ with a
// message, and returns the error.
func (f *fleet) fails(code int, typ string, args ...string) jsonError {
	f.t.Helper()
	return expectError(f.t, f.fsctl(args...), code, typ)
}

func expectError(t *testing.T, r result, code int, typ string) jsonError {
	t.Helper()
	var out struct {
		Error *jsonError `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Error == nil {
		t.Fatalf("want a JSON error on stdout: %s", r)
	}
	if r.code != code || out.Error.Type != typ || out.Error.Message == "" {
		t.Fatalf("want exit %d and a %s error with a message: %s", code, typ, r)
	}
	return *out.Error
}

// jsonError is fsctl's --json error.
type jsonError struct {
	Type    string         `json:"type"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

func decode(t *testing.T, r result, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not the expected JSON (%v): %s", err, r)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON document: %s", r)
	}
}

// runOut is what fsctl run and get print with --json.
type runOut struct {
	Asset     string          `json:"asset"`
	Partition string          `json:"partition"`
	RunID     string          `json:"run_id"`
	Cached    bool            `json:"cached"`
	Job       *jobOut         `json:"job"`
	Storage   string          `json:"storage"`
	ObjectKey string          `json:"object_key"`
	Encoding  string          `json:"encoding"`
	Size      int64           `json:"size"`
	SHA256    string          `json:"sha256"`
	Value     json.RawMessage `json:"value"`
	Out       string          `json:"out"`
}

type jobOut struct {
	ID          string     `json:"id"`
	Pipeline    string     `json:"pipeline"`
	Asset       string     `json:"asset"`
	Partition   string     `json:"partition"`
	Priority    int        `json:"priority"`
	ScheduledAt *time.Time `json:"scheduled_at"`
	State       string     `json:"state"`
}

// statusOut is what fsctl status prints with --json.
type statusOut struct {
	State       string                  `json:"state"`
	Partition   string                  `json:"partition"`
	CompletedAt *time.Time              `json:"completed_at"`
	DurationMS  int64                   `json:"duration_ms"`
	Storage     string                  `json:"storage"`
	Error       *jsonError              `json:"error"`
	Scatter     *protocol.ScatterStatus `json:"scatter"`
	RunID       string                  `json:"run_id"`
	Value       *valueOut               `json:"value"`
	ScheduledAt *time.Time              `json:"scheduled_at"`
	Gate        *gateOut                `json:"gate"`
}

// valueOut is the value part of statusOut.
type valueOut struct {
	RunID       string    `json:"run_id"`
	CompletedAt time.Time `json:"completed_at"`
	Storage     string    `json:"storage"`
	Size        int64     `json:"size"`
}

// status returns the status of asset's partition.
func (f *fleet) status(pipeline, asset, partition string) statusOut {
	f.t.Helper()
	var st statusOut
	f.ok(&st, "status", pipeline, asset, "--partition", partition)
	return st
}

// waitStatus polls fsctl status until ok holds.
func (f *fleet) waitStatus(pipeline, asset, partition string, what string, ok func(statusOut) bool) statusOut {
	f.t.Helper()
	var st statusOut
	f.eventually(fmt.Sprintf("status of %s [%s] to be %s", asset, partition, what), func() (bool, string) {
		r := f.fsctl("status", pipeline, asset, "--partition", partition)
		if r.code != 0 {
			return false, r.String()
		}
		st = statusOut{}
		decode(f.t, r, &st)
		return ok(st), r.stdout
	})
	return st
}

func stateIs(states ...string) func(statusOut) bool {
	return func(st statusOut) bool {
		for _, s := range states {
			if st.State == s {
				return true
			}
		}
		return false
	}
}

// proc is a process started by a test: a daemon, a watch, a background
// fsctl. Its output is kept line by line and logged if the test fails; it
// is killed when the test ends.
type proc struct {
	name    string
	cmd     *exec.Cmd
	stdout  *lines
	stderr  *lines
	exited  chan struct{} // closed once it has exited
	err     error         // how it exited, once exited is closed
	stopped bool          // the test signalled it to stop
}

func start(t *testing.T, name, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(path, args...), stdout: &lines{}, stderr: &lines{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("---- %s %q (%v) stderr:\n%s", name, args, p.err, p.stderr.text())
			if out := p.stdout.text(); out != "" {
				t.Logf("---- %s stdout:\n%s", name, out)
			}
		}
	})
	return p
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.stopped = true
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
}

// kill SIGKILLs the process and waits for it to be gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
	p.waitExit(t)
}

// waitExit waits for the process to exit and returns its exit code.
func (p *proc) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(wait):
		t.Fatalf("%s did not exit in %v", p.name, wait)
	}
	return p.cmd.ProcessState.ExitCode()
}

// running reports whether the process is still running.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// waitLog waits for a JSON log line on stderr with the given message and
// returns it.
func (p *proc) waitLog(t *testing.T, message string) map[string]any {
	t.Helper()
	var found map[string]any
	eventually(t, p.name+" to log "+message, func() (bool, string) {
		for _, l := range p.stderr.all() {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["message"] == message {
				found = m
				return true, ""
			}
		}
		if !p.running() {
			t.Fatalf("%s exited (%v) before logging %s", p.name, p.err, message)
		}
		return false, "not yet"
	})
	return found
}

// lines is an io.Writer keeping what is written as lines.
type lines struct {
	mu      sync.Mutex
	partial []byte
	done    []string
}

func (l *lines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		l.done = append(l.done, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
}

// all returns the complete lines written so far.
func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.done...)
}

func (l *lines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.done, "\n") + string(l.partial)
}

// watcher is a `fsctl watch PIPELINE --json` process.
type watcher struct {
	f *fleet
	p *proc
}

// watch starts fsctl watch on pipeline and waits until it prints events:
// it publishes a marker event (in a batch of one) until the watch shows it.
func (f *fleet) watch(pipeline string) *watcher {
	f.t.Helper()
	w := &watcher{f: f, p: start(f.t, "fsctl watch "+pipeline, bin.fsctl, "watch", pipeline, "--server", f.url, "--json")}
	marker := protocol.Event{V: protocol.Version, Kind: protocol.EventRunStart, Pipeline: pipeline, Asset: "e2e_watch_marker",
		Partition: "marker", RunID: "e2e-watch-marker"}
	f.eventually("fsctl watch to print a marker event", func() (bool, string) {
		if w.count(protocol.EventRunStart, marker.Asset, marker.Partition) > 0 {
			return true, ""
		}
		if !w.p.running() {
			f.t.Fatalf("fsctl watch exited (%v): %s", w.p.err, w.p.stderr.text())
		}
		marker.Time = time.Now().UTC()
		body, perr := protocol.EncodeEventBatch(protocol.EventBatch{V: protocol.Version, Pipeline: pipeline,
			Kind: marker.Kind, Events: []protocol.Event{marker}})
		if perr != nil {
			f.t.Fatal(perr)
		}
		if err := f.nc.Publish(protocol.EventSubject(pipeline, marker.Kind), body); err != nil {
			f.t.Fatal(err)
		}
		return false, w.p.stdout.text()
	})
	return w
}

// events returns the events printed so far; a line that is not an event
// fails the test.
func (w *watcher) events() []protocol.Event {
	w.f.t.Helper()
	var out []protocol.Event
	for _, l := range w.p.stdout.all() {
		var ev protocol.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Kind == "" {
			w.f.t.Fatalf("fsctl watch --json printed a line that is not an event (%v): %q", err, l)
		}
		out = append(out, ev)
	}
	return out
}

// matching returns the events of kind for asset's partition.
func (w *watcher) matching(kind protocol.EventKind, asset, partition string) []protocol.Event {
	var out []protocol.Event
	for _, ev := range w.events() {
		if ev.Kind == kind && ev.Asset == asset && ev.Partition == partition {
			out = append(out, ev)
		}
	}
	return out
}

func (w *watcher) count(kind protocol.EventKind, asset, partition string) int {
	return len(w.matching(kind, asset, partition))
}

// waitEvent waits for an event of kind for asset's partition and returns
// the first.
func (w *watcher) waitEvent(kind protocol.EventKind, asset, partition string) protocol.Event {
	w.f.t.Helper()
	var ev protocol.Event
	w.f.eventually(fmt.Sprintf("a %s event of %s [%s]", kind, asset, partition), func() (bool, string) {
		if m := w.matching(kind, asset, partition); len(m) > 0 {
			ev = m[0]
			return true, ""
		}
		return false, w.p.stdout.text()
	})
	return ev
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// fsctlProc starts fsctl against the fleet with --json in the background.
func (f *fleet) fsctlProc(name string, args ...string) *proc {
	f.t.Helper()
	return start(f.t, name, bin.fsctl, append(args, "--server", f.url, "--json")...)
}

// result waits for a background fsctl to exit and returns what it did.
func (p *proc) result(t *testing.T) result {
	t.Helper()
	code := p.waitExit(t)
	return result{args: p.cmd.Args[1:], code: code, stdout: p.stdout.text(), stderr: p.stderr.text()}
}

// bucket binds a KV bucket of the fleet, or returns nil if it does not
// exist.
func (f *fleet) bucket(ctx context.Context, name string) jetstream.KeyValue {
	f.t.Helper()
	js, err := jetstream.New(f.nc)
	if err != nil {
		f.t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return kv
}

// runRecords returns the coordinator's records of the runs of asset's
// partition, read from the runs bucket (what a client waiting on a run
// watches).
func (f *fleet) runRecords(pipeline, asset, partition string) []protocol.RunRecord {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	kv := f.bucket(ctx, protocol.RunsBucket)
	if kv == nil {
		return nil
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []protocol.RunRecord
	for k := range keys.Keys() {
		if !strings.HasPrefix(k, "run.") {
			continue
		}
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue // deleted meanwhile
		}
		rec, perr := protocol.DecodeRunRecord(e.Value())
		if perr != nil {
			f.t.Fatalf("run record %s: %v", k, perr)
		}
		if rec.Request.Pipeline == pipeline && rec.Request.Asset == asset && (rec.Request.Partition == partition ||
			rec.Request.Partition == "" && partition == protocol.DefaultPartition) {
			out = append(out, rec)
		}
	}
	return out
}

// cancelOut is what fsctl cancel prints with --json.
type cancelOut struct {
	Cancelled bool   `json:"cancelled"`
	Asset     string `json:"asset"`
	Partition string `json:"partition"`
}
