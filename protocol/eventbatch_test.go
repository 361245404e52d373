package protocol_test

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/flowstone-go/flowstone/protocol"
)

// TestEventBatchBuilderEncodesLikeEncodeEventBatch: what the builder
// builds event by event is byte for byte what EncodeEventBatch encodes, and
// decodes to the same batch.
func TestEventBatchBuilderEncodesLikeEncodeEventBatch(t *testing.T) {
	for name, want := range map[string]protocol.EventBatch{"valid": validEventBatch(), "full": fullEventBatch()} {
		t.Run(name, func(t *testing.T) {
			var b protocol.EventBatchBuilder
			if b.Len() != 0 || b.Size() != 0 || b.Bytes() != nil {
				t.Fatalf("zero builder: len %d, size %d, bytes %q", b.Len(), b.Size(), b.Bytes())
			}
			for _, ev := range want.Events {
				wantOK(t, b.Add(ev, protocol.MaxMessageBytes))
			}
			enc, err := protocol.EncodeEventBatch(want)
			wantOK(t, err)
			got := b.Bytes()
			if !bytes.Equal(got, enc) {
				t.Fatalf("builder:\n%s\nEncodeEventBatch:\n%s", got, enc)
			}
			if b.Len() != len(want.Events) || b.Size() != len(got) || b.Pipeline() != want.Pipeline || b.Kind() != want.Kind {
				t.Fatalf("len %d size %d pipeline %q kind %q, want %d %d %q %q", b.Len(), b.Size(), b.Pipeline(), b.Kind(),
					len(want.Events), len(got), want.Pipeline, want.Kind)
			}
			dec, err := protocol.DecodeEventBatch(got)
			wantOK(t, err)
			if !reflect.DeepEqual(dec, want) {
				t.Fatalf("decoded %#v, want %#v", dec, want)
			}
		})
	}
}

func TestEventBatchBuilderRefuses(t *testing.T) {
	var b protocol.EventBatchBuilder
	wantOK(t, b.Add(validEvent(), protocol.MaxMessageBytes))
	before := b.Bytes()

	invalid := validEvent()
	invalid.RunID = ""
	wantCode(t, b.Add(invalid, protocol.MaxMessageBytes), protocol.CodeBadRequest, "run_id")
	other := validEvent()
	other.Pipeline = "marketing"
	wantCode(t, b.Add(other, protocol.MaxMessageBytes), protocol.CodeBadRequest, "pipeline")
	other = validEvent()
	other.Kind = protocol.EventRunStart
	wantCode(t, b.Add(other, protocol.MaxMessageBytes), protocol.CodeBadRequest, "kind")
	// One byte short of room for a second event.
	limit := len(before) + len(before) - len(`{"v":1,"pipeline":"sales","kind":"run.stop","events":[]}`)
	wantCode(t, b.Add(validEvent(), limit), protocol.CodePayloadTooLarge, "")
	if got := b.Bytes(); !bytes.Equal(got, before) || b.Len() != 1 {
		t.Fatalf("refused events changed the batch: %s", got)
	}
	wantOK(t, b.Add(validEvent(), limit+1))
	if b.Size() != limit+1 {
		t.Fatalf("size %d, want %d", b.Size(), limit+1)
	}

	b.Reset()
	if b.Len() != 0 || b.Bytes() != nil || b.Pipeline() != "" {
		t.Fatalf("reset builder: len %d, bytes %q", b.Len(), b.Bytes())
	}
	// After a reset the next event starts a batch of its own pipeline.
	wantOK(t, b.Add(other, protocol.MaxMessageBytes))
	for i := 1; i < protocol.MaxEventBatch; i++ {
		other.Partition = fmt.Sprint(i)
		wantOK(t, b.Add(other, protocol.MaxMessageBytes))
	}
	wantCode(t, b.Add(other, protocol.MaxMessageBytes), protocol.CodePayloadTooLarge, "")
	batch, err := protocol.DecodeEventBatch(b.Bytes())
	wantOK(t, err)
	if len(batch.Events) != protocol.MaxEventBatch || batch.Kind != protocol.EventRunStart {
		t.Fatalf("full batch: %d events of %s", len(batch.Events), batch.Kind)
	}
}
