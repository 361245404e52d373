package cli

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
)

// command is one verb of fsctl.
type command struct {
	name    string
	args    []string // names of the positional arguments; optional ones in [ ]
	minArgs int
	maxArgs int
	short   string // for the verb list
	summary string
	// timeoutDoc is set when --timeout means something else than the wait
	// for a reply (run: the run's timeout).
	timeoutDoc string
	// setup defines the verb's flags on fs and returns its action.
	setup func(fs *flag.FlagSet) func(*env) error
}

// commands in the order the usage lists them; filled in by init to break
// the initialization cycle through help.
var commands []*command

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (c *command) argsText() string {
	if len(c.args) == 0 {
		return "no arguments"
	}
	return strings.Join(c.args, " ")
}

// usage is the verb's help: synopsis, summary, its flags, then the global
// ones.
func (c *command) usage(fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: fsctl %s", c.name)
	for _, a := range c.args {
		b.WriteString(" " + a)
	}
	b.WriteString(" [flags]\n\n" + c.summary + "\n")
	own, global := &strings.Builder{}, &strings.Builder{}
	globals := globalNames()
	fs.VisitAll(func(f *flag.Flag) {
		w := own
		if globals[f.Name] && !(f.Name == "timeout" && c.timeoutDoc != "") {
			w = global
		}
		writeFlag(w, f)
	})
	if own.Len() > 0 {
		b.WriteString("\nFlags:\n" + align(own.String()))
	}
	b.WriteString("\nGlobal flags:\n" + align(global.String()))
	return b.String()
}

// globalNames are the names of the global flags.
func globalNames() map[string]bool {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	new(globals).define(fs, nil)
	names := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { names[f.Name] = true })
	return names
}

func writeFlag(w *strings.Builder, f *flag.Flag) {
	name, doc := flag.UnquoteUsage(f)
	if name != "" {
		name = " " + name
	}
	switch f.DefValue {
	case "", "0", "false", "0s":
	default:
		if !strings.Contains(doc, "(default") {
			doc += " (default " + f.DefValue + ")"
		}
	}
	fmt.Fprintf(w, "  --%s%s\t%s\n", f.Name, name, doc)
}

func align(s string) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	tw.Write([]byte(s))
	tw.Flush()
	return b.String()
}

// usage is fsctl's help.
func usage() string {
	var verbs strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&verbs, "  %s %s\t%s\n", c.name, strings.Join(c.args, " "), c.short)
	}
	return `fsctl drives a FlowStone fleet (NATS JetStream coordinator and workers).

Usage:
  fsctl VERB [PIPELINE [ASSET]] [flags]

Verbs:
` + align(verbs.String()+"  help [VERB]\tthis help, or a verb's flags\n") + `
Global flags (every verb; before or after the arguments):
  --server URL         NATS server (default $NATS_URL, then nats://127.0.0.1:4222)
  --user USER          NATS user, the client role's (default $NATS_USER);
                       its password from $NATS_PASSWORD (or --password)
  --creds FILE         NATS credentials file (default $NATS_CREDS)
  --tls-ca FILE        CA certificate to verify the server; turns TLS on
                       (default $NATS_TLS_CA)
  --tls-cert FILE      client certificate for mutual TLS, with --tls-key
                       (default $NATS_TLS_CERT)
  --tls-key FILE       client key (default $NATS_TLS_KEY)
  --timeout D          how long to wait for the fleet's reply (default 10s);
                       for run, the run's timeout; for backfill, the whole wait
                       (default: as long as the backfill makes progress)
  --json               machine output (below)
  --progress           draw progress bars even when stderr is not a terminal

Output: values and reports go to stdout, errors to stderr as "fsctl: ...".
With --json, stdout gets one JSON document per command (watch: one per
line per event; demo: one per line per step), errors included as
{"error":{"type":"...","message":"...","details":{...}}}; stderr then gets
only progress bars.

Exit status: 0 ok; 1 operation failed or nothing found (exists: not
materialized; backfill: some partition failed); 2 usage error; 3 fleet
unreachable.

Start a local fleet with "fsctl dev", or see it all at once with "fsctl demo".
Run "fsctl help VERB" for a verb's flags.
`
}
