package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone/coordinator"
	"github.com/flowstone-go/flowstone/internal/fleet"
)

// coordinatorOptions are the coordinator's parsed settings.
type coordinatorOptions struct {
	daemon  Config
	id      string
	grace   time.Duration
	horizon time.Duration
	// secret is the signal secret, read from --signal-secret or
	// --signal-secret-file (nil: none).
	secret []byte
}

// RunCoordinator is cmd/coordinator, started as workercmd.Main starts a
// worker (see Main): it reads the settings from args (without the program
// name) and the environment, connects to NATS and the result stores,
// serves the API until SIGINT or SIGTERM, then drains. It returns the
// process exit code: ExitOK after a stop (runs a grace period cut short
// are resumed by the next coordinator) or -help, ExitFailed when the
// coordinator could not start or stopped on an error, ExitUsage for bad
// flags, environment or configuration, ExitUnreachable when NATS cannot be
// reached. Usage errors and -help go to stderr, and so do the logs, as
// JSON lines.
func RunCoordinator(args []string, stderr io.Writer) int {
	return Main("coordinator", args, stderr, parseCoordinator, func(ctx context.Context, o *coordinatorOptions) int {
		return runCoordinator(ctx, o, stderr)
	})
}

// parseCoordinator reads the coordinator's settings from args and the
// environment.
func parseCoordinator(args []string, stderr io.Writer) (*coordinatorOptions, error) {
	fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &coordinatorOptions{}
	o.daemon.Flags(fs)
	var env Env
	fs.StringVar(&o.id, "id", os.Getenv("FLOWSTONE_ID"), "coordinator id; a restarted coordinator with the same id resumes its runs at once [FLOWSTONE_ID]")
	fs.DurationVar(&o.grace, "grace", env.Duration("FLOWSTONE_GRACE", GraceDefault), "how long to wait for runs to finish on shutdown [FLOWSTONE_GRACE]")
	var secret, secretFile string
	fs.StringVar(&secret, "signal-secret", os.Getenv("FLOWSTONE_SIGNAL_SECRET"),
		"the secret that signs signal gates' tokens, at least 16 bytes, the same on every coordinator; prefer the file or the environment, which ps does not show [FLOWSTONE_SIGNAL_SECRET]")
	// -help prints defaults, and this one's default is a secret from the
	// environment.
	fs.Lookup("signal-secret").DefValue = ""
	fs.StringVar(&secretFile, "signal-secret-file", os.Getenv("FLOWSTONE_SIGNAL_SECRET_FILE"),
		"read the signal secret from `FILE` (a trailing newline is dropped); without a secret, runs that reach a signal gate are refused [FLOWSTONE_SIGNAL_SECRET_FILE]")
	fs.DurationVar(&o.horizon, "schedule-horizon", env.Duration("FLOWSTONE_SCHEDULE_HORIZON", fleet.ScheduleHorizonDefault),
		"how far ahead a run may be scheduled (scheduled_at); the schedules stream keeps messages a day longer [FLOWSTONE_SCHEDULE_HORIZON]")
	if err := o.daemon.Parse(fs, args, &env); err != nil {
		return nil, err
	}
	var err error
	if o.secret, err = signalSecret(secret, secretFile); err != nil {
		return nil, err
	}
	if o.grace < 0 {
		return nil, errors.New("--grace must not be negative")
	}
	if o.horizon <= 0 {
		return nil, errors.New("--schedule-horizon must be positive")
	}
	return o, nil
}

// runCoordinator connects, serves the HTTP endpoint if one is configured,
// starts the coordinator, and drains when ctx ends. Logs go to logOut.
func runCoordinator(ctx context.Context, o *coordinatorOptions, logOut io.Writer) int {
	log := o.daemon.Logger(logOut, "coordinator")
	defer o.daemon.Tracing(ctx, "flowstone-coordinator", log)()
	gc, gcEnv := TuneGC()
	log.Info().Int("gc_percent", gc).Bool("from_env", gcEnv).Msg("gc_target")
	// Whether there is a signal secret, never the secret.
	log.Info().Bool("signal_secret", o.secret != nil).Msg("signal_gates")
	nc, err := o.daemon.Connect("flowstone-coordinator", log)
	if err != nil {
		log.Error().Err(err).Msg("start_failed")
		return ExitUnreachable
	}
	defer nc.Close()
	stores, def, err := o.daemon.Stores(ctx, nc, log)
	if err != nil {
		log.Error().Err(err).Msg("start_failed")
		return ExitUsage
	}
	c, err := coordinator.New(coordinator.Config{Conn: nc, Stores: stores, DefaultStorage: def, ID: o.id, Logger: &log,
		Replicas: o.daemon.Replicas, ScheduleHorizon: o.horizon, SignalSecret: o.secret, Limits: o.daemon.Limits})
	if err != nil {
		log.Error().Err(err).Msg("start_failed")
		return ExitUsage
	}
	// The endpoint first, as the worker's: a taken address stops the
	// coordinator before it serves the API and adopts runs.
	reg := Registry()
	if _, err := ServeHTTP(ctx, o.daemon.HTTPAddr, reg, NATSHealthy(nc), log); err != nil {
		log.Error().Err(err).Msg("start_failed")
		return ExitFailed
	}
	if err := c.Start(ctx); err != nil {
		log.Error().Err(err).Msg("start_failed")
		return ExitFailed
	}
	c.RegisterMetrics(reg) // they read what Start sets up
	<-ctx.Done()
	log.Info().Dur("grace", o.grace).Msg("shutting_down")
	shut, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	if err := c.Stop(shut); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			log.Error().Err(err).Msg("stop_failed")
			return ExitFailed
		}
		// The runs cut short are resumed by the next coordinator.
		log.Warn().Err(err).Msg("stop_incomplete")
	}
	return ExitOK
}

// signalSecret is the coordinator's signal secret, from the flag's (or
// the environment's) text or from a file, not both: nil when neither is
// given. It is refused when shorter than 16 bytes; errors never show it.
func signalSecret(text, file string) ([]byte, error) {
	switch {
	case text != "" && file != "":
		return nil, errors.New("--signal-secret and --signal-secret-file (or their environment variables) are both set: give one")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--signal-secret-file: %w", err)
		}
		text = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if text == "" {
			return nil, fmt.Errorf("--signal-secret-file %s is empty", file)
		}
	case text == "":
		return nil, nil
	}
	if len(text) < minSignalSecret {
		return nil, fmt.Errorf("the signal secret is %d bytes: give at least %d (32 random bytes are best, e.g. openssl rand -hex 32)", len(text), minSignalSecret)
	}
	return []byte(text), nil
}

// minSignalSecret is the shortest signal secret, as the engine has it.
const minSignalSecret = 16
