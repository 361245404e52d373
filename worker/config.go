package worker

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Defaults of Config.
const (
	// ConcurrencyDefault is how many tasks a worker executes at once unless
	// Config.Concurrency says otherwise. Assets mostly wait on I/O, so it is
	// well above the core count of a small machine.
	ConcurrencyDefault = 64
	// IdlePollDefault is how often an idle worker looks for tasks that
	// returned to the queue without a publish (redeliveries after a missed
	// heartbeat, tasks handed back by a stopping worker). New tasks wake an
	// idle worker at once.
	IdlePollDefault = time.Second
	// ScatterBatchesDefault is how many scatter item batches a worker runs
	// at once unless Config.ScatterBatches says otherwise.
	ScatterBatchesDefault = 4
)

// Config configures a Worker. Conn, Pipelines and Stores are required.
type Config struct {
	// Conn is the NATS connection the worker consumes tasks on and
	// publishes completions, events and manifests with. It stays the
	// caller's: Stop does not close it. Required.
	Conn *nats.Conn
	// Pipelines are the pipelines this worker hosts: it consumes their tasks
	// and publishes their manifests. Required: at least one, names unique.
	Pipelines []*flowstone.Pipeline
	// KV holds the materialization records. Defaults to the fleet's
	// materializations bucket (protocol.MaterializationsBucket) on Conn.
	KV kv.Store
	// Stores are the object stores results are written to and read from,
	// by the names tasks use (Task.Storage). Required: at least one.
	Stores map[string]objectstore.Store
	// DefaultStorage names the store used when neither the task nor the
	// asset names one. Defaults to the only store, or "memory".
	DefaultStorage string
	// Concurrency is how many tasks execute at once. Defaults to
	// ConcurrencyDefault.
	Concurrency int
	// ScatterBatches is how many batches of scatter items of each hosted
	// pipeline this worker runs at once, beside its tasks (each batch runs
	// its items side by side; the scatter's Parallel bounds them across
	// the fleet).
	// Defaults to ScatterBatchesDefault.
	ScatterBatches int
	// ID names this worker in records, completions and manifests; it must
	// pass protocol.ValidID. Defaults to "<hostname>-<pid>-<8 nuid
	// characters>", the hostname's characters outside [A-Za-z0-9_-]
	// mapped to '-'.
	ID string
	// AckWait is how long a task may go without a heartbeat before
	// JetStream hands it to another worker; the worker heartbeats every
	// AckWait/3. It is a setting of the shared consumers, so every worker of
	// a fleet should use the same. Defaults to fleet.AckWaitDefault (30s).
	AckWait time.Duration
	// IdlePoll is how often an idle worker looks for redelivered tasks.
	// Defaults to IdlePollDefault.
	IdlePoll time.Duration
	// Logger receives the worker's logs and the assets' logs. Defaults to
	// no logging.
	Logger *zerolog.Logger
	// NoEvents turns off publishing telemetry events on protocol.EventSubject.
	// Defaults to false: events are published.
	NoEvents bool
	// Registerer receives the worker's Prometheus metrics (see Metrics in
	// the package documentation). Defaults to nil: metrics are kept but not
	// registered anywhere.
	Registerer prometheus.Registerer
	// Replicas is how many servers hold each stream and KV bucket the
	// worker creates when it is missing, 1 to 5 (3 on a cluster survives
	// losing a server); it never changes one that exists. Use the
	// coordinator's setting. Defaults to 1.
	Replicas int
	// Limits bounds the streams, buckets and object stores the worker
	// creates when they are missing (existing ones are kept as they are).
	// Use the coordinator's. Defaults to protocol.StreamLimits' defaults.
	Limits protocol.StreamLimits
}

// fleetOptions are the settings of the streams and buckets the worker
// creates, with log told of existing ones that differ.
func (c Config) fleetOptions(log zerolog.Logger) []fleet.Option {
	return []fleet.Option{fleet.WithReplicas(c.Replicas), fleet.WithLogger(log), fleet.WithLimits(c.Limits)}
}

// withDefaults returns c with the defaults filled in. It does not validate.
func (c Config) withDefaults() Config {
	c.Concurrency = cmp.Or(c.Concurrency, ConcurrencyDefault)
	c.AckWait = cmp.Or(c.AckWait, fleet.AckWaitDefault)
	c.IdlePoll = cmp.Or(c.IdlePoll, IdlePollDefault)
	c.ScatterBatches = cmp.Or(c.ScatterBatches, ScatterBatchesDefault)
	if c.ID == "" {
		c.ID = defaultID()
	}
	if c.DefaultStorage == "" {
		c.DefaultStorage = "memory"
		if len(c.Stores) == 1 {
			for name := range c.Stores {
				c.DefaultStorage = name
			}
		}
	}
	return c
}

// validate checks a config with defaults applied; its errors name the field.
func (c Config) validate() error {
	if c.Conn == nil {
		return configError("Conn", "worker needs a NATS connection: set Config.Conn (nats.Connect(url))")
	}
	if len(c.Pipelines) == 0 {
		return configError("Pipelines", "worker hosts no pipeline: set Config.Pipelines (pipelines.All(opts) for the bundled ones)")
	}
	seen := make(map[string]bool, len(c.Pipelines))
	for i, p := range c.Pipelines {
		if p == nil {
			return configError("Pipelines", fmt.Sprintf("Config.Pipelines[%d] is nil", i))
		}
		if err := protocol.ValidName(p.Name()); err != nil {
			return configError("Pipelines", fmt.Sprintf("pipeline %q cannot be hosted on the fleet: %v", p.Name(), err))
		}
		if seen[p.Name()] {
			return configError("Pipelines", fmt.Sprintf("pipeline %q is listed twice in Config.Pipelines", p.Name()))
		}
		seen[p.Name()] = true
	}
	if len(c.Stores) == 0 {
		return configError("Stores", "worker needs an object store for results: set Config.Stores (filestore, s3store or jsstore)")
	}
	if _, ok := c.Stores[c.DefaultStorage]; !ok {
		return configError("DefaultStorage", fmt.Sprintf("default storage %q is not among Config.Stores %v", c.DefaultStorage, storeNames(c.Stores)))
	}
	if c.Concurrency < 0 {
		return configError("Concurrency", fmt.Sprintf("Config.Concurrency is %d; use a positive number (0 means %d)", c.Concurrency, ConcurrencyDefault))
	}
	if err := protocol.ValidID(c.ID); err != nil {
		return configError("ID", fmt.Sprintf("Config.ID %q is not a valid worker id: %v", c.ID, err))
	}
	if c.AckWait < 0 {
		return configError("AckWait", fmt.Sprintf("Config.AckWait is %v; use a positive duration (0 means %v)", c.AckWait, fleet.AckWaitDefault))
	}
	if c.AckWait > 0 && c.AckWait < 3*time.Millisecond {
		return configError("AckWait", fmt.Sprintf("Config.AckWait is %v: too short to heartbeat within", c.AckWait))
	}
	if err := fleet.CheckReplicas("Config.Replicas", c.Replicas); err != nil {
		return configError("Replicas", err.Error())
	}
	if c.ScatterBatches < 0 {
		return configError("ScatterBatches", fmt.Sprintf("Config.ScatterBatches is %d; use a positive number (0 means %d)", c.ScatterBatches, ScatterBatchesDefault))
	}
	if err := c.Limits.Check(); err != nil {
		return configError("Limits", err.Error())
	}
	if c.IdlePoll < 0 {
		return configError("IdlePoll", fmt.Sprintf("Config.IdlePoll is %v; use a positive duration (0 means %v)", c.IdlePoll, IdlePollDefault))
	}
	return nil
}

func configError(field, msg string) error {
	return &flowstone.Error{Type: flowstone.TypeConfigError, Message: "worker: " + msg, Details: map[string]any{"field": field}}
}

// storeNames returns the names of the stores, sorted.
func storeNames(m map[string]objectstore.Store) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// defaultID is "<hostname>-<pid>-<8 nuid characters>", a valid id.
func defaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, host)
	// The tail of a nuid is its sequence: distinct for every call, while
	// the head is shared by the whole process.
	n := nuid.Next()
	suffix := "-" + strconv.Itoa(os.Getpid()) + "-" + n[len(n)-8:]
	if max := protocol.MaxIDBytes - len(suffix); len(host) > max {
		host = host[:max]
	}
	return host + suffix
}
