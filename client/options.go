package client

import (
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
)

// TimeoutDefault is how long a request waits for its reply when neither
// its context's deadline nor WithTimeout says otherwise.
const TimeoutDefault = 10 * time.Second

// Option configures a Client.
type Option func(*config) error

type config struct {
	timeout  time.Duration
	natsOpts []nats.Option
	stores   map[string]objectstore.Store
}

func newConfig(opts []Option) (config, error) {
	cfg := config{timeout: TimeoutDefault, stores: map[string]objectstore.Store{}}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// WithTimeout sets how long a request waits for its reply when its
// context has no deadline. Defaults to TimeoutDefault.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return &flowstone.Error{Type: flowstone.TypeConfigError, Message: "client.WithTimeout needs a positive duration, got " + d.String(),
				Details: map[string]any{"timeout": d.String()}}
		}
		c.timeout = d
		return nil
	}
}

// WithNATSOptions adds options to the NATS connection Connect opens
// (credentials, TLS, a name, reconnect behaviour). New ignores them: its
// connection is already open.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(c *config) error {
		c.natsOpts = append(c.natsOpts, opts...)
		return nil
	}
}

// WithStore lets the client read results too large to travel inline
// (over protocol.InlineValueLimit bytes) directly from the object store
// the fleet keeps them in; name is the fleet's name for that store (the
// result's Record.Storage). Without it, such a result is read from the
// fleet's JetStream object store if it is there, or else from a copy a
// coordinator stages for the client (see Client.Get): slower, and it
// costs the fleet a copy.
func WithStore(name string, s objectstore.Store) Option {
	return func(c *config) error {
		if err := protocol.ValidName(name); err != nil || s == nil {
			return &flowstone.Error{Type: flowstone.TypeConfigError, Message: "client.WithStore needs a store name (letters, digits, _ or -) and a store",
				Details: map[string]any{"name": name}}
		}
		c.stores[name] = s
		return nil
	}
}
