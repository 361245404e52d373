package cli

import (
	"flag"
	"os"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone/client"
	"github.com/nats-io/nats.go"
	"golang.org/x/term"
)

// globals are the flags every verb takes.
type globals struct {
	server   string
	creds    string
	user     string
	password string
	tlsCA    string
	tlsCert  string
	tlsKey   string
	timeout  time.Duration
	json     bool
	// progress draws progress bars even when stderr is not a terminal.
	progress bool
}

// defaultGlobals reads the connection's defaults from the environment,
// under the daemons' names.
func defaultGlobals() *globals {
	server := os.Getenv("NATS_URL")
	if server == "" {
		server = nats.DefaultURL
	}
	return &globals{server: server, creds: os.Getenv("NATS_CREDS"), user: os.Getenv("NATS_USER"), password: os.Getenv("NATS_PASSWORD"),
		tlsCA: os.Getenv("NATS_TLS_CA"), tlsCert: os.Getenv("NATS_TLS_CERT"), tlsKey: os.Getenv("NATS_TLS_KEY")}
}

// timeoutDoc is what --timeout means for most verbs.
const timeoutDoc = "`DURATION` to wait for the fleet's reply (default 10s)"

// define adds the global flags to fs, with their current values as
// defaults (so flags given before the verb carry over). For cmd with its
// own meaning of --timeout, its usage text says so.
func (g *globals) define(fs *flag.FlagSet, cmd *command) {
	fs.StringVar(&g.server, "server", g.server, "NATS server `URL` (default $NATS_URL, then "+nats.DefaultURL+")")
	fs.StringVar(&g.creds, "creds", g.creds, "NATS credentials `FILE` (default $NATS_CREDS)")
	fs.StringVar(&g.user, "user", g.user, "NATS `USER`, of the client role in deploy/nats.conf (default $NATS_USER)")
	fs.StringVar(&g.password, "password", g.password, "NATS password; prefer $NATS_PASSWORD, which ps does not show")
	fs.Lookup("password").DefValue = "" // -help must not print a password from the environment
	fs.StringVar(&g.tlsCA, "tls-ca", g.tlsCA, "CA certificate `FILE` to verify the NATS server; turns TLS on (default $NATS_TLS_CA)")
	fs.StringVar(&g.tlsCert, "tls-cert", g.tlsCert, "client certificate `FILE` for mutual TLS, with --tls-key (default $NATS_TLS_CERT)")
	fs.StringVar(&g.tlsKey, "tls-key", g.tlsKey, "client key `FILE` for mutual TLS, with --tls-cert (default $NATS_TLS_KEY)")
	doc := timeoutDoc
	if cmd != nil && cmd.timeoutDoc != "" {
		doc = cmd.timeoutDoc
	}
	fs.DurationVar(&g.timeout, "timeout", g.timeout, doc)
	fs.BoolVar(&g.json, "json", g.json, "machine output: one JSON document on stdout, errors included")
	fs.BoolVar(&g.progress, "progress", g.progress, "draw progress bars on stderr even when it is not a terminal")
}

// clientOptions turns the global flags into client options. For verbs
// whose --timeout means something else (run, backfill), it is not the
// request timeout.
func (g *globals) clientOptions(cmd *command) ([]client.Option, error) {
	var natsOpts []nats.Option
	if g.creds != "" {
		natsOpts = append(natsOpts, nats.UserCredentials(g.creds))
	}
	switch {
	case g.user != "":
		natsOpts = append(natsOpts, nats.UserInfo(g.user, g.password))
	case g.password != "":
		return nil, usageErr(cmd, "--password (NATS_PASSWORD) needs --user (NATS_USER)")
	}
	if g.tlsCA != "" {
		natsOpts = append(natsOpts, nats.RootCAs(g.tlsCA))
	}
	switch {
	case g.tlsCert != "" && g.tlsKey != "":
		natsOpts = append(natsOpts, nats.ClientCert(g.tlsCert, g.tlsKey))
	case g.tlsCert != "" || g.tlsKey != "":
		return nil, usageErr(cmd, "--tls-cert and --tls-key go together")
	}
	opts := []client.Option{client.WithNATSOptions(natsOpts...)}
	if g.timeout < 0 {
		return nil, usageErr(cmd, "--timeout must be positive, got %v", g.timeout)
	}
	if g.timeout > 0 && (cmd == nil || cmd.timeoutDoc == "") {
		opts = append(opts, client.WithTimeout(g.timeout))
	}
	return opts, nil
}

// parseInterleaved parses flags placed before, between and after the
// positional arguments, which it returns; after "--" everything is
// positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// optString is a string flag that knows whether it was given, so that
// --partition "" is refused rather than taken for "no partition".
type optString struct {
	v   string
	set bool
}

func (o *optString) String() string { return o.v }

func (o *optString) Set(s string) error {
	o.v, o.set = s, true
	return nil
}

// listFlag splits a comma-separated list, refusing empty items.
func listFlag(s string) ([]string, bool) {
	parts := strings.Split(s, ",")
	for _, p := range parts {
		if p == "" {
			return nil, false
		}
	}
	return parts, true
}

func fileIsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
