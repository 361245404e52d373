package worker_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A worker hosting the example pipeline executes a task published the way a
// coordinator publishes it, and reports the result on the completions
// stream.
func Example() {
	dir, _ := os.MkdirTemp("", "worker-example-")
	defer os.RemoveAll(dir)
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	go srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	srv.ReadyForConnections(10 * time.Second)
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	w, err := worker.New(worker.Config{
		Conn:      nc,
		Pipelines: []*flowstone.Pipeline{pipelines.Example()},
		Stores:    map[string]objectstore.Store{"memory": objectstore.NewMemory()},
		ID:        "example-worker",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := w.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer w.Stop(ctx)

	// Watch the completions, then publish a task.
	js, _ := jetstream.New(nc)
	done, _ := js.OrderedConsumer(ctx, protocol.DoneStream, jetstream.OrderedConsumerConfig{})
	t := protocol.Task{V: protocol.Version, ID: protocol.TaskID("run1", "numbers", "default", 1), RunID: "run1",
		Pipeline: "example", Asset: "numbers", Partition: "default", Attempt: 1, EnqueuedAt: time.Now().UTC()}
	body, _ := protocol.EncodeTask(t)
	js.Publish(ctx, protocol.TaskSubject("example", 0), body, jetstream.WithMsgID(t.ID))

	m, err := done.Next(jetstream.FetchMaxWait(20 * time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	c, _ := protocol.DecodeCompletion(m.Data())
	fmt.Println(c.Asset, c.OK, c.Worker, c.Attempt)
	// Output: numbers true example-worker 1
}
