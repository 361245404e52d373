package daemon_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/internal/daemon"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/internal/s3test"
	"github.com/flowstone-go/flowstone/internal/tlstest"
	"github.com/rs/zerolog"
)

// The role's user and password come from the environment (or flags), and
// the password never shows in -help.
func TestNATSUserAndPassword(t *testing.T) {
	t.Setenv("NATS_USER", "worker")
	t.Setenv("NATS_PASSWORD", "hunter2-nats")
	var cfg daemon.Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	cfg.Flags(fs)
	if err := fs.Parse(nil); err != nil || cfg.Check() != nil {
		t.Fatal(err, cfg.Check())
	}
	if cfg.NATSUser != "worker" || cfg.NATSPassword != "hunter2-nats" {
		t.Fatalf("user %q password %q", cfg.NATSUser, cfg.NATSPassword)
	}
	var out bytes.Buffer
	if code := daemon.RunCoordinator([]string{"-help"}, &out); code != daemon.ExitOK {
		t.Fatalf("-help exit %d", code)
	}
	if strings.Contains(out.String(), "hunter2") || !strings.Contains(out.String(), "-nats-password") || !strings.Contains(out.String(), "NATS_USER") {
		t.Fatalf("-help output:\n%s", out.String())
	}
}

// Settings that cannot work together are usage errors, before anything
// connects.
func TestSecuritySettingsUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key"},
		{[]string{"--tls-key", "k.pem"}, "--tls-cert and --tls-key"},
		{[]string{"--nats-password", "x"}, "--nats-user"},
	} {
		var out bytes.Buffer
		code := daemon.RunCoordinator(append(tc.args, "--nats-url", "nats://127.0.0.1:1"), &out)
		if code != daemon.ExitUsage || !strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), `"x"`) {
			t.Errorf("%v: exit %d, stderr %q; want %d and a word on %s", tc.args, code, out.String(), daemon.ExitUsage, tc.want)
		}
	}
}

// --s3-ca (S3_CA) makes the S3 store trust a private CA, and implies https.
func TestS3CA(t *testing.T) {
	certs := tlstest.New(t)
	s3 := s3test.StartTLS(t, s3test.TLS{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, RootCAs: certs.CAPool})
	t.Setenv("S3_CA", certs.CAFile)
	var cfg daemon.Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.Flags(fs)
	if err := fs.Parse([]string{"--s3-endpoint", s3.Endpoint, "--s3-access-key", s3.AccessKey, "--s3-secret-key", s3.SecretKey, "--storage", "s3"}); err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, natstest.Server(t))
	stores, def, err := cfg.Stores(context.Background(), nc, zerolog.Nop())
	if err != nil || def != "s3" || stores["s3"] == nil {
		t.Fatalf("stores with S3_CA: %v, %q, %v", stores, def, err)
	}
	cfg.S3CA, cfg.S3SSL = "", true
	if _, _, err := cfg.Stores(context.Background(), nc, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "S3_CA") {
		t.Fatalf("stores without the CA: %v, want a word on S3_CA", err)
	}
}
