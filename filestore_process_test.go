package flowstone_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/filestore"
)

// helperStoreDirEnv tells the test binary, started again as a child
// process, to act as TestHelperProcess and which store directory to use.
const helperStoreDirEnv = "FLOWSTONE_HELPER_STORE_DIR"

// helperRecordPrefix marks the child's output line carrying the record.
const helperRecordPrefix = "FLOWSTONE_RECORD "

// TestFileStoreIsReadByANewProcess runs the example pipeline in a child
// process whose engine keeps results in a file store, then reads the result
// here, in another process, from the directory alone: the bytes this process
// decodes were written by the child.
func TestFileStoreIsReadByANewProcess(t *testing.T) {
	if os.Getenv(helperStoreDirEnv) != "" {
		t.Skip("running as the helper process")
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(ctxT(t), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperStoreDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper process: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	var rec *flowstone.Materialization
	childPID := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), helperRecordPrefix)
		if !ok {
			continue
		}
		pid, js, _ := strings.Cut(line, " ")
		childPID, _ = strconv.Atoi(pid)
		if rec, err = bridge.UnmarshalRecord([]byte(js)); err != nil {
			t.Fatal(err)
		}
	}
	if rec == nil {
		t.Fatalf("the helper printed no record:\n%s", out)
	}
	if childPID == 0 || childPID == os.Getpid() {
		t.Fatalf("the result was written by pid %d, this test is pid %d: want another process", childPID, os.Getpid())
	}
	if rec.Value.Storage != "file" || rec.Value.ObjectKey == "" || rec.State != flowstone.StateCompleted {
		t.Fatalf("record from the child = %+v", rec)
	}

	// A fresh store on the same directory: nothing shared with the child
	// but the files.
	ctx := ctxT(t)
	store, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, info, err := objectstore.ReadAll(ctx, store, rec.Value.ObjectKey)
	if err != nil {
		t.Fatalf("read %s written by the child: %v", rec.Value.ObjectKey, err)
	}
	if info.SHA256 != rec.Value.SHA256 || info.Size != rec.Value.Size {
		t.Fatalf("stored object %+v does not match the child's record (size %d, sha256 %s)", info, rec.Value.Size, rec.Value.SHA256)
	}
	var sum int
	if err := json.Unmarshal(b, &sum); err != nil || sum != 30 {
		t.Fatalf("object %q decodes to %d (%v), want 30", b, sum, err)
	}

	// The same bytes through a Result, as a fleet client reads them.
	res := bridge.NewResult(rec, true, nil, func(ctx context.Context) (io.ReadCloser, error) {
		rc, _, err := store.Get(ctx, rec.Value.ObjectKey)
		return rc, err
	})
	if got := decodeInt(t, res); got != 30 {
		t.Fatalf("Result.Decode = %d, want 30", got)
	}
}

// TestHelperProcess is the child half of TestFileStoreIsReadByANewProcess:
// it materializes the example pipeline into a file store and prints the
// record of "sum".
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperStoreDirEnv)
	if dir == "" {
		t.Skip("started as a child by TestFileStoreIsReadByANewProcess")
	}
	store, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := flowstone.NewEngine(flowstone.EngineConfig{Stores: map[string]objectstore.Store{"file": store}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// Storage names the store, so even this small result goes to a file.
	res, err := e.Run(ctxT(t), examplePipeline(t, nil), "sum", flowstone.Storage("file"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.MarshalRecord(res.Record)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%d %s\n", helperRecordPrefix, os.Getpid(), b)
}
