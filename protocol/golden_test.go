package protocol_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowstone-go/flowstone/protocol"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGolden pins the wire form of a RunRequest, a Task and an EventBatch:
// a change to any file is a protocol change, to be made on purpose (bump
// Version if an older peer would misread it). Rewrite with go test -run
// Golden -update.
func TestGolden(t *testing.T) {
	run, err := protocol.EncodeRequest(fullRunRequest())
	wantOK(t, err)
	task, err := protocol.EncodeTask(fullTask())
	wantOK(t, err)
	events, err := protocol.EncodeEventBatch(fullEventBatch())
	wantOK(t, err)
	for name, compact := range map[string][]byte{"run_request.json": run, "task.json": task, "event_batch.json": events} {
		t.Run(name, func(t *testing.T) {
			// Indented, so a change reads as a diff of fields; the field
			// order and the values are the encoder's.
			var data bytes.Buffer
			if err := json.Indent(&data, compact, "", "  "); err != nil {
				t.Fatal(err)
			}
			data.WriteByte('\n')
			path := filepath.Join("testdata", "golden", name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, data.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (create it with -update)", err)
			}
			if got := data.Bytes(); !bytes.Equal(got, want) {
				t.Errorf("wire form changed:\n got %s\nwant %s", got, want)
			}
			// The golden form, indented as it is, is what peers accept.
			var decErr *protocol.Error
			switch name {
			case "task.json":
				_, decErr = protocol.DecodeTask(want)
			case "event_batch.json":
				_, decErr = protocol.DecodeEventBatch(want)
			default:
				_, decErr = protocol.DecodeRequest[protocol.RunRequest](want)
			}
			wantOK(t, decErr)
		})
	}
}
