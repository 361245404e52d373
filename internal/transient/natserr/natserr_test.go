package natserr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/internal/transient/natserr"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestTransient classifies errors a real server and client produced.
func TestTransient(t *testing.T) {
	srv := natstest.RestartableServer(t)
	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	bucket, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b"})
	must(err)
	rev, err := bucket.Put(ctx, "k", []byte("v"))
	must(err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	must(err)
	silent, err := nc.SubscribeSync("silent")
	must(err)
	defer silent.Unsubscribe()
	must(nc.Flush())

	// Produce each error for real.
	_, noResponders := nc.Request("nobody", nil, 5*time.Second)
	_, timeout := nc.Request("silent", nil, time.Millisecond)
	_, noStream := js.Publish(ctx, "unbound", nil)
	_, conflict := bucket.Update(ctx, "k", []byte("w"), rev+10)
	_, notFound := bucket.Get(ctx, "missing")
	_, streamNotFound := js.Stream(ctx, "missing")
	disconnected := droppedByRestart(t, srv, js)

	closedConn := srv.Connect(t)
	closedConn.Close()
	_, closed := closedConn.Request("nobody", nil, time.Second)

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, callerCanceled := js.Publish(canceled, "s.x", nil)

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"no responders", noResponders, true},
		{"request timeout", timeout, true},
		{"publish with no stream", noStream, true},
		{"pending publish dropped by a restart", disconnected, true},
		{"wrapped", fmt.Errorf("jskv: get: %w", noResponders), true},
		{"no heartbeat", jetstream.ErrNoHeartbeat, true},
		{"reconnecting", nats.ErrConnectionReconnecting, true},
		{"JetStream system temporarily unavailable", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{"expected last sequence per subject temporarily unavailable", &jetstream.APIError{Code: 503, ErrorCode: 10163}, true},
		{"cluster can not handle request (election)", &jetstream.APIError{Code: 500, ErrorCode: 10009}, true},
		{"our own time limit", &transient.TimeoutError{Op: "jetstream request"}, true},
		{"JetStream not enabled", &jetstream.APIError{Code: 503, ErrorCode: 10076}, false},
		{"insufficient resources", &jetstream.APIError{Code: 503, ErrorCode: 10023}, false},
		{"CAS conflict", conflict, false},
		{"key not found", notFound, false},
		{"stream not found", streamNotFound, false},
		{"connection closed", closed, false},
		{"caller canceled", callerCanceled, false},
		{"caller canceled a timed-out request", fmt.Errorf("%w: %w", context.Canceled, timeout), false},
		{"nil", nil, false},
		{"unknown", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil && tt.name != "nil" {
				t.Fatal("the server produced no error")
			}
			if got := natserr.Transient(tt.err); got != tt.want {
				t.Errorf("Transient(%v) = %v, want %v", tt.err, got, tt.want)
			}
			// Marked, transient.Is agrees without knowing NATS.
			if got := transient.Is(natserr.Mark(tt.err)); got != tt.want {
				t.Errorf("transient.Is(Mark(%v)) = %v, want %v", tt.err, got, tt.want)
			}
			if tt.err != nil && !errors.Is(natserr.Mark(tt.err), tt.err) {
				t.Errorf("Mark lost the error")
			}
		})
	}
}

// droppedByRestart publishes to a subject whose only listener never
// answers, restarts the server while the acknowledgement is pending, and
// returns the error the pending publish gets.
func droppedByRestart(t *testing.T, srv *natstest.Restartable, js jetstream.JetStream) error {
	t.Helper()
	f, err := js.PublishAsync("silent", []byte("lost"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Ok():
		t.Fatal("a publish nobody answered was acknowledged")
	case err := <-f.Err():
		return err
	case <-t.Context().Done():
	}
	return nil
}
