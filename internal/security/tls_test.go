package security_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/internal/cli"
	"github.com/flowstone-go/flowstone/internal/daemon"
	"github.com/flowstone-go/flowstone/internal/tlstest"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// tlsFleet starts a fleet of its own over TLS (mode), every party on its
// role's user, with certificates made for the test.
func tlsFleet(t *testing.T, mode tlsMode, workerFirst bool) *fleet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := startFleet(ctx, t.TempDir(), mode, tlstest.New(t), workerFirst)
	if err != nil {
		t.Fatalf("start a fleet over TLS: %v", err)
	}
	t.Cleanup(f.stop)
	return f
}

// useFleet runs, reads and backfills on f as the client role, through the
// client and through fsctl.
func useFleet(t *testing.T, f *fleet) {
	t.Helper()
	c, ctx, part := f.connectClient(t, roleClient), testCtx(t), uniq(t)
	res, err := c.Run(ctx, "sec", "big", flowstone.Partition(part))
	if err != nil {
		t.Fatalf("run over TLS: %v", err)
	}
	if b, err := res.Bytes(ctx); err != nil || len(b) != bigSize {
		t.Fatalf("read a large result over TLS: %d bytes, %v", len(b), err)
	}
	if stats, err := c.Backfill(ctx, "sec", "daily", flowstone.Partitions(freshDays(2)...),
		flowstone.OnProgress(func(flowstone.BackfillProgress) {})); err != nil || stats.Succeeded != 2 {
		t.Fatalf("backfill over TLS = %+v, %v", stats, err)
	}
	if out, errs, code := fsctl(ctx, f, "run", "sec", "small", "--partition", part); code != cli.ExitOK || !strings.Contains(out, part) {
		t.Fatalf("fsctl run over TLS: exit %d, %q, %q", code, out, errs)
	}
	for _, conn := range []string{coordinatorConn, workerConn} {
		if v := f.log.violations(conn); len(v) > 0 {
			t.Errorf("the server refused %s:\n%s", conn, strings.Join(v, "\n"))
		}
	}
}

// connectFails connects a client with opts and checks the error: the
// fleet unavailable, saying each of want.
func connectFails(t *testing.T, f *fleet, opts []nats.Option, want ...string) {
	t.Helper()
	c, err := client.Connect(f.url, client.WithNATSOptions(opts...))
	if err == nil {
		c.Close()
		t.Fatal("the client connected")
	}
	t.Logf("client.Connect: %v", err)
	if !errors.Is(err, flowstone.ErrUnavailable) {
		t.Errorf("error %v is not unavailable", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if strings.Contains(err.Error(), passwords[roleClient]) {
		t.Error("the error shows the password")
	}
}

// daemonConnectFails connects as a daemon with cfg and checks that the
// error says each of want.
func daemonConnectFails(t *testing.T, cfg daemon.Config, want ...string) {
	t.Helper()
	nc, err := cfg.Connect("sec-daemon-probe", zerolog.Nop())
	if err == nil {
		nc.Close()
		t.Fatal("the daemon connected")
	}
	t.Logf("daemon Connect: %v", err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// TestFleetOverTLS runs a fleet whose server clients verify against the
// test's CA: the coordinator, the worker, the client and fsctl all given
// the CA. A client or a daemon without the CA fails saying what to give.
func TestFleetOverTLS(t *testing.T) {
	f := tlsFleet(t, verified, false)
	useFleet(t, f)

	user := nats.UserInfo(roleClient, passwords[roleClient])
	t.Run("client without the CA", func(t *testing.T) {
		connectFails(t, f, []nats.Option{user, nats.Secure()}, "not signed by a CA this client trusts", "--tls-ca")
	})
	t.Run("daemon without the CA", func(t *testing.T) {
		// A nats:// URL too: the server's TLS is required all the same.
		cfg := f.daemonConfig(roleWorker, "")
		cfg.TLSCA, cfg.NATSURL = "", strings.Replace(f.url, "tls://", "nats://", 1)
		daemonConnectFails(t, cfg, "not signed by a CA the daemon trusts", "NATS_TLS_CA")
	})
	t.Run("fsctl without the CA", func(t *testing.T) {
		var out, errb bytes.Buffer
		code := cli.Run(testCtx(t), []string{"pipelines", "--server", f.url,
			"--user", roleClient, "--password", passwords[roleClient]}, &out, &errb)
		if code != cli.ExitUnavailable || !strings.Contains(errb.String(), "--tls-ca") {
			t.Fatalf("exit %d, stderr %q; want %d and a word on --tls-ca", code, errb.String(), cli.ExitUnavailable)
		}
	})
}

// TestFleetOverMutualTLS runs a fleet whose server requires client
// certificates its CA signed, the worker started first (creating the
// fleet's streams and buckets as its role allows). A client with the CA
// but without a certificate fails saying what to give.
func TestFleetOverMutualTLS(t *testing.T) {
	f := tlsFleet(t, mutual, true)
	useFleet(t, f)

	t.Run("client without a certificate", func(t *testing.T) {
		connectFails(t, f, []nats.Option{nats.UserInfo(roleClient, passwords[roleClient]), nats.RootCAs(f.certs.CAFile)},
			"requires a client certificate", "--tls-cert")
	})
	t.Run("daemon without a certificate", func(t *testing.T) {
		cfg := f.daemonConfig(roleWorker, "")
		cfg.TLSCert, cfg.TLSKey = "", ""
		daemonConnectFails(t, cfg, "client certificate", "NATS_TLS_CERT")
	})
	t.Run("fsctl without a certificate", func(t *testing.T) {
		var out, errb bytes.Buffer
		code := cli.Run(testCtx(t), []string{"pipelines", "--server", f.url, "--tls-ca", f.certs.CAFile,
			"--user", roleClient, "--password", passwords[roleClient]}, &out, &errb)
		if code != cli.ExitUnavailable || !strings.Contains(errb.String(), "--tls-cert") {
			t.Fatalf("exit %d, stderr %q; want %d and a word on --tls-cert", code, errb.String(), cli.ExitUnavailable)
		}
	})
}
