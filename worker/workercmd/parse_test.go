package workercmd

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/worker"
)

func TestParseDefaults(t *testing.T) {
	for _, name := range []string{"NATS_URL", "FLOWSTONE_STORAGE", "FLOWSTONE_HTTP", "FLOWSTONE_CONCURRENCY", "FLOWSTONE_GRACE",
		"FLOWSTONE_ACK_WAIT", "FLOWSTONE_SOURCE_LATENCY", "FLOWSTONE_ID", "FLOWSTONE_NO_EVENTS"} {
		t.Setenv(name, "")
	}
	o, err := parse(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.daemon.NATSURL != "nats://127.0.0.1:4222" || o.daemon.Storage != "jetstream" || o.daemon.HTTPAddr != "" ||
		o.concurrency != worker.ConcurrencyDefault || o.grace != GraceDefault || o.ackWait != fleet.AckWaitDefault ||
		o.sourceLatency != 0 || o.id != "" || o.noEvents {
		t.Fatalf("defaults = %+v", o)
	}
}

func TestParseFlagWinsOverEnvironment(t *testing.T) {
	t.Setenv("NATS_URL", "nats://env:4222")
	t.Setenv("FLOWSTONE_CONCURRENCY", "7")
	t.Setenv("FLOWSTONE_SOURCE_LATENCY", "2s")
	t.Setenv("FLOWSTONE_HTTP", ":9999")
	t.Setenv("FLOWSTONE_NO_EVENTS", "true")
	o, err := parse([]string{"--concurrency", "3", "--grace", "5s", "--id", "w1", "--http", ""}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.daemon.NATSURL != "nats://env:4222" || o.concurrency != 3 || o.sourceLatency != 2*time.Second ||
		o.grace != 5*time.Second || o.id != "w1" || o.daemon.HTTPAddr != "" || !o.noEvents {
		t.Fatalf("options = %+v", o)
	}
}

func TestParseRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		env, value string
		args       []string
		want       string
	}{
		{"FLOWSTONE_CONCURRENCY", "many", nil, "FLOWSTONE_CONCURRENCY"},
		{"FLOWSTONE_GRACE", "soon", nil, "FLOWSTONE_GRACE"},
		{"", "", []string{"--concurrency", "0"}, "--concurrency"},
		{"", "", []string{"--ack-wait", "0s"}, "--ack-wait"},
		{"", "", []string{"stray"}, "unexpected arguments"},
		{"", "", []string{"--no-such-flag"}, "not defined"},
	} {
		if tc.env != "" {
			t.Setenv(tc.env, tc.value)
		}
		var out strings.Builder
		_, err := parse(tc.args, &out)
		if err == nil || !strings.Contains(err.Error()+out.String(), tc.want) {
			t.Errorf("parse(%v) with %s=%q: %v, want it to mention %s", tc.args, tc.env, tc.value, err, tc.want)
		}
		if tc.env != "" {
			t.Setenv(tc.env, "")
		}
	}
	if _, err := parse([]string{"-help"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-help: %v", err)
	}
}

func TestHelpNeverShowsTheSecretKey(t *testing.T) {
	t.Setenv("S3_SECRET_KEY", "hunter2-secret")
	var out strings.Builder
	parse([]string{"-help"}, &out)
	if strings.Contains(out.String(), "hunter2") {
		t.Fatalf("-help printed the secret key:\n%s", out.String())
	}
}
