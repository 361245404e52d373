package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flowstone-go/flowstone/coordinator"
)

// RunCoordinator is cmd/coordinator: it parses args, connects, serves
// until SIGINT or SIGTERM, then drains. It returns the process exit code.
func RunCoordinator(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	cfg.Flags(fs)
	id := fs.String("id", os.Getenv("FLOWSTONE_ID"), "coordinator id; a restarted coordinator with the same id resumes its runs at once [FLOWSTONE_ID]")
	grace := fs.Duration("grace", 30*time.Second, "how long to wait for runs to finish on shutdown")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := cfg.Check(); err != nil {
		fmt.Fprintln(stderr, "coordinator:", err)
		return 2
	}
	log := cfg.Logger(stderr, "coordinator")
	gc, gcEnv := TuneGC()
	log.Info().Int("gc_percent", gc).Bool("from_env", gcEnv).Msg("gc_target")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	nc, err := cfg.Connect("flowstone-coordinator", log)
	if err != nil {
		log.Error().Err(err).Msg("start_failed")
		return 3
	}
	defer nc.Close()
	stores, def, err := cfg.Stores(ctx, nc, log)
	if err != nil {
		log.Error().Err(err).Msg("start_failed")
		return 1
	}
	c, err := coordinator.New(coordinator.Config{Conn: nc, Stores: stores, DefaultStorage: def, ID: *id, Logger: &log,
		Replicas: cfg.Replicas})
	if err != nil {
		log.Error().Err(err).Msg("start_failed")
		return 2
	}
	if err := c.Start(ctx); err != nil {
		log.Error().Err(err).Msg("start_failed")
		return 1
	}
	reg := Registry()
	c.RegisterMetrics(reg)
	if _, err := ServeHTTP(ctx, cfg.HTTPAddr, reg, NATSHealthy(nc), log); err != nil {
		log.Error().Err(err).Msg("start_failed")
		return 1
	}
	<-ctx.Done()
	log.Info().Dur("grace", *grace).Msg("shutting_down")
	shut, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := c.Stop(shut); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
