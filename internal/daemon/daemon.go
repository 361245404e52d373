// Package daemon is what cmd/coordinator and cmd/worker share: how they
// start (Main: settings, signals, exit codes), the NATS and storage
// settings read from flags and the environment (Config, Env), the JSON
// logger, and the health and metrics endpoint.
package daemon

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/internal/tracing"
	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/filestore"
	"github.com/flowstone-go/flowstone/objectstore/s3store"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Defaults of Config.
const (
	NATSURLDefault  = "nats://127.0.0.1:4222"
	StorageDefault  = "jetstream"
	S3BucketDefault = "flowstone"
)

// Config is the settings both daemons take. Every field has a flag and an
// environment variable; a flag given on the command line wins over the
// environment, which wins over the default.
type Config struct {
	// NATSURL is the NATS server list (NATS_URL). Defaults to
	// NATSURLDefault.
	NATSURL string
	// NATSCreds is a credentials file (NATS_CREDS). Defaults to none.
	NATSCreds string
	// NATSUser and NATSPassword are the daemon's NATS user and password
	// (NATS_USER, NATS_PASSWORD): the user of its role in
	// deploy/nats.conf, "coordinator" or "worker". Default to none. The
	// password never appears in -help or the logs; give it in the
	// environment rather than on the command line, where ps shows it.
	NATSUser, NATSPassword string
	// TLSCA verifies the NATS server's certificate (NATS_TLS_CA: a PEM
	// file of the CA that signed it); setting it turns TLS on. TLSCert and
	// TLSKey are the daemon's client certificate and key for a server that
	// requires mutual TLS (NATS_TLS_CERT, NATS_TLS_KEY), given together.
	// Default to none.
	TLSCA, TLSCert, TLSKey string
	// Storage selects the default result store: "jetstream", "s3" or
	// "file" (FLOWSTONE_STORAGE). Defaults to StorageDefault.
	Storage string
	// FileDir is the file store's directory (FLOWSTONE_FILE_DIR); setting
	// it also enables the "file" store. Defaults to none.
	FileDir string
	// S3Endpoint (S3_ENDPOINT, host:port), S3Bucket (S3_BUCKET, defaults to
	// S3BucketDefault), S3AccessKey (S3_ACCESS_KEY), S3SecretKey
	// (S3_SECRET_KEY), S3Region (S3_REGION), S3SSL (S3_SSL), S3CA (S3_CA,
	// a PEM file of the CA that signed the server's certificate; implies
	// S3SSL): the S3 store, enabled when S3Endpoint is set.
	S3Endpoint, S3Bucket, S3AccessKey, S3SecretKey, S3Region, S3CA string
	S3SSL                                                          bool
	// HTTPAddr serves /healthz and /metrics (FLOWSTONE_HTTP): host:port,
	// such as ":9090" (every interface) or "127.0.0.1:0" (a free loopback
	// port, logged as http_listening). Defaults to none: the endpoint is
	// off unless asked for, in both daemons, so any number of them run on
	// one host and nothing listens on an interface nobody chose. An empty
	// FLOWSTONE_HTTP or --http "" is the same as none.
	HTTPAddr string
	// LogLevel is zerolog's level name (FLOWSTONE_LOG_LEVEL). Defaults to
	// "info".
	LogLevel string
	// OTLPEndpoint exports traces over OTLP/HTTP to this collector
	// (OTEL_EXPORTER_OTLP_ENDPOINT, "http://host:4318"). Defaults to none:
	// tracing off.
	OTLPEndpoint string
	// Replicas is how many servers hold each stream, KV bucket and object
	// store the daemon creates when it is missing, 1 to 5
	// (FLOWSTONE_REPLICAS); existing ones are never changed. Give every
	// daemon of a fleet the same. Defaults to fleet.ReplicasDefault (1).
	Replicas int
	// Limits bounds the streams, buckets and object stores the daemon
	// creates when they are missing (--task-max-bytes and the rest; see
	// limitFlags). Default to protocol.StreamLimits' defaults.
	Limits protocol.StreamLimits

	// replicasErr is a FLOWSTONE_REPLICAS that is not a number, reported
	// by Check unless --replicas overrides it; limitErrs, by flag name, a
	// limit's variable that could not be read (unless its flag overrides
	// it).
	replicasErr error
	limitErrs   map[string]error
}

// Flags registers the settings on fs, with defaults from the environment.
func (c *Config) Flags(fs *flag.FlagSet) {
	env := func(name, def string) string { return cmp.Or(os.Getenv(name), def) }
	fs.StringVar(&c.NATSURL, "nats-url", env("NATS_URL", NATSURLDefault), "NATS server URL(s) [NATS_URL]")
	fs.StringVar(&c.NATSCreds, "nats-creds", env("NATS_CREDS", ""), "NATS credentials file [NATS_CREDS]")
	fs.StringVar(&c.NATSUser, "nats-user", env("NATS_USER", ""), "NATS user: the daemon's role in deploy/nats.conf [NATS_USER]")
	fs.StringVar(&c.NATSPassword, "nats-password", env("NATS_PASSWORD", ""), "NATS password; prefer the environment, which ps does not show [NATS_PASSWORD]")
	fs.Lookup("nats-password").DefValue = "" // a secret from the environment
	fs.StringVar(&c.TLSCA, "tls-ca", env("NATS_TLS_CA", ""), "CA certificate `file` that signed the NATS server's; turns TLS on [NATS_TLS_CA]")
	fs.StringVar(&c.TLSCert, "tls-cert", env("NATS_TLS_CERT", ""), "client certificate `file` for mutual TLS, with --tls-key [NATS_TLS_CERT]")
	fs.StringVar(&c.TLSKey, "tls-key", env("NATS_TLS_KEY", ""), "client key `file` for mutual TLS, with --tls-cert [NATS_TLS_KEY]")
	fs.StringVar(&c.Storage, "storage", env("FLOWSTONE_STORAGE", StorageDefault), "default result store: jetstream, s3 or file [FLOWSTONE_STORAGE]")
	fs.StringVar(&c.FileDir, "file-dir", env("FLOWSTONE_FILE_DIR", ""), "directory of the file result store [FLOWSTONE_FILE_DIR]")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", env("S3_ENDPOINT", ""), "S3/MinIO endpoint host:port [S3_ENDPOINT]")
	fs.StringVar(&c.S3Bucket, "s3-bucket", env("S3_BUCKET", S3BucketDefault), "S3 bucket, created if missing [S3_BUCKET]")
	fs.StringVar(&c.S3AccessKey, "s3-access-key", env("S3_ACCESS_KEY", ""), "S3 access key [S3_ACCESS_KEY]")
	fs.StringVar(&c.S3SecretKey, "s3-secret-key", env("S3_SECRET_KEY", ""), "S3 secret key [S3_SECRET_KEY]")
	// -help prints defaults, and this one's default is a secret from the
	// environment.
	fs.Lookup("s3-secret-key").DefValue = ""
	fs.StringVar(&c.S3Region, "s3-region", env("S3_REGION", ""), "S3 region [S3_REGION]")
	ssl, _ := strconv.ParseBool(env("S3_SSL", "false"))
	fs.BoolVar(&c.S3SSL, "s3-ssl", ssl, "use https for S3 [S3_SSL]")
	fs.StringVar(&c.S3CA, "s3-ca", env("S3_CA", ""), "CA certificate `file` that signed the S3 server's; implies --s3-ssl [S3_CA]")
	fs.StringVar(&c.HTTPAddr, "http", env("FLOWSTONE_HTTP", ""), "serve /healthz and /metrics on `host:port`, e.g. :9090 (every interface) or 127.0.0.1:0 (a free loopback port, logged as http_listening); empty, the default: off [FLOWSTONE_HTTP]")
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", env("OTEL_EXPORTER_OTLP_ENDPOINT", ""), "export traces over OTLP/HTTP to this collector `URL` (http://host:4318); empty, the default: off [OTEL_EXPORTER_OTLP_ENDPOINT]")
	fs.StringVar(&c.LogLevel, "log-level", env("FLOWSTONE_LOG_LEVEL", "info"), "log level: debug, info, warn, error [FLOWSTONE_LOG_LEVEL]")
	c.Replicas = fleet.ReplicasDefault
	if v := os.Getenv("FLOWSTONE_REPLICAS"); v != "" {
		c.Replicas, c.replicasErr = parseReplicas("FLOWSTONE_REPLICAS", v)
	}
	fs.Func("replicas", fmt.Sprintf("each stream, bucket and object store created is held by `n` servers, 1 to %d: 3 on a cluster survives losing a server; existing ones are kept as they are (default %d) [FLOWSTONE_REPLICAS]",
		fleet.MaxReplicas, fleet.ReplicasDefault), func(v string) (err error) {
		c.Replicas, err = parseReplicas("--replicas", v)
		c.replicasErr = err
		return err
	})
	c.limitFlags(fs)
}

// parseReplicas reads a replica count given as name.
func parseReplicas(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > fleet.MaxReplicas {
		return fleet.ReplicasDefault, fmt.Errorf("%s=%q: want a number of replicas from 1 to %d (3 on a cluster of 3 or more servers)", name, v, fleet.MaxReplicas)
	}
	return n, nil
}

// Check reports a setting from the environment that Flags could not read
// and a flag did not override. Call it after parsing the flags.
func (c *Config) Check() error {
	if c.replicasErr != nil {
		return c.replicasErr
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key (NATS_TLS_CERT, NATS_TLS_KEY) go together: give both for mutual TLS, or neither")
	}
	if c.NATSPassword != "" && c.NATSUser == "" {
		return errors.New("--nats-password (NATS_PASSWORD) needs --nats-user (NATS_USER)")
	}
	return c.checkLimits()
}

// Logger returns the daemon's JSON logger, writing to w (the process's
// stderr).
func (c *Config) Logger(w io.Writer, component string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(c.LogLevel)
	if err != nil || c.LogLevel == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("component", component).Logger()
}

// Connect dials NATS with the configured credentials and TLS, logging
// disconnects and reconnects. An unreachable server is an error that says
// which URL was tried (never the credentials).
func (c *Config) Connect(name string, log zerolog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn().AnErr("error", err).Msg("nats_disconnected") }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("nats_reconnected") }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn().Err(err).Msg("nats_error") }),
	}
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	if c.NATSUser != "" {
		opts = append(opts, nats.UserInfo(c.NATSUser, c.NATSPassword))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	nc, err := nats.Connect(c.NATSURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot reach NATS at %s: %w (%s)", redact(c.NATSURL), err, connectHint(err, c.TLSCert != ""))
	}
	return nc, nil
}

// connectHint says what to set after a failed connection; withCert tells
// whether the daemon presented a client certificate.
func connectHint(err error, withCert bool) string {
	var unknownCA x509.UnknownAuthorityError
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	msg := err.Error()
	switch {
	case errors.As(err, &unknownCA) || errors.As(err, &certErr) && errors.As(certErr.Err, &unknownCA):
		return "the server's certificate is not signed by a CA the daemon trusts: set --tls-ca or NATS_TLS_CA to the CA that signed it"
	case errors.As(err, &hostErr):
		return "the server's certificate is not valid for the address in --nats-url: use a name or IP address the certificate lists"
	case errors.Is(err, nats.ErrSecureConnRequired):
		return "the server requires TLS: set --tls-ca or NATS_TLS_CA to the CA that signed its certificate"
	case errors.Is(err, nats.ErrSecureConnWanted):
		return "the server does not speak TLS: unset --tls-ca, --tls-cert and --tls-key, or enable TLS on the server"
	case refusedCertificate(msg) && !withCert:
		return "the server requires a client certificate (mutual TLS): set --tls-cert and --tls-key (NATS_TLS_CERT, NATS_TLS_KEY)"
	case refusedCertificate(msg):
		return "the server refused the daemon's certificate: set --tls-cert and --tls-key to one signed by a CA the server trusts"
	case errors.Is(err, nats.ErrAuthorization):
		return "the server refused the credentials: set --nats-user and NATS_PASSWORD to the daemon's role, or --nats-creds"
	}
	return "set --nats-url or NATS_URL"
}

// refusedCertificate reports the server's refusal of the client's
// certificate, or of its lack of one: a TLS alert, or the connection
// closed right after the handshake (with TLS 1.3 the client may miss the
// alert).
func refusedCertificate(msg string) bool {
	return strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate") ||
		strings.Contains(msg, "closed by remote after TLS handshake")
}

// redact drops credentials embedded in a URL.
func redact(u string) string {
	i, j := strings.Index(u, "://"), strings.LastIndex(u, "@")
	if i >= 0 && j > i {
		return u[:i+3] + "***@" + u[j+1:]
	}
	return u
}

// Stores opens the configured result stores: always the JetStream object
// store (created with Replicas if missing; log hears of an existing one
// whose settings differ), plus "s3" when an endpoint is set and "file"
// when a directory is.
func (c *Config) Stores(ctx context.Context, nc *nats.Conn, log zerolog.Logger) (map[string]objectstore.Store, string, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, "", err
	}
	stores := map[string]objectstore.Store{}
	jstore, err := fleet.ObjectStore(ctx, js, protocol.ResultsBucket, "FlowStone results", 0,
		fleet.WithReplicas(c.Replicas), fleet.WithLogger(log), fleet.WithLimits(c.Limits))
	if err != nil {
		return nil, "", err
	}
	stores["jetstream"] = jstore
	if c.S3Endpoint != "" {
		cfg := s3store.Config{Endpoint: c.S3Endpoint, Bucket: c.S3Bucket, AccessKey: c.S3AccessKey,
			SecretKey: c.S3SecretKey, Region: c.S3Region, UseSSL: c.S3SSL}
		if c.S3CA != "" {
			if cfg.RootCAs, err = s3store.CAFile(c.S3CA); err != nil {
				return nil, "", err
			}
		}
		s, err := s3store.New(ctx, cfg)
		if err != nil {
			return nil, "", err
		}
		stores["s3"] = s
	}
	if c.FileDir != "" {
		s, err := filestore.New(c.FileDir)
		if err != nil {
			return nil, "", err
		}
		stores["file"] = s
	}
	if _, ok := stores[c.Storage]; !ok {
		return nil, "", fmt.Errorf("--storage %s is not configured: set --s3-endpoint for s3 or --file-dir for file", c.Storage)
	}
	return stores, c.Storage, nil
}

// Registry returns a Prometheus registry with the Go and process collectors.
func Registry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// ServeHTTP serves /healthz (200 while healthy() is nil) and /metrics on
// addr until ctx is done, logging http_listening with the bound address.
// It returns that address. An empty addr serves nothing: it logs http_off,
// so the log says why nothing answers, and returns "".
func ServeHTTP(ctx context.Context, addr string, reg *prometheus.Registry, healthy func() error, log zerolog.Logger) (string, error) {
	if addr == "" {
		log.Info().Str("hint", "set --http or FLOWSTONE_HTTP, e.g. :9090, to serve /healthz and /metrics").Msg("http_off")
		return "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("http %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("http_failed")
		}
	}()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("http_listening")
	return ln.Addr().String(), nil
}

// NATSHealthy reports a closed or disconnected connection.
func NATSHealthy(nc *nats.Conn) func() error {
	return func() error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats %s", nc.Status())
		}
		return nil
	}
}

// Tracing starts exporting traces as service when an OTLP endpoint is set,
// and returns what flushes them at exit (a no-op otherwise).
func (c *Config) Tracing(ctx context.Context, service string, log zerolog.Logger) func() {
	shutdown, err := tracing.Setup(ctx, service, c.OTLPEndpoint)
	if err != nil {
		log.Warn().Err(err).Msg("tracing_off")
		return func() {}
	}
	if c.OTLPEndpoint != "" {
		log.Info().Str("endpoint", c.OTLPEndpoint).Msg("tracing_on")
	}
	return func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(fctx); err != nil {
			log.Warn().Err(err).Msg("tracing_flush_failed")
		}
	}
}
