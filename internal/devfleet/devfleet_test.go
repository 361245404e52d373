package devfleet_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/internal/devfleet"
)

func TestStartRunStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := devfleet.Start(ctx, devfleet.Config{Port: -1, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	dir := f.Dir()
	c, err := client.Connect(f.URL())
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(ctx, "example", "sum")
	if err != nil {
		t.Fatal(err)
	}
	var sum int
	if err := res.Decode(&sum); err != nil || sum != 30 {
		t.Fatalf("sum = %d, %v; want 30", sum, err)
	}
	c.Close()
	if err := f.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s left behind: %v", dir, err)
	}
}

func TestDataSurvivesARestartOnTheSameDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	f, err := devfleet.Start(ctx, devfleet.Config{Port: -1, Dir: dir, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Connect(f.URL())
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Run(ctx, "example", "sum")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := f.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	f, err = devfleet.Start(ctx, devfleet.Config{Port: -1, Dir: dir, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop(context.Background())
	c, err = client.Connect(f.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	again, err := c.Run(ctx, "example", "sum")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.RunID != first.RunID {
		t.Errorf("after restart: cached=%v run %s, want the first run %s cached", again.Cached, again.RunID, first.RunID)
	}
}

func TestNoWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := devfleet.Start(ctx, devfleet.Config{Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop(context.Background())
	c, err := client.Connect(f.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Pipelines(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("pipelines = %v, %v; want none without workers", got, err)
	}
}

func TestPortInUse(t *testing.T) {
	ctx := context.Background()
	f, err := devfleet.Start(ctx, devfleet.Config{Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop(ctx)
	var port int
	for _, ch := range f.URL()[len("nats://127.0.0.1:"):] {
		port = port*10 + int(ch-'0')
	}
	if g, err := devfleet.Start(ctx, devfleet.Config{Port: port}); err == nil {
		g.Stop(ctx)
		t.Fatal("a second fleet started on a taken port")
	}
}
