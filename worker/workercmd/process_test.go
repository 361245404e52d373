package workercmd_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/fleettest"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/filestore"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

const wait = 60 * time.Second

// binary is cmd/worker, built once for the package's tests.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "flowstone-worker-bin-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "worker")
	out, err := exec.Command("go", "build", "-o", path, "github.com/flowstone-go/flowstone/cmd/worker").CombinedOutput()
	if err != nil {
		return "", &buildError{string(out), err}
	}
	return path, nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "go build ./cmd/worker: " + e.err.Error() + "\n" + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if path, err := binary(); err == nil {
		os.RemoveAll(filepath.Dir(path))
	}
	os.Exit(code)
}

// env is an embedded nats-server, a file result store shared with the
// worker processes, and the fleet's buckets.
type env struct {
	t    *testing.T
	srv  *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	dir  string
	mats kv.Store
	done chan protocol.Completion
}

func newEnv(t *testing.T) *env {
	t.Helper()
	f := fleettest.Start(t)
	e := &env{t: t, srv: f.Srv, nc: f.NC, js: f.JS, dir: t.TempDir(), mats: f.Mats, done: make(chan protocol.Completion, 100)}
	f.Completions(t, func(_ jetstream.Msg, c protocol.Completion) { e.done <- c })
	return e
}

// proc is a worker process.
type proc struct {
	cmd  *exec.Cmd
	logs chan map[string]any // its JSON log lines
	exit chan struct{}       // closed when it has exited
	err  error               // how it exited, once exit is closed
}

// spawn starts cmd/worker against the embedded server with the file store,
// no HTTP endpoint and extra flags.
func (e *env) spawn(extra ...string) *proc {
	e.t.Helper()
	return e.spawnEnv(nil, append([]string{"--http", ""}, extra...)...)
}

// spawnEnv starts cmd/worker against the embedded server with the file
// store, extra flags and the test process's environment without
// FLOWSTONE_HTTP, plus environ ("NAME=value").
func (e *env) spawnEnv(environ []string, extra ...string) *proc {
	e.t.Helper()
	path, err := binary()
	if err != nil {
		e.t.Fatal(err)
	}
	args := append([]string{"--nats-url", e.srv.ClientURL(), "--storage", "file", "--file-dir", e.dir,
		"--ack-wait", "1s", "--log-level", "debug"}, extra...)
	cmd := exec.Command(path, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLOWSTONE_HTTP=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, environ...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: make(chan map[string]any, 1000), exit: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				line = map[string]any{"message": "not_json", "text": sc.Text()}
			}
			select {
			case p.logs <- line:
			default:
			}
		}
		p.err = cmd.Wait()
		close(p.exit)
	}()
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exit
	})
	return p
}

// waitLog waits for a log line with the given message.
func (p *proc) waitLog(t *testing.T, message string) map[string]any {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case line := <-p.logs:
			if line["message"] == message {
				return line
			}
			if line["message"] == "not_json" {
				t.Errorf("worker wrote a line that is not JSON: %v", line["text"])
			}
		case <-p.exit:
			t.Fatalf("worker exited (%v) before logging %s", p.err, message)
		case <-deadline:
			t.Fatalf("worker never logged %s", message)
		}
	}
}

func (e *env) publish(t protocol.Task) {
	e.t.Helper()
	body, perr := protocol.EncodeTask(t)
	if perr != nil {
		e.t.Fatal(perr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	subject := protocol.TaskSubject(t.Pipeline, t.Priority)
	if _, err := e.js.Publish(ctx, subject, body, jetstream.WithMsgID(t.ID)); err != nil {
		e.t.Fatal(err)
	}
	// Ring its bell, as a coordinator does once the task is stored.
	if err := e.js.Conn().Publish(protocol.BellSubject(subject), nil); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) completion() protocol.Completion {
	e.t.Helper()
	select {
	case c := <-e.done:
		return c
	case <-time.After(wait):
		e.t.Fatal("no completion")
		return protocol.Completion{}
	}
}

// waitRecord waits until the record of daily_sales.orders for day
// satisfies ok.
func (e *env) waitRecord(day string, ok func(*flowstone.Materialization) bool) *flowstone.Materialization {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ch, err := e.mats.Watch(ctx, bridge.MaterializationKey("daily_sales", "orders", day))
	if err != nil {
		e.t.Fatal(err)
	}
	for ent := range ch {
		if ent.Value == nil {
			continue
		}
		m, err := bridge.UnmarshalRecord(ent.Value)
		if err != nil {
			e.t.Fatal(err)
		}
		if ok(m) {
			return m
		}
	}
	e.t.Fatal("the record never reached the expected state")
	return nil
}

func ordersTask(run, day string) protocol.Task {
	return protocol.Task{V: protocol.Version, ID: protocol.TaskID(run, "orders", day, 1), RunID: run, Pipeline: "daily_sales",
		Asset: "orders", Partition: day, Attempt: 1, EnqueuedAt: time.Now().UTC()}
}

func TestKilledWorkerTaskCompletesOnAnother(t *testing.T) {
	e := newEnv(t)
	// The first worker's orders take a minute: it is killed long before.
	victim := e.spawn("--id", "victim", "--source-latency", "1m")
	victim.waitLog(t, "worker_started")
	e.publish(ordersTask("killrun", "2025-01-15"))
	e.waitRecord("2025-01-15", func(m *flowstone.Materialization) bool {
		return m.State == flowstone.StateRunning && m.Worker == "victim"
	})
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.exit

	// Another worker, in this process, gets the task after AckWait.
	fs, err := filestore.New(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Conn: natstest.Connect(t, e.srv), Pipelines: pipelines.All(pipelines.Options{}),
		Stores: map[string]objectstore.Store{"file": fs}, AckWait: time.Second, ID: "survivor", IdlePoll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())

	c := e.completion()
	if !c.OK || c.Worker != "survivor" || c.Attempt < 2 {
		t.Fatalf("completion = %+v", c)
	}
	rec := e.waitRecord("2025-01-15", func(m *flowstone.Materialization) bool { return m.State == flowstone.StateCompleted })
	if rec.Worker != "survivor" || rec.Attempt < 2 || rec.RunID != "killrun" {
		t.Fatalf("record = %+v", rec)
	}
	var orders []pipelines.Order
	b, _, err := objectstore.ReadAll(context.Background(), fs, rec.Value.ObjectKey)
	if err != nil || json.Unmarshal(b, &orders) != nil || len(orders) != len(pipelines.GenerateOrders("2025-01-15")) {
		t.Fatalf("result: %d orders, %v", len(orders), err)
	}
}

func TestSIGTERMDrainsAndServesMetrics(t *testing.T) {
	e := newEnv(t)
	p := e.spawn("--id", "drainer", "--source-latency", "1500ms", "--http", "127.0.0.1:0", "--grace", "1m")
	addr, _ := p.waitLog(t, "http_listening")["addr"].(string)

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d %s", code, body)
	}

	e.publish(ordersTask("termrun", "2025-02-01"))
	e.waitRecord("2025-02-01", func(m *flowstone.Materialization) bool { return m.State == flowstone.StateRunning })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The running task finishes within the grace period, then the worker
	// exits cleanly.
	if c := e.completion(); !c.OK || c.Worker != "drainer" || c.Attempt != 1 {
		t.Fatalf("completion = %+v", c)
	}
	select {
	case <-p.exit:
		if p.err != nil {
			t.Fatalf("worker exited with %v after SIGTERM", p.err)
		}
	case <-time.After(wait):
		t.Fatal("worker did not exit after SIGTERM")
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cons, err := e.js.Consumer(ctx, protocol.TaskStream, fleet.ConsumerName("daily_sales", 0))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := cons.Info(ctx); err != nil || info.NumAckPending != 0 || info.NumPending != 0 {
		t.Fatalf("consumer after exit: %+v, %v", info, err)
	}
	manifests, err := e.js.KeyValue(ctx, protocol.ManifestsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if keys, _ := manifests.ListKeys(ctx); keys != nil {
		for k := range keys.Keys() {
			if strings.HasSuffix(k, ".drainer") {
				t.Errorf("manifest %s survived the exit", k)
			}
		}
	}
}

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t)
	p := e.spawn("--id", "metered", "--http", "127.0.0.1:0")
	addr, _ := p.waitLog(t, "http_listening")["addr"].(string)
	e.publish(ordersTask("metricsrun", "2025-03-01"))
	if c := e.completion(); !c.OK {
		t.Fatalf("completion = %+v", c)
	}
	want := []string{
		`flowstone_worker_tasks_started_total{asset="orders",pipeline="daily_sales"} 1`,
		`flowstone_worker_tasks_succeeded_total{asset="orders",pipeline="daily_sales"} 1`,
		`flowstone_worker_task_duration_seconds_bucket{asset="orders",outcome="succeeded",pipeline="daily_sales"`,
		// Every hosted asset has its series from the start.
		`flowstone_worker_tasks_started_total{asset="revenue",pipeline="daily_sales"} 0`,
		`flowstone_worker_tasks_redelivered_total{pipeline="daily_sales"} 0`,
		`flowstone_worker_queue_depth{pipeline="daily_sales",priority="0"} 0`,
		`go_goroutines`,
	}
	// The counters move just after the completion is stored: look until
	// they have.
	deadline := time.Now().Add(wait)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var missing []string
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			// What promtool check metrics reports, from its linter.
			problems, err := promlint.New(bytes.NewReader(b)).Lint()
			if err != nil || len(problems) > 0 {
				t.Fatalf("/metrics does not lint: %v %+v", err, problems)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %v", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
