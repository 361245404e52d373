package coordinator_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/jsstore"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// stageSize is over protocol.InlineValueLimit and spans several 1 MiB
// chunks of the staging bucket.
const stageSize = 2<<20 + 12345

// bigBytes is the value of the n-th execution of stagetest.big.
func bigBytes(n int32) []byte {
	b := bytes.Repeat([]byte("0123456789abcdef"), stageSize/16+1)[:stageSize]
	b[0] = byte('A' + n%26)
	return b
}

// stagePipeline has a raw result too large to travel inline, different at
// each execution, and a small one.
func stagePipeline(execs *atomic.Int32) *flowstone.Pipeline {
	return flowstone.MustPipeline("stagetest",
		flowstone.Asset("big", func(*flowstone.Context) (any, error) { return bigBytes(execs.Add(1)), nil }),
		flowstone.Asset("small", func(*flowstone.Context) (any, error) { return []int{1, 2, 3}, nil }),
	)
}

func getStaged(e *env, asset string) (protocol.GetReply, *protocol.Error) {
	return call[protocol.GetReply](e, protocol.VerbGet, protocol.GetRequest{V: protocol.Version, Pipeline: "stagetest", Asset: asset, Stage: true})
}

// stagingBucket opens the staging bucket, which must exist, and returns
// it with the number of messages ever stored in it (chunks and metadata):
// a copy adds its chunks and one metadata message, a reused copy nothing.
func stagingBucket(t *testing.T, e *env) (*jsstore.Store, jetstream.ObjectStore, uint64) {
	t.Helper()
	ctx, cancel := contextWithTimeout(time.Minute)
	defer cancel()
	js, _ := jetstream.New(e.nc)
	obs, err := js.ObjectStore(ctx, protocol.StagingBucket)
	if err != nil {
		t.Fatalf("the staging bucket: %v", err)
	}
	st, err := jsstore.New(ctx, js, protocol.StagingBucket)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "OBJ_"+protocol.StagingBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st, obs, info.State.LastSeq
}

// logLines collects a logger's lines; safe for concurrent writes.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (l *logLines) Write(p []byte) (int, error) {
	var line map[string]any
	if err := json.Unmarshal(p, &line); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	return len(p), nil
}

// staged returns the result_staged lines logged so far.
func (l *logLines) staged() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range l.lines {
		if line["message"] == "result_staged" {
			out = append(out, line)
		}
	}
	return out
}

func TestGetStagesALargeResultOnce(t *testing.T) {
	e := newEnv(t)
	logs := &logLines{}
	log := zerolog.New(logs)
	e.startCoordinatorWith(coordinator.Config{ID: "c1", Logger: &log})
	var execs atomic.Int32
	e.startWorker(stagePipeline(&execs))
	e.waitPipeline("stagetest")
	e.run(protocol.RunRequest{Pipeline: "stagetest", Asset: "big"})
	want := bigBytes(1)
	sum := sha256.Sum256(want)

	// Without Stage: a reference to the file store, no copy.
	plain, perr := call[protocol.GetReply](e, protocol.VerbGet, protocol.GetRequest{V: protocol.Version, Pipeline: "stagetest", Asset: "big"})
	if perr != nil {
		t.Fatal(perr)
	}
	if plain.Inline() || plain.Staged != "" || plain.Storage != "file" || plain.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("get without stage = %+v", plain)
	}

	got, perr := getStaged(e, "big")
	if perr != nil {
		t.Fatal(perr)
	}
	if got.Inline() || got.Staged != protocol.StagedName(got.SHA256) || got.SHA256 != plain.SHA256 || got.Size != stageSize {
		t.Fatalf("get with stage = %+v", got)
	}
	ctx, cancel := contextWithTimeout(time.Minute)
	defer cancel()
	st, obs, seq := stagingBucket(t, e)
	b, info, err := objectstore.ReadAll(ctx, st, got.Staged)
	if err != nil || !bytes.Equal(b, want) || info.SHA256 != got.SHA256 {
		t.Fatalf("staged copy: %d bytes (want %d, equal %v), sha %s, %v", len(b), len(want), bytes.Equal(b, want), info.SHA256, err)
	}
	status, err := obs.Status(ctx)
	if err != nil || status.TTL() != protocol.StagingTTL {
		t.Fatalf("staging bucket TTL = %v, %v; want %v", status.TTL(), err, protocol.StagingTTL)
	}
	if lines := logs.staged(); len(lines) != 1 || lines[0]["reused"] != false || lines[0]["asset"] != "big" ||
		lines[0]["pipeline"] != "stagetest" || lines[0]["partition"] != "default" || lines[0]["size"] != float64(stageSize) {
		t.Errorf("logged %v, want one result_staged line of the copy", lines)
	}

	// Asked again, several at once: the copy is handed out, not made again.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			again, perr := getStaged(e, "big")
			if perr != nil || again.Staged != got.Staged {
				t.Errorf("get with stage again = %+v, %v", again, perr)
			}
		})
	}
	wg.Wait()
	if _, _, after := stagingBucket(t, e); after != seq {
		t.Errorf("the staging bucket got %d more messages for a copy it holds", after-seq)
	}
	if lines := logs.staged(); len(lines) != 5 || lines[1]["reused"] != true || lines[4]["reused"] != true {
		t.Errorf("logged %v, want 4 more result_staged lines, reused", lines)
	}

	// A result that fits inline travels inline, staged or not.
	e.run(protocol.RunRequest{Pipeline: "stagetest", Asset: "small"})
	small, perr := getStaged(e, "small")
	if perr != nil || !small.Inline() || small.Staged != "" {
		t.Fatalf("small get with stage = %+v, %v", small, perr)
	}
}

func TestStagingRefusesBytesThatAreNotTheRecords(t *testing.T) {
	e := newEnv(t)
	e.startCoordinator("c1")
	var execs atomic.Int32
	e.startWorker(stagePipeline(&execs))
	e.waitPipeline("stagetest")
	e.run(protocol.RunRequest{Pipeline: "stagetest", Asset: "big"})
	plain, perr := call[protocol.GetReply](e, protocol.VerbGet, protocol.GetRequest{V: protocol.Version, Pipeline: "stagetest", Asset: "big"})
	if perr != nil {
		t.Fatal(perr)
	}
	// Replace the stored object with other bytes, whole and checksummed
	// by the store: only the record can tell.
	ctx, cancel := contextWithTimeout(time.Minute)
	defer cancel()
	other := bigBytes(2)
	if _, err := e.stores["file"].Put(ctx, plain.ObjectKey, bytes.NewReader(other), int64(len(other))); err != nil {
		t.Fatal(err)
	}
	_, perr = getStaged(e, "big")
	wantCode(t, perr, protocol.CodeStorageError)
	if perr.Details["staged"] != protocol.StagedName(plain.SHA256) {
		t.Errorf("details = %v", perr.Details)
	}
	// The wrong copy is not left under the record's name.
	st, _, _ := stagingBucket(t, e)
	if _, err := st.Stat(ctx, protocol.StagedName(plain.SHA256)); !errors.Is(err, objectstore.ErrNotFound) {
		t.Errorf("a copy whose bytes do not match its name: stat = %v, want not found", err)
	}
}
