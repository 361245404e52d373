package fleettest

import (
	"strings"
	"sync"
	"testing"

	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Fetches counts the pull requests (fetches) workers send to the consumers
// of the task stream, by consumer name.
type Fetches struct {
	mu    sync.Mutex
	n     map[string]int
	total int
}

// CountFetches counts, from its return on, the fetches sent to srv's task
// stream, on a connection of its own.
func CountFetches(t testing.TB, srv *server.Server) *Fetches {
	t.Helper()
	f := &Fetches{n: map[string]int{}}
	nc := natstest.Connect(t, srv)
	if _, err := nc.Subscribe("$JS.API.CONSUMER.MSG.NEXT."+protocol.TaskStream+".*", func(m *nats.Msg) {
		f.mu.Lock()
		f.n[m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]]++
		f.total++
		f.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return f
}

// Of returns how many fetches consumer has had.
func (f *Fetches) Of(consumer string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[consumer]
}

// Total returns how many fetches all consumers have had.
func (f *Fetches) Total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total
}

// Counts returns a copy of the counts by consumer.
func (f *Fetches) Counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.n))
	for k, v := range f.n {
		out[k] = v
	}
	return out
}

// Reset forgets the counts so far.
func (f *Fetches) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.n)
	f.total = 0
}
