package filestore

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/objectstore"
)

// childDirEnv tells the test binary, run again as a child process, which
// store directory to open.
const childDirEnv = "FILESTORE_TEST_CHILD_DIR"

// TestObjectsSurviveProcess writes objects in this process, then reads them
// in a new process (this test binary run again), which writes one back.
func TestObjectsSurviveProcess(t *testing.T) {
	if os.Getenv(childDirEnv) != "" {
		t.Skip("running as the child process")
	}
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range processKeys {
		if _, err := s.Put(ctx, key, strings.NewReader(processValue(key)), -1); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestChildProcessReadsStore$", "-test.v")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestChildProcessReadsStore") {
		t.Fatalf("child process: %v\n%s", err, out)
	}

	reopened, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := objectstore.ReadAll(ctx, reopened, "from/child")
	if err != nil || string(got) != processValue("from/child") {
		t.Fatalf("object written by the child: %q, %v", got, err)
	}
}

// TestChildProcessReadsStore is the child half of TestObjectsSurviveProcess.
func TestChildProcessReadsStore(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("run as a child by TestObjectsSurviveProcess")
	}
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range processKeys {
		got, info, err := objectstore.ReadAll(ctx, s, key)
		if err != nil || string(got) != processValue(key) {
			t.Fatalf("Get(%q) in the child = %q, %v", key, got, err)
		}
		if stat, err := s.Stat(ctx, key); err != nil || stat != info {
			t.Fatalf("Stat(%q) in the child = %+v, %v; Get said %+v", key, stat, err, info)
		}
	}
	if _, err := s.Put(ctx, "from/child", strings.NewReader(processValue("from/child")), -1); err != nil {
		t.Fatal(err)
	}
}

var processKeys = []string{"from/parent", "nested/deeper/" + strings.Repeat("long", 100)}

func processValue(key string) string { return "value of " + key }
