package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/cli"
)

// dev --workers 0 is a fleet for workers started elsewhere, such as one of
// your own pipelines: its banner says how to start them rather than
// suggesting runs of bundled pipelines nothing hosts.
func TestDevWithoutWorkers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := newSyncBuffer(), newSyncBuffer()
	done := make(chan int, 1)
	go func() { done <- cli.Run(ctx, []string{"dev", "--port", "-1", "--workers", "0"}, out, errOut) }()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(out.String(), "Interrupt (Ctrl-C) to stop.") {
		select {
		case <-out.Written():
		case code := <-done:
			t.Fatalf("dev exited %d: %q %q", code, out.String(), errOut.String())
		case <-deadline:
			t.Fatalf("dev printed no banner: %q / %q", out.String(), errOut.String())
		}
	}
	banner := out.String()
	for _, want := range []string{"a coordinator and no workers", "go run ./cmd/worker", "go run ./examples/ownpipeline/cmd/shop-worker"} {
		if !strings.Contains(banner, want) {
			t.Errorf("dev --workers 0 banner lacks %q:\n%s", want, banner)
		}
	}
	if strings.Contains(banner, "fsctl run example sum") {
		t.Errorf("dev --workers 0 suggests running a bundled pipeline no worker hosts:\n%s", banner)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("dev exit %d, stderr %q", code, errOut.String())
	}
}

// The demo's data directory: one it makes is removed when it ends, and it
// says so when it starts and when it ends; one given with --dir is the
// user's and is kept, with what was in it.
func TestDemoSaysWhatBecomesOfItsData(t *testing.T) {
	r := fsctl(t, "demo", "--source-latency", "0")
	if r.code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	m := regexp.MustCompile(`data in (\S+) \(a temporary directory, removed when the demo ends; pass --dir DIR to keep the data\)\n`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("demo does not say its data directory is temporary and removed:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "its data directory "+m[1]+" is removed") {
		t.Errorf("demo does not say it removed %s:\n%s", m[1], r.stdout)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("the demo's temporary directory %s is still there: %v", m[1], err)
	}

	dir := t.TempDir()
	mine := filepath.Join(dir, "mine.txt")
	if err := os.WriteFile(mine, []byte("the user's"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = fsctl(t, "demo", "--source-latency", "0", "--dir", dir, "--json")
	if r.code != 0 {
		t.Fatalf("demo --dir: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var start struct {
		Step   string
		Output struct {
			Dir       string
			RemoveDir bool `json:"remove_dir"`
		}
	}
	first, _, _ := strings.Cut(r.stdout, "\n")
	if err := json.Unmarshal([]byte(first), &start); err != nil || start.Step != "start" || start.Output.Dir != dir || start.Output.RemoveDir {
		t.Errorf("demo --dir --json start line %q: %+v, %v; want dir %s not to be removed", first, start, err, dir)
	}
	if b, err := os.ReadFile(mine); err != nil || string(b) != "the user's" {
		t.Errorf("demo --dir %s lost the user's file: %q, %v", dir, b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		t.Errorf("demo --dir %s holds no JetStream store: %v", dir, err)
	}
}
