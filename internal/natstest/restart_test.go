package natstest

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestRestartKeepsPortAndStreams(t *testing.T) {
	r := RestartableServer(t)
	url := r.URL()
	js, err := jetstream.New(r.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if r.URL() != url {
		t.Fatalf("URL changed across the restart: %s, then %s", url, r.URL())
	}
	// The same client reconnects and finds the message.
	s, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil || string(m.Data) != "kept" {
		t.Fatalf("after the restart: %v, %v", m, err)
	}
}
