package workercmd_test

import (
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/worker/workercmd"
)

// own is a pipeline of a user's, not one of the bundled ones.
var own = flowstone.MustPipeline("own",
	flowstone.Asset("one", func(*flowstone.Context) (any, error) { return 1, nil }))

// --source-latency slows a bundled pipeline: asked of a worker hosting its
// own pipelines, it is a usage error rather than a setting silently
// ignored. Hosting the bundled pipelines, it is accepted (and the worker
// goes on to fail on the unreachable server, exit 3).
func TestSourceLatencyNeedsTheBundledPipelines(t *testing.T) {
	t.Setenv("FLOWSTONE_SOURCE_LATENCY", "")
	args := []string{"--source-latency", "1s", "--nats-url", "nats://127.0.0.1:1"}
	var out strings.Builder
	if code := workercmd.Main(args, &out, own); code != 2 || !strings.Contains(out.String(), "--source-latency") {
		t.Fatalf("own pipelines with --source-latency: exit %d, stderr %q; want 2 naming the flag", code, out.String())
	}
	out.Reset()
	if code := workercmd.Main(args, &out); code != 3 || !strings.Contains(out.String(), "start_failed") {
		t.Fatalf("bundled pipelines with --source-latency: exit %d, stderr %q; want 3 (NATS unreachable)", code, out.String())
	}
}

// The logs go to the writer Main is given, as JSON lines.
func TestLogsGoToTheGivenWriter(t *testing.T) {
	var out strings.Builder
	if code := workercmd.Main([]string{"--nats-url", "nats://user:secret@127.0.0.1:1"}, &out, own); code != 3 {
		t.Fatalf("exit %d, want 3; stderr %q", code, out.String())
	}
	if !strings.Contains(out.String(), `"message":"start_failed"`) || strings.Contains(out.String(), "secret") {
		t.Fatalf("stderr %q: want the start_failed log line, without the password", out.String())
	}
}
