package daemon_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/daemon"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/rs/zerolog"
)

func TestHelpNeverPrintsTheSecret(t *testing.T) {
	t.Setenv("S3_SECRET_KEY", "hunter2-secret")
	t.Setenv("FLOWSTONE_SIGNAL_SECRET", "swordfish-signal-secret")
	var out bytes.Buffer
	if code := daemon.RunCoordinator([]string{"-help"}, &out); code != daemon.ExitOK {
		t.Fatalf("-help exit = %d, want 0 as the worker's", code)
	}
	if strings.Contains(out.String(), "hunter2") || !strings.Contains(out.String(), "-s3-secret-key") ||
		strings.Contains(out.String(), "swordfish") || !strings.Contains(out.String(), "-signal-secret-file") {
		t.Fatalf("-help output:\n%s", out.String())
	}
}

// A signal secret that cannot be used is a usage error that never shows
// it; a good one is logged as present, never shown either.
func TestSignalSecretSettings(t *testing.T) {
	dir := t.TempDir()
	short, empty, good := dir+"/short", dir+"/empty", dir+"/good"
	for path, text := range map[string]string{short: "swordfish\n", empty: "\n", good: "swordfish-swordfish-swordfish\n"} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--signal-secret", "swordfish"}, "at least 16"},
		{[]string{"--signal-secret-file", short}, "at least 16"},
		{[]string{"--signal-secret-file", empty}, "empty"},
		{[]string{"--signal-secret-file", dir + "/none"}, "--signal-secret-file"},
		{[]string{"--signal-secret", "swordfish-swordfish", "--signal-secret-file", good}, "give one"},
	} {
		var out bytes.Buffer
		if code := daemon.RunCoordinator(append(tc.args, "--nats-url", "nats://127.0.0.1:1"), &out); code != daemon.ExitUsage ||
			!strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), "swordfish") {
			t.Errorf("%q: exit %d, stderr %q; want %d and a word on %q, without the secret", tc.args, code, out.String(), daemon.ExitUsage, tc.want)
		}
	}
	var out bytes.Buffer
	if code := daemon.RunCoordinator([]string{"--signal-secret-file", good, "--nats-url", "nats://127.0.0.1:1"}, &out); code != daemon.ExitUnreachable ||
		!strings.Contains(out.String(), `"signal_secret":true`) || strings.Contains(out.String(), "swordfish") {
		t.Errorf("a good secret file: exit %d, stderr %q", code, out.String())
	}
}

// The coordinator reads its settings as the worker does: stray arguments
// and values of the environment it cannot read are usage errors, said on
// stderr, before anything connects.
func TestCoordinatorUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		env, value string
		args       []string
		want       string
	}{
		{"", "", []string{"stray"}, "unexpected arguments"},
		{"", "", []string{"--grace", "-1s"}, "--grace"},
		{"", "", []string{"--no-such-flag"}, "not defined"},
		{"FLOWSTONE_GRACE", "soon", nil, "FLOWSTONE_GRACE"},
		{"FLOWSTONE_REPLICAS", "many", nil, "FLOWSTONE_REPLICAS"},
		{"", "", []string{"--schedule-horizon", "0s"}, "--schedule-horizon"},
		{"FLOWSTONE_SCHEDULE_HORIZON", "a year", nil, "FLOWSTONE_SCHEDULE_HORIZON"},
	} {
		t.Run(strings.Join(append([]string{tc.env}, tc.args...), " "), func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(tc.env, tc.value)
			}
			var out bytes.Buffer
			if code := daemon.RunCoordinator(append(tc.args, "--nats-url", "nats://127.0.0.1:1"), &out); code != daemon.ExitUsage ||
				!strings.Contains(out.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q: want %d and a word on %s", code, out.String(), daemon.ExitUsage, tc.want)
			}
		})
	}
}

func TestEnvironmentAndFlags(t *testing.T) {
	t.Setenv("NATS_URL", "nats://example:4222")
	t.Setenv("FLOWSTONE_STORAGE", "file")
	t.Setenv("S3_SECRET_KEY", "s")
	var cfg daemon.Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	cfg.Flags(fs)
	if err := fs.Parse([]string{"--storage", "s3"}); err != nil {
		t.Fatal(err)
	}
	if cfg.NATSURL != "nats://example:4222" || cfg.Storage != "s3" || cfg.S3SecretKey != "s" || cfg.S3Bucket != daemon.S3BucketDefault {
		t.Fatalf("cfg = %+v", cfg)
	}
}

func TestUnreachableNATSIsExitCode3(t *testing.T) {
	var out bytes.Buffer
	if code := daemon.RunCoordinator([]string{"--nats-url", "nats://user:pw@127.0.0.1:1"}, &out); code != 3 {
		t.Fatalf("exit = %d", code)
	}
	// The log goes to the stderr it is given, without the password.
	if !strings.Contains(out.String(), `"message":"start_failed"`) || strings.Contains(out.String(), ":pw@") {
		t.Fatalf("stderr %q: want the start_failed log line, without the password", out.String())
	}
}

// An empty address serves nothing and says so in the log, in both
// daemons: the endpoint is off unless asked for.
func TestServeHTTPOff(t *testing.T) {
	var logs bytes.Buffer
	addr, err := daemon.ServeHTTP(t.Context(), "", daemon.Registry(), func() error { return nil }, zerolog.New(&logs))
	if addr != "" || err != nil || !strings.Contains(logs.String(), `"message":"http_off"`) {
		t.Fatalf("ServeHTTP(\"\") = %q, %v; log %q", addr, err, logs.String())
	}
	logs.Reset()
	addr, err = daemon.ServeHTTP(t.Context(), "127.0.0.1:0", daemon.Registry(), func() error { return nil }, zerolog.New(&logs))
	if err != nil || !strings.HasPrefix(addr, "127.0.0.1:") || !strings.Contains(logs.String(), addr) {
		t.Fatalf("ServeHTTP(127.0.0.1:0) = %q, %v; log %q", addr, err, logs.String())
	}
}

func TestStoresNeedTheirSettings(t *testing.T) {
	srv := natstest.Server(t)
	nc := natstest.Connect(t, srv)
	cfg := daemon.Config{Storage: "s3"}
	if _, _, err := cfg.Stores(context.Background(), nc, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "--s3-endpoint") {
		t.Fatalf("s3 without endpoint: %v", err)
	}
	cfg = daemon.Config{Storage: "file", FileDir: t.TempDir()}
	stores, def, err := cfg.Stores(context.Background(), nc, zerolog.Nop())
	if err != nil || def != "file" || stores["file"] == nil || stores["jetstream"] == nil {
		t.Fatalf("file: %v %v %v", stores, def, err)
	}
}

func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}

// The daemons raise the GC target unless the operator set GOGC.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(gcPercent())

	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	if p, env := daemon.TuneGC(); p != 150 || !env || gcPercent() != 150 {
		t.Fatalf("with GOGC=150: TuneGC = %d, %v; in effect %d", p, env, gcPercent())
	}

	os.Unsetenv("GOGC")
	debug.SetGCPercent(100)
	if p, env := daemon.TuneGC(); p != daemon.GCPercentDefault || env || gcPercent() != daemon.GCPercentDefault {
		t.Fatalf("without GOGC: TuneGC = %d, %v; in effect %d", p, env, gcPercent())
	}
}

func TestReplicasFromEnvironmentAndFlag(t *testing.T) {
	for _, tc := range []struct {
		env     string
		args    []string
		want    int
		wantErr string // in the parse or Check error
	}{
		{"", nil, 1, ""},
		{"3", nil, 3, ""},
		{"3", []string{"--replicas", "5"}, 5, ""},
		{"many", nil, 0, "FLOWSTONE_REPLICAS=\"many\""},
		{"many", []string{"--replicas", "3"}, 3, ""}, // the flag wins
		{"", []string{"--replicas", "0"}, 0, "--replicas=\"0\""},
		{"6", nil, 0, "1 to 5"},
	} {
		t.Setenv("FLOWSTONE_REPLICAS", tc.env)
		var cfg daemon.Config
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.Flags(fs)
		err := fs.Parse(tc.args)
		if err == nil {
			err = cfg.Check()
		}
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("env %q args %v: error %v, want it to say %s", tc.env, tc.args, err, tc.wantErr)
			}
		case err != nil || cfg.Replicas != tc.want:
			t.Errorf("env %q args %v: replicas %d, %v; want %d", tc.env, tc.args, cfg.Replicas, err, tc.want)
		}
	}
}

func TestBadReplicasIsAUsageError(t *testing.T) {
	t.Setenv("FLOWSTONE_REPLICAS", "three")
	var out bytes.Buffer
	if code := daemon.RunCoordinator(nil, &out); code != 2 || !strings.Contains(out.String(), "FLOWSTONE_REPLICAS") {
		t.Fatalf("exit %d, stderr %q", code, out.String())
	}
}

func TestLimitsFromEnvironmentAndFlags(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		args    []string
		want    protocol.StreamLimits
		wantErr string
	}{
		{nil, nil, protocol.StreamLimits{}.WithDefaults(), ""},
		{map[string]string{"FLOWSTONE_RECORDS_MAX_BYTES": "2GiB", "FLOWSTONE_TASK_MAX_AGE": "48h"}, []string{"--results-max-bytes", "1048576", "--task-max-msgs", "500"},
			func() protocol.StreamLimits {
				l := protocol.StreamLimits{}.WithDefaults()
				l.RecordsMaxBytes, l.ResultsMaxBytes, l.TaskMaxAge, l.TaskMaxMsgs = 2<<30, 1<<20, 48*time.Hour, 500
				return l
			}(), ""},
		{map[string]string{"FLOWSTONE_EVENT_MAX_BYTES": "lots"}, nil, protocol.StreamLimits{}, `FLOWSTONE_EVENT_MAX_BYTES="lots"`},
		// The flag wins over a variable it could not read.
		{map[string]string{"FLOWSTONE_EVENT_MAX_BYTES": "lots"}, []string{"--event-max-bytes", "64MiB"},
			func() protocol.StreamLimits {
				l := protocol.StreamLimits{}.WithDefaults()
				l.EventMaxBytes = 64 << 20
				return l
			}(), ""},
		{nil, []string{"--scatter-max-bytes", "-1"}, protocol.StreamLimits{}, "--scatter-max-bytes"},
		{nil, []string{"--task-max-age", "soon"}, protocol.StreamLimits{}, "--task-max-age"},
	} {
		for _, name := range []string{"FLOWSTONE_RECORDS_MAX_BYTES", "FLOWSTONE_TASK_MAX_AGE", "FLOWSTONE_EVENT_MAX_BYTES"} {
			t.Setenv(name, tc.env[name])
		}
		var cfg daemon.Config
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.Flags(fs)
		err := fs.Parse(tc.args)
		if err == nil {
			err = cfg.Check()
		}
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("env %v args %v: error %v, want it to say %s", tc.env, tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || cfg.Limits.WithDefaults() != tc.want {
			t.Errorf("env %v args %v: limits %+v, %v; want %+v", tc.env, tc.args, cfg.Limits, err, tc.want)
		}
	}
}
