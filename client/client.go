package client

import (
	"context"
	"errors"
	"sync"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/objectstore/jsstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Client speaks to a FlowStone fleet. It is safe for concurrent use.
type Client struct {
	nc    *nats.Conn
	owned bool // Connect opened nc, so Close closes it
	js    jetstream.JetStream
	cfg   config

	mu   sync.Mutex
	runs jetstream.KeyValue // the runs bucket, opened on first use
	mats jetstream.KeyValue // the materializations bucket, opened on first use
	// results is the fleet's JetStream object store, opened on first use.
	results *jsstore.Store
	// staging is the bucket of copies the fleet stages for clients,
	// opened on first use.
	staging *jsstore.Store
}

// Connect dials the NATS server at url (a comma-separated list for a
// cluster) and returns a client on that connection, which Close closes.
// A server that cannot be reached is an *flowstone.Error of
// TypeUnavailable that says what to do.
func Connect(url string, opts ...Option) (*Client, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	natsOpts := append([]nats.Option{nats.Name("flowstone-client")}, cfg.natsOpts...)
	nc, err := nats.Connect(url, natsOpts...)
	if err != nil {
		return nil, &flowstone.Error{Type: flowstone.TypeUnavailable,
			Message: "cannot connect to NATS at " + redact(url) + ": " + err.Error() +
				": start a fleet (fsctl dev, or cmd/coordinator with NATS) or point --server / NATS_URL at one",
			Details: map[string]any{"server": redact(url), "cause": err.Error()}}
	}
	c, err := newClient(nc, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.owned = true
	return c, nil
}

// New returns a client on an open NATS connection, which stays the
// caller's: Close does not close it.
func New(nc *nats.Conn, opts ...Option) (*Client, error) {
	if nc == nil {
		return nil, &flowstone.Error{Type: flowstone.TypeConfigError, Message: "client.New needs a NATS connection; use client.Connect to dial one"}
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newClient(nc, cfg)
}

func newClient(nc *nats.Conn, cfg config) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, &flowstone.Error{Type: flowstone.TypeConfigError, Message: "jetstream on the NATS connection: " + err.Error()}
	}
	return &Client{nc: nc, js: js, cfg: cfg}, nil
}

// Conn returns the client's NATS connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Close closes the NATS connection if Connect opened it. Calls in flight
// fail with TypeUnavailable.
func (c *Client) Close() {
	if c.owned {
		c.nc.Close()
	}
}

// bucket opens (once) a fleet KV bucket.
func (c *Client) bucket(ctx context.Context, name string, slot *jetstream.KeyValue) (jetstream.KeyValue, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *slot != nil {
		return *slot, nil
	}
	kv, err := c.js.KeyValue(ctx, name)
	if err != nil {
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, &flowstone.Error{Type: flowstone.TypeUnavailable,
				Message: "the fleet's bucket " + name + " does not exist on " + c.url() + ": start a coordinator, which creates it",
				Details: map[string]any{"bucket": name}}
		}
		return nil, c.transportError(ctx, "open bucket "+name, err)
	}
	*slot = kv
	return kv, nil
}
