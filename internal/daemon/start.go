package daemon

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// Exit codes of both daemons (cmd/coordinator, and cmd/worker or any
// worker built with workercmd.Main).
const (
	ExitOK          = 0 // stopped cleanly, or -help
	ExitFailed      = 1 // could not start, or stopped on an error
	ExitUsage       = 2 // bad flags, environment or configuration
	ExitUnreachable = 3 // NATS cannot be reached
)

// GraceDefault is how long a stopping daemon waits for its work (a
// coordinator's runs, a worker's tasks) before it hands it on.
const GraceDefault = 30 * time.Second

// Main is how both daemons start. parse reads the settings from args
// (without the program name) and the environment, and writes usage and
// -help to stderr: after -help Main returns ExitOK, after any other error
// it prints "name: error" to stderr and returns ExitUsage. Then run runs
// with a context that SIGINT or SIGTERM ends, and returns the exit code.
func Main[O any](name string, args []string, stderr io.Writer, parse func(args []string, stderr io.Writer) (O, error), run func(ctx context.Context, o O) int) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, o)
}

// Env reads a daemon's own settings from the environment, as the defaults
// of their flags (Config.Flags reads the shared ones): an unset or empty
// variable is the default. The first value it cannot read is kept in Err,
// which Config.Parse reports.
type Env struct{ Err error }

// Int reads the variable name as a number.
func (e *Env) Int(name string, def int) int {
	return read(e, name, def, strconv.Atoi, "a number")
}

// Duration reads the variable name as a duration.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	return read(e, name, def, time.ParseDuration, "a duration such as 30s")
}

// Bool reads the variable name as true or false (false when unset).
func (e *Env) Bool(name string) bool {
	return read(e, name, false, strconv.ParseBool, "true or false")
}

// read reads the variable name with parse; def when it is unset or empty.
// A value parse refuses is kept in e.Err (the first one), saying it is not
// what.
func read[T any](e *Env, name string, def T, parse func(string) (T, error), what string) T {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		e.Err = cmp.Or(e.Err, fmt.Errorf("%s=%q is not %s", name, v, what))
	}
	return x
}

// Parse parses args with fs, on which c's flags (Config.Flags) and the
// daemon's own are registered, and checks what it read: a variable env
// could not read, a bad flag, what Check reports, and arguments that are
// not flags (a daemon takes flags only).
func (c *Config) Parse(fs *flag.FlagSet, args []string, env *Env) error {
	if env.Err != nil {
		return env.Err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.Check(); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: the %s takes flags only (see -help)", fs.Args(), fs.Name())
	}
	return nil
}
