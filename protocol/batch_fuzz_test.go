package protocol_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/flowstone-go/flowstone/protocol"
)

// A worker decodes whatever arrives on a task subject with the batch
// header, and a coordinator whatever arrives on a done subject: neither may
// panic, and what they accept must be what the batch encoders produce, and
// what JoinTaskBatch / JoinCompletionBatch produce from its items.

func FuzzDecodeTaskBatch(f *testing.F) {
	one, _ := protocol.EncodeTaskBatch(taskBatch(1))
	three, _ := protocol.EncodeTaskBatch(taskBatch(3))
	full, _ := protocol.EncodeTaskBatch(protocol.TaskBatch{V: protocol.Version, Tasks: []protocol.Task{fullTask()}})
	single, _ := protocol.EncodeTask(validTask())
	dup := taskBatch(2)
	dup.Tasks[1].ID = dup.Tasks[0].ID
	seed(f, one, three, full, single, bytes.Replace(three, []byte(`"v":1`), []byte(`"v":2`), 1),
		[]byte(`{"v":1,"tasks":[]}`), []byte(`{"v":1,"tasks":null}`), []byte(`{"v":1,"tasks":[null]}`),
		[]byte(`{"v":1,"tasks":[{}]}`), []byte(`{"v":1,"completions":[]}`), mustJSONF(f, dup))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, data, protocol.DecodeTaskBatch, protocol.EncodeTaskBatch)
		b, err := protocol.DecodeTaskBatch(data)
		if err != nil {
			return
		}
		items := make([][]byte, len(b.Tasks))
		for i, tk := range b.Tasks {
			if items[i], err = protocol.EncodeTask(tk); err != nil {
				t.Fatalf("task %d of an accepted batch does not encode alone: %v", i, err)
			}
		}
		enc, _ := protocol.EncodeTaskBatch(b)
		if joined := protocol.JoinTaskBatch(items); !bytes.Equal(joined, enc) {
			t.Fatalf("join of the items differs from the batch encoding:\n join %s\n  enc %s", joined, enc)
		}
	})
}

func FuzzDecodeCompletionBatch(f *testing.F) {
	one, _ := protocol.EncodeCompletionBatch(completionBatch(1))
	four, _ := protocol.EncodeCompletionBatch(completionBatch(4))
	single, _ := protocol.EncodeCompletion(validCompletion())
	seed(f, one, four, single,
		[]byte(`{"v":1,"completions":[]}`), []byte(`{"v":1,"completions":null}`), []byte(`{"v":1,"completions":[null]}`),
		[]byte(`{"v":1,"completions":[{}]}`), []byte(`{"v":1,"tasks":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecode(t, data, protocol.DecodeCompletionBatch, protocol.EncodeCompletionBatch)
		b, err := protocol.DecodeCompletionBatch(data)
		if err != nil {
			return
		}
		items := make([][]byte, len(b.Completions))
		total := 0
		for i, c := range b.Completions {
			if items[i], err = protocol.EncodeCompletion(c); err != nil {
				t.Fatalf("completion %d of an accepted batch does not encode alone: %v", i, err)
			}
			total += len(items[i])
		}
		enc, _ := protocol.EncodeCompletionBatch(b)
		joined := protocol.JoinCompletionBatch(items)
		if !bytes.Equal(joined, enc) {
			t.Fatalf("join of the items differs from the batch encoding:\n join %s\n  enc %s", joined, enc)
		}
		if n := protocol.BatchBytes(len(items), total); n != len(joined) {
			t.Fatalf("BatchBytes = %d, joined batch is %d bytes", n, len(joined))
		}
	})
}

// mustJSONF is mustJSON for a fuzz target's seed corpus.
func mustJSONF(f *testing.F, v any) []byte {
	f.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		f.Fatal(err)
	}
	return data
}
