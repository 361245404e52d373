// Package workercmd is cmd/worker, and the worker command of your own
// pipelines: it reads the worker's settings from flags and the environment,
// connects to NATS and the result stores, hosts the pipelines it is given
// (the bundled ones, pipelines.All, when none are) until SIGINT or SIGTERM,
// then drains.
//
// A worker of your own pipelines is a main package of one line:
//
//	func main() {
//		os.Exit(workercmd.Main(os.Args[1:], os.Stderr, shop.Pipeline()))
//	}
//
// It takes every flag and environment variable cmd/worker takes, and joins
// any fleet: the coordinators learn its pipelines from the manifest it
// publishes, so nothing else is deployed or configured for them. See
// examples/ownpipeline and the README's "Deploy your own pipelines".
//
// Every setting has a flag and an environment variable; a flag given on the
// command line wins over the environment, which wins over the default. The
// NATS, TLS, storage, HTTP, log and replica settings are the ones
// cmd/coordinator takes (see -help); the worker adds --concurrency, --id,
// --grace, --ack-wait, --source-latency and --no-events.
//
// The /healthz and /metrics endpoint is off unless --http or
// FLOWSTONE_HTTP gives it an address (":9091" on every interface,
// "127.0.0.1:0" on a free loopback port, logged as http_listening), so any
// number of workers run on one host; an empty value leaves it off.
package workercmd

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/daemon"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/worker"
)

// Defaults of the worker's own settings.
const (
	// GraceDefault is how long a stopping worker waits for its running
	// tasks before handing them back to the queue.
	GraceDefault = daemon.GraceDefault
)

// Exit codes, the coordinator's (daemon.ExitOK, ...).
const (
	exitOK          = daemon.ExitOK
	exitFailed      = daemon.ExitFailed      // the worker could not start or stopped on an error
	exitUsage       = daemon.ExitUsage       // bad flags, environment or configuration
	exitUnreachable = daemon.ExitUnreachable // NATS cannot be reached
)

// options are the parsed settings.
type options struct {
	daemon        daemon.Config
	id            string
	concurrency   int
	grace         time.Duration
	ackWait       time.Duration
	sourceLatency time.Duration
	noEvents      bool
}

// Main runs a worker hosting hosted (the bundled pipelines, pipelines.All,
// when none are given) with args (without the program name) until SIGINT
// or SIGTERM, and returns the process exit code: 0 after a clean drain, 1
// when the worker could not start or stopped on an error, 2 for bad flags,
// environment or pipelines, 3 when NATS cannot be reached. Usage errors and
// -help go to stderr, and so do the logs, as JSON lines.
//
// A pipeline's tasks go to any worker hosting it, and coordinators plan
// from the manifest its workers publish: give every worker of a pipeline
// the same build of it, and give your pipelines names of their own (the
// bundled ones are example, daily_sales, dynamic and bench).
//
// It starts the way the coordinator does (daemon.Main): settings, then
// signals, then the run.
func Main(args []string, stderr io.Writer, hosted ...*flowstone.Pipeline) int {
	return daemon.Main("worker", args, stderr, func(args []string, stderr io.Writer) (*options, error) {
		opts, err := parse(args, stderr)
		if err == nil && len(hosted) > 0 && opts.sourceLatency != 0 {
			err = errors.New("--source-latency (FLOWSTONE_SOURCE_LATENCY) slows the bundled daily_sales pipeline, and this worker hosts its own pipelines")
		}
		return opts, err
	}, func(ctx context.Context, opts *options) int {
		if len(hosted) == 0 {
			hosted = pipelines.All(pipelines.Options{SourceLatency: opts.sourceLatency})
		}
		return run(ctx, opts, hosted, stderr)
	})
}

// parse reads the settings from args and the environment.
func parse(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	o.daemon.Flags(fs)
	var env daemon.Env
	fs.StringVar(&o.id, "id", os.Getenv("FLOWSTONE_ID"), "worker id, letters, digits, _ and - (default <hostname>-<pid>-<random>) [FLOWSTONE_ID]")
	fs.IntVar(&o.concurrency, "concurrency", env.Int("FLOWSTONE_CONCURRENCY", worker.ConcurrencyDefault), "tasks executed at once [FLOWSTONE_CONCURRENCY]")
	fs.DurationVar(&o.grace, "grace", env.Duration("FLOWSTONE_GRACE", GraceDefault), "on SIGTERM, how long running tasks may finish before they are handed back [FLOWSTONE_GRACE]")
	fs.DurationVar(&o.ackWait, "ack-wait", env.Duration("FLOWSTONE_ACK_WAIT", fleet.AckWaitDefault), "how long a task of a silent worker waits before redelivery; the same on every worker [FLOWSTONE_ACK_WAIT]")
	fs.DurationVar(&o.sourceLatency, "source-latency", env.Duration("FLOWSTONE_SOURCE_LATENCY", 0), "simulated latency of the bundled daily_sales.orders, for load and fault tests; only when hosting the bundled pipelines [FLOWSTONE_SOURCE_LATENCY]")
	fs.BoolVar(&o.noEvents, "no-events", env.Bool("FLOWSTONE_NO_EVENTS"), "do not publish telemetry events [FLOWSTONE_NO_EVENTS]")
	if err := o.daemon.Parse(fs, args, &env); err != nil {
		return nil, err
	}
	if o.grace < 0 || o.ackWait <= 0 || o.sourceLatency < 0 || o.concurrency <= 0 {
		return nil, errors.New("--grace and --source-latency must not be negative, --ack-wait and --concurrency must be positive")
	}
	return o, nil
}

// run connects, serves the HTTP endpoint if one is configured, starts the
// worker hosting hosted, and drains when ctx ends. Logs go to logOut.
func run(ctx context.Context, o *options, hosted []*flowstone.Pipeline, logOut io.Writer) int {
	log := o.daemon.Logger(logOut, "worker")
	defer o.daemon.Tracing(ctx, "flowstone-worker", log)()
	gc, gcEnv := daemon.TuneGC()
	log.Info().Int("gc_percent", gc).Bool("from_env", gcEnv).Msg("gc_target")
	nc, err := o.daemon.Connect("flowstone-worker", log)
	if err != nil {
		log.Error().Err(err).Msg("start_failed")
		return exitUnreachable
	}
	defer nc.Close()
	stores, def, err := o.daemon.Stores(ctx, nc, log)
	if err != nil {
		log.Error().Err(err).Msg("start_failed")
		return exitUsage
	}
	reg := daemon.Registry()
	w, err := worker.New(worker.Config{
		Conn:           nc,
		Pipelines:      hosted,
		Stores:         stores,
		DefaultStorage: def,
		Concurrency:    o.concurrency,
		ID:             o.id,
		AckWait:        o.ackWait,
		Logger:         &log,
		NoEvents:       o.noEvents,
		Registerer:     reg,
		Replicas:       o.daemon.Replicas,
		Limits:         o.daemon.Limits,
	})
	if err != nil {
		log.Error().Err(err).Msg("start_failed")
		return exitUsage
	}
	// The endpoint first: a taken address stops the worker before it has
	// joined the fleet and taken tasks.
	if _, err := daemon.ServeHTTP(ctx, o.daemon.HTTPAddr, reg, daemon.NATSHealthy(nc), log); err != nil {
		log.Error().Err(err).Msg("start_failed")
		return exitFailed
	}
	if err := w.Start(ctx); err != nil {
		log.Error().Err(err).Msg("start_failed")
		return exitFailed
	}
	<-ctx.Done()
	log.Info().Dur("grace", o.grace).Msg("shutting_down")
	shut, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	if err := w.Stop(shut); err != nil {
		// Running tasks were handed back to the queue: nothing is lost.
		log.Warn().Err(err).Msg("stop_incomplete")
	}
	return exitOK
}
