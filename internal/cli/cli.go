// Package cli is fsctl, the FlowStone fleet's command line: every verb of
// the API (`fsctl VERB PIPELINE [ASSET] [flags]`) through the client, plus
// `dev` and `demo`, which run a whole fleet in-process. cmd/fsctl is a thin
// main around Run, so the CLI is tested in-process.
//
// # Output
//
// Without --json, results go to stdout for people (a value as indented
// JSON, a status as aligned lines) and errors to stderr as one
// "fsctl: ..." line. With --json, stdout gets exactly one JSON document per
// command (watch: one compact document per line, per event; demo: one per
// step), errors included, as
//
//	{"error":{"type":"asset_not_found","message":"...","details":{...}}}
//
// where type is the error type (usage errors have type "usage"); stderr
// then gets nothing but progress bars. Progress bars (backfill, and runs
// that take more than a second) are drawn on stderr when it is a terminal,
// or always with --progress.
//
// # Exit status
//
// 0 when the command did what it was asked; 1 when the operation failed or
// found nothing (exists on an unmaterialized partition, a backfill with
// failed partitions); 2 for usage errors (unknown verb or flag, missing or
// extra arguments, a malformed flag value), with the usage on stderr; 3 when
// the fleet cannot be reached (no NATS server, or no coordinator answering).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/internal/tracing"
)

// Exit codes of Run.
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitFailed: the operation failed, or found nothing.
	ExitFailed = 1
	// ExitUsage: the command line is wrong; the usage was printed.
	ExitUsage = 2
	// ExitUnavailable: the fleet cannot be reached.
	ExitUnavailable = 3
)

// Run runs fsctl with args (the command line without the program name),
// writing to stdout and stderr, and returns the exit code. Cancelling ctx
// is an interrupt: watch and dev return 0, other commands stop waiting.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, g: defaultGlobals()}
	defer e.close()
	// With OTEL_EXPORTER_OTLP_ENDPOINT set, a run's trace starts here.
	if shutdown, err := tracing.Setup(ctx, "fsctl", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")); err == nil {
		defer func() {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			shutdown(fctx)
		}()
	}
	return e.exit(e.dispatch(args))
}

// env is one invocation: its streams, its global flags, its client.
type env struct {
	ctx            context.Context
	stdout, stderr io.Writer
	g              *globals
	cmd            *command
	fs             *flag.FlagSet
	args           []string
	c              *client.Client
}

// dispatch parses the global flags and the verb, then runs the verb.
func (e *env) dispatch(args []string) error {
	if len(args) > 0 && args[0] == completeVerb {
		e.complete(args[1:])
		return nil
	}
	e.g.json = e.g.json || wantsJSON(args)
	top := flag.NewFlagSet("fsctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	e.g.define(top, nil)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, usage())
			return nil
		}
		return usageErr(nil, "%v", err)
	}
	rest := top.Args()
	if len(rest) == 0 {
		return usageErr(nil, "no verb given")
	}
	verb := rest[0]
	if verb == "help" {
		return e.help(rest[1:])
	}
	cmd := lookup(verb)
	if cmd == nil {
		return usageErr(nil, "unknown verb %q", verb)
	}
	e.cmd = cmd
	e.fs = flag.NewFlagSet("fsctl "+verb, flag.ContinueOnError)
	e.fs.SetOutput(io.Discard)
	action := cmd.setup(e.fs)
	e.g.define(e.fs, cmd)
	pos, err := parseInterleaved(e.fs, rest[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, cmd.usage(e.fs))
			return nil
		}
		return usageErr(cmd, "%v", err)
	}
	if len(pos) < cmd.minArgs || len(pos) > cmd.maxArgs {
		return usageErr(cmd, "%s takes %s, got %d argument(s)", verb, cmd.argsText(), len(pos))
	}
	if e.g.timeout <= 0 && (flagSet(top, "timeout") || flagSet(e.fs, "timeout")) {
		// Zero would silently mean the default (or no bound at all).
		return usageErr(cmd, "--timeout must be a positive duration, got %v: leave it out for the default", e.g.timeout)
	}
	e.args = pos
	return action(e)
}

func (e *env) help(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stdout, usage())
		return nil
	}
	cmd := lookup(args[0])
	if cmd == nil {
		return usageErr(nil, "unknown verb %q", args[0])
	}
	fs := flag.NewFlagSet("fsctl "+cmd.name, flag.ContinueOnError)
	cmd.setup(fs)
	e.g.define(fs, cmd)
	fmt.Fprint(e.stdout, cmd.usage(fs))
	return nil
}

// flagSet reports whether the flag name was given on fs's command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// wantsJSON spots --json before parsing, so that even an unparsable command
// line gets its error as JSON.
func wantsJSON(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-json", "--json", "-json=true", "--json=true":
			return true
		}
	}
	return false
}

// client connects on first use.
func (e *env) client() (*client.Client, error) {
	if e.c != nil {
		return e.c, nil
	}
	opts, err := e.g.clientOptions(e.cmd)
	if err != nil {
		return nil, err
	}
	c, err := client.Connect(e.g.server, opts...)
	if err != nil {
		return nil, err
	}
	e.c = c
	return c, nil
}

func (e *env) close() {
	if e.c != nil {
		e.c.Close()
	}
}

// exit reports err and returns the exit code.
func (e *env) exit(err error) int {
	if err == nil {
		return ExitOK
	}
	var ex *exitError
	if errors.As(err, &ex) {
		return ex.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		if e.g.json {
			e.writeJSON(map[string]any{"error": map[string]any{"type": "usage", "message": ue.msg}})
		}
		fmt.Fprintf(e.stderr, "fsctl: %s\n\n", ue.msg)
		if ue.cmd != nil {
			fs := flag.NewFlagSet("fsctl "+ue.cmd.name, flag.ContinueOnError)
			ue.cmd.setup(fs)
			e.g.define(fs, ue.cmd)
			fmt.Fprint(e.stderr, ue.cmd.usage(fs))
		} else {
			fmt.Fprint(e.stderr, usage())
		}
		return ExitUsage
	}
	fe := flowstone.AsError(err)
	if e.g.json {
		e.writeJSON(map[string]any{"error": fe})
	} else {
		fmt.Fprintf(e.stderr, "fsctl: %s\n", oneLine(fe.Error()))
	}
	if fe.Type == flowstone.TypeUnavailable {
		return ExitUnavailable
	}
	return ExitFailed
}

// usageError is a wrong command line.
type usageError struct {
	cmd *command
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usageErr(cmd *command, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// exitError ends a command with a code and nothing more to say (exists on
// a missing partition; a backfill that printed its failures).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// oneLine keeps a message on one line of the terminal.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && fileIsTerminal(f)
}
