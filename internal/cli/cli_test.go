package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/cli"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.fleet != nil {
		shared.fleet.Stop(context.Background())
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goroutine leak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// result is one fsctl invocation's outcome.
type result struct {
	code           int
	stdout, stderr string
}

// fsctl runs the CLI in-process.
func fsctl(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, args, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// errorJSON decodes the {"error":{...}} document of a failed --json call.
func errorJSON(t *testing.T, r result) (typ, msg string, details map[string]any) {
	t.Helper()
	var doc struct {
		Error struct {
			Type    string         `json:"type"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document (%v): %q", err, r.stdout)
	}
	return doc.Error.Type, doc.Error.Message, doc.Error.Details
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no verb", nil, "no verb given"},
		{"unknown verb", []string{"frobnicate"}, `unknown verb "frobnicate"`},
		{"unknown flag", []string{"run", "example", "sum", "--bogus"}, "bogus"},
		{"unknown global flag", []string{"--bogus", "pipelines"}, "bogus"},
		{"missing asset", []string{"run", "example"}, "run takes PIPELINE ASSET, got 1"},
		{"extra argument", []string{"graph", "example", "sum"}, "graph takes PIPELINE, got 2"},
		{"bad duration", []string{"run", "example", "sum", "--timeout", "soon"}, "timeout"},
		{"bad int", []string{"run", "example", "sum", "--priority", "high"}, "priority"},
		{"bad time", []string{"run", "example", "sum", "--at", "tomorrow"}, "RFC 3339"},
		{"bad format", []string{"graph", "example", "--format", "svg"}, "ascii, mermaid or dot"},
		{"no partitions", []string{"backfill", "daily_sales", "revenue"}, "--partitions"},
		{"empty item", []string{"backfill", "daily_sales", "revenue", "--partitions", "a,,b"}, "empty item"},
		{"reversed range", []string{"backfill", "daily_sales", "revenue", "--partitions", "2025-02-01..2025-01-01"}, "ends before it starts"},
		{"bad range", []string{"backfill", "daily_sales", "revenue", "--partitions", "2025-01-01..soon"}, "dates"},
		{"bad policy", []string{"backfill", "daily_sales", "revenue", "--partitions", "a", "--on-error", "retry"}, "halt or continue"},
		{"parallel zero", []string{"backfill", "daily_sales", "revenue", "--partitions", "a", "--parallel", "0"}, "1 to 1024"},
		{"parallel over the cap", []string{"backfill", "daily_sales", "revenue", "--partitions", "a", "--parallel", "1000000"}, "1 to 1024"},
		{"backfill timeout zero", []string{"backfill", "daily_sales", "revenue", "--partitions", "a", "--timeout", "0"}, "--timeout must be a positive duration"},
		{"backfill timeout negative", []string{"backfill", "daily_sales", "revenue", "--partitions", "a", "--timeout", "-1s"}, "--timeout must be a positive duration"},
		{"timeout zero before the verb", []string{"--timeout", "0s", "status", "example", "sum"}, "--timeout must be a positive duration"},
		// 3.65 million days: counted from the two ends, never expanded.
		{"range of ten thousand years", []string{"backfill", "daily_sales", "revenue", "--partitions", "0001-01-01..9999-12-31"}, "spans 3652059 days; the limit is 100000"},
		{"invalidate range of ten thousand years", []string{"invalidate", "daily_sales", "revenue", "--partitions", "0001-01-01..9999-12-31"}, "spans 3652059 days"},
		{"backfill without asset", []string{"backfill", "daily_sales", "--partitions", "a"}, "PIPELINE ASSET (or --follow ID)"},
		{"follow with target", []string{"backfill", "daily_sales", "revenue", "--follow", "abc"}, "--follow takes a backfill id alone"},
		{"follow with partitions", []string{"backfill", "--follow", "abc", "--partitions", "a"}, "--follow takes a backfill id alone"},
		{"invalidate partition and all", []string{"invalidate", "daily_sales", "orders", "--partition", "2025-01-01", "--all"}, "exclusive"},
		{"invalidate partitions and all", []string{"invalidate", "daily_sales", "orders", "--partitions", "2025-01-01..2025-01-02", "--all"}, "exclusive"},
		{"invalidate bad range", []string{"invalidate", "daily_sales", "orders", "--partitions", "2025-01-02..2025-01-01"}, "ends before it starts"},
		{"invalidate empty item", []string{"invalidate", "daily_sales", "orders", "--partitions", "a,"}, "empty item"},
		{"bad automation action", []string{"schedule", "stop", "clitest", "new_year"}, "pause or resume"},
		{"automation without name", []string{"sensor", "pause", "clitest"}, "sensor takes ACTION PIPELINE NAME, got 2"},
		{"help of unknown verb", []string{"help", "nope"}, "unknown verb"},
		{"half tls", []string{"pipelines", "--tls-cert", "c.pem"}, "--tls-key"},
		{"negative workers", []string{"dev", "--workers", "-1"}, "--workers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fsctl(t, tc.args...)
			if r.code != cli.ExitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, cli.ExitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "Usage") {
				t.Errorf("stderr does not say %q and show the usage: %q", tc.want, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			r = fsctl(t, append(tc.args, "--json")...)
			if typ, msg, _ := errorJSON(t, r); r.code != cli.ExitUsage || typ != "usage" || msg == "" {
				t.Errorf("--json: exit %d, error %s %q", r.code, typ, msg)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	r := fsctl(t, "help")
	if r.code != 0 || !strings.Contains(r.stdout, "Verbs:") || !strings.Contains(r.stdout, "Exit status") {
		t.Errorf("help: exit %d, %q", r.code, r.stdout)
	}
	for _, verb := range []string{"run", "get", "exists", "status", "cancel", "invalidate", "backfill", "graph", "assets", "info", "pipelines", "watch", "dev", "demo", "version"} {
		if !strings.Contains(r.stdout, "\n  "+verb+" ") {
			t.Errorf("help does not list %s", verb)
		}
	}
	for _, args := range [][]string{{"help", "run"}, {"run", "-h"}, {"run", "example", "sum", "--help"}} {
		r := fsctl(t, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: fsctl run PIPELINE ASSET") || !strings.Contains(r.stdout, "--no-deps") {
			t.Errorf("%v: exit %d, %q", args, r.code, r.stdout)
		}
	}
	if r := fsctl(t, "-h"); r.code != 0 || !strings.Contains(r.stdout, "Verbs:") {
		t.Errorf("-h: exit %d", r.code)
	}
}

func TestVersion(t *testing.T) {
	r := fsctl(t, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "fsctl ") || !strings.Contains(r.stdout, "protocol v1") {
		t.Errorf("version: exit %d, %q", r.code, r.stdout)
	}
	r = fsctl(t, "version", "--json")
	var v struct {
		Version  string `json:"version"`
		Protocol int    `json:"protocol"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Protocol != 1 || v.Version == "" {
		t.Errorf("version --json: exit %d, %q", r.code, r.stdout)
	}
}

func TestUnreachableFleet(t *testing.T) {
	r := fsctl(t, "pipelines", "--server", "nats://127.0.0.1:1")
	if r.code != cli.ExitUnavailable || !strings.Contains(r.stderr, "fsctl dev") {
		t.Errorf("no server: exit %d, stderr %q", r.code, r.stderr)
	}
	// Global flags before the verb, and --json anywhere.
	r = fsctl(t, "--server", "nats://127.0.0.1:1", "--json", "run", "example", "sum")
	if typ, _, _ := errorJSON(t, r); r.code != cli.ExitUnavailable || typ != "unavailable" || r.stderr != "" {
		t.Errorf("no server, --json: exit %d, type %s, stderr %q", r.code, typ, r.stderr)
	}

	// A NATS server without a coordinator, found through NATS_URL.
	s := natstest.Server(t)
	t.Setenv("NATS_URL", s.ClientURL())
	r = fsctl(t, "status", "example", "sum")
	if r.code != cli.ExitUnavailable || !strings.Contains(r.stderr, "no coordinator is answering on "+s.ClientURL()) {
		t.Errorf("no coordinator: exit %d, stderr %q", r.code, r.stderr)
	}
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads; Written signals each write.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{written: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.written <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

// Written is signalled after writes.
func (s *syncBuffer) Written() <-chan struct{} { return s.written }

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
