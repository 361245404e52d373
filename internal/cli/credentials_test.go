package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/cli"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

// fsctl takes its user and password from NATS_USER and NATS_PASSWORD, as
// the daemons do, and never prints the password.
func TestCredentialsFromEnvironment(t *testing.T) {
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, Username: "client", Password: "hunter2-fsctl", NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(srv.Shutdown)
	t.Setenv("NATS_URL", srv.ClientURL())

	t.Setenv("NATS_USER", "client")
	t.Setenv("NATS_PASSWORD", "hunter2-fsctl")
	// Connected: the server has no coordinator to answer.
	if r := fsctl(t, "pipelines"); r.code != cli.ExitUnavailable || !strings.Contains(r.stderr, "no coordinator is answering") {
		t.Fatalf("with the password: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := fsctl(t, "help", "status"); strings.Contains(r.stdout, "hunter2") || !strings.Contains(r.stdout, "-password") {
		t.Fatalf("help shows the password, or not the flag:\n%s", r.stdout)
	}

	t.Setenv("NATS_PASSWORD", "wrong")
	if r := fsctl(t, "pipelines"); r.code != cli.ExitUnavailable || !strings.Contains(r.stderr, "NATS_PASSWORD") || strings.Contains(r.stderr, "wrong") {
		t.Fatalf("with a wrong password: exit %d, stderr %q", r.code, r.stderr)
	}

	t.Setenv("NATS_USER", "")
	if r := fsctl(t, "pipelines"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "--user") {
		t.Fatalf("a password without a user: exit %d, stderr %q", r.code, r.stderr)
	}
}
