package workercmd_test

import (
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// startLog returns the worker's log lines up to and including
// worker_started. The HTTP endpoint is set up before the worker starts, so
// these lines say whether it was served (http_listening) or not
// (http_off).
func (p *proc) startLog(t *testing.T) []map[string]any {
	t.Helper()
	var lines []map[string]any
	deadline := time.After(wait)
	for {
		select {
		case line := <-p.logs:
			lines = append(lines, line)
			if line["message"] == "worker_started" {
				return lines
			}
			if line["message"] == "not_json" {
				t.Errorf("worker wrote a line that is not JSON: %v", line["text"])
			}
		case <-p.exit:
			t.Fatalf("worker exited (%v) before it started; its log: %v", p.err, lines)
		case <-deadline:
			t.Fatalf("worker never logged worker_started; its log: %v", lines)
		}
	}
}

// httpState says what a start log tells of the HTTP endpoint: "off", or
// the address it listens on.
func httpState(t *testing.T, lines []map[string]any) string {
	t.Helper()
	state := ""
	for _, l := range lines {
		switch l["message"] {
		case "http_off":
			state = "off"
		case "http_listening":
			state, _ = l["addr"].(string)
		}
	}
	if state == "" {
		t.Fatalf("the worker started without logging http_off or http_listening: %v", lines)
	}
	return state
}

// stop sends SIGTERM and returns how the worker exited.
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exit:
		return p.err
	case <-time.After(wait):
		t.Fatal("worker did not exit after SIGTERM")
		return nil
	}
}

// Two workers with the default settings run side by side on one host: the
// endpoint is off unless asked for, so neither takes a port the other
// wants (a fixed default port made the second exit with start_failed).
func TestTwoWorkersOnOneHostWithDefaults(t *testing.T) {
	e := newEnv(t)
	first := e.spawnEnv(nil, "--id", "first")
	second := e.spawnEnv(nil, "--id", "second")
	for _, p := range []*proc{first, second} {
		if got := httpState(t, p.startLog(t)); got != "off" {
			t.Errorf("%s: HTTP endpoint %s by default, want off", p.cmd.Args, got)
		}
	}
	// Each ran until told to stop, and drained cleanly: a worker that had
	// failed to start would have exited 1 on its own.
	for _, p := range []*proc{first, second} {
		if err := p.stop(t); err != nil {
			t.Errorf("%s exited with %v after SIGTERM, want 0", p.cmd.Args, err)
		}
	}
}

// FLOWSTONE_HTTP turns the endpoint on at the address it gives, and an
// empty FLOWSTONE_HTTP leaves it off; a --http flag wins over either.
func TestHTTPFromEnvironment(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name    string
		environ []string
		args    []string
		serves  bool
	}{
		{"empty", []string{"FLOWSTONE_HTTP="}, nil, false},
		{"loopback", []string{"FLOWSTONE_HTTP=127.0.0.1:0"}, nil, true},
		{"flag_off", []string{"FLOWSTONE_HTTP=127.0.0.1:0"}, []string{"--http", ""}, false},
		{"flag_on", []string{"FLOWSTONE_HTTP="}, []string{"--http", "127.0.0.1:0"}, true},
	} {
		p := e.spawnEnv(tc.environ, append([]string{"--id", tc.name}, tc.args...)...)
		addr := httpState(t, p.startLog(t))
		switch {
		case !tc.serves && addr != "off":
			t.Errorf("%s: %v %v serves HTTP on %s, want it off", tc.name, tc.environ, tc.args, addr)
		case tc.serves && addr == "off":
			t.Errorf("%s: %v %v left HTTP off, want it served", tc.name, tc.environ, tc.args)
		case tc.serves:
			resp, err := http.Get("http://" + addr + "/healthz")
			if err != nil {
				t.Fatalf("%s: /healthz: %v", tc.name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: /healthz = %d %s", tc.name, resp.StatusCode, body)
			}
		}
		if err := p.stop(t); err != nil {
			t.Errorf("%s: exited with %v after SIGTERM, want 0", tc.name, err)
		}
	}
}
