package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

// TestBadInput: what a user mistypes gets a structured error with the
// right exit code, and changes nothing (invariant 7).
func TestBadInput(t *testing.T) {
	f := newFleet(t)
	f.coordinator("c1")
	f.worker("w1")
	f.waitReady(1)

	e := f.fails(1, "pipeline_not_found", "run", "nosuch", "sum")
	if !strings.Contains(e.Message, "nosuch") {
		t.Errorf("unknown pipeline: %+v", e)
	}
	e = f.fails(1, "asset_not_found", "run", "example", "unknown")
	for _, w := range []string{"unknown", "numbers", "doubled", "sum"} {
		if !strings.Contains(e.Message, w) {
			t.Errorf("unknown asset: message %q does not name %q", e.Message, w)
		}
	}
	f.fails(1, "asset_not_found", "status", "example", "unknown")
	f.fails(1, "asset_not_found", "info", "example", "unknown")
	e = f.fails(1, "bad_request", "run", "daily_sales", "revenue", "--partition", "yesterday")
	if !strings.Contains(e.Message, "yesterday") {
		t.Errorf("bad partition: %+v", e)
	}
	f.fails(1, "bad_request", "run", "daily_sales", "revenue", "--partition", "2025-02-30")
	f.fails(2, "usage", "run", "example", "sum", "--no-such-flag")
	f.fails(2, "usage", "run", "example")
	f.fails(2, "usage", "frobnicate", "example")
	f.fails(2, "usage", "graph", "example", "--format", "png")
	f.fails(2, "usage", "backfill", "daily_sales", "revenue", "--partitions", "2025-01-07..2025-01-01")
	f.fails(1, "bad_request", "run", "example", "bad.asset")
	e = f.fails(1, "bad_request", "run", "example", "sum", "--partition", strings.Repeat("p", protocol.MaxPartitionBytes+1))
	if len(e.Message) > 1000 {
		t.Errorf("the error on a long partition repeats it: %d bytes of message", len(e.Message))
	}
	// One bad partition in a backfill list: refused before anything runs.
	e = f.fails(1, "bad_request", "backfill", "daily_sales", "revenue", "--partitions", "2025-01-01,not-a-day,2025-01-02")
	if !strings.Contains(e.Message, "not-a-day") {
		t.Errorf("backfill with a bad partition: %+v", e)
	}
	// An unknown storage is found out where the asset runs (as embedded):
	// a clear error naming it and what is available, after the fact.
	r := f.fsctl("run", "daily_sales", "orders", "--partition", "2025-01-09", "--storage", "nosuch")
	if r.code != 1 || !strings.Contains(r.stdout, `\"nosuch\" is not configured`) || !strings.Contains(r.stdout, "available") {
		t.Errorf("run --storage nosuch: %s", r)
	}

	// A fleet that is not there.
	r = runFsctl(t, "status", "example", "sum", "--server", "nats://"+closedPort(t), "--json", "--timeout", "2s")
	expectError(t, r, 3, "unavailable")

	// None of it ran anything.
	for _, target := range [][2]string{{"example", "sum"}, {"example", "numbers"}} {
		if st := f.status(target[0], target[1], "default"); st.State != "not_found" {
			t.Errorf("status of %v after bad input: %+v", target, st)
		}
	}
	for _, day := range []string{"2025-01-01", "2025-01-02", "2025-01-09"} {
		if st := f.status("daily_sales", "orders", day); st.State != "not_found" {
			t.Errorf("status of orders [%s] after bad input: %+v", day, st)
		}
	}
}

// TestHostilePartitions: partition text that looks like paths, subjects,
// or is spaced or unicode is refused with bad_request by an unpartitioned
// asset (which has the one partition "default") and by a daily one, on
// every verb, and creates nothing. (Such text round-trips as data through
// an asset partitioned by any key: the coordinator's and fsctl's tests
// host one.)
func TestHostilePartitions(t *testing.T) {
	f := newFleet(t)
	f.coordinator("c1")
	f.worker("w1")
	f.waitReady(1)

	parts := []string{"a/../b", "flowstone.api.>", "flowstone.*", "with  spaces ", "日本語 ✓ é", "../../etc/passwd", "x\ty", `quote"d\`, "%2F.%00"}
	for _, p := range parts {
		for _, target := range [][2]string{{"example", "sum"}, {"daily_sales", "revenue"}} {
			verbs := []string{"run", "status"}
			if p == "../../etc/passwd" {
				verbs = []string{"run", "get", "exists", "status", "cancel", "invalidate"}
			}
			for _, verb := range verbs {
				if e := f.fails(1, "bad_request", verb, target[0], target[1], "--partition", p); e.Details["partition"] != p {
					t.Errorf("%s %v --partition %q: %+v", verb, target, p, e)
				}
			}
		}
	}
	for _, a := range []string{"numbers", "doubled", "sum"} {
		if st := f.status("example", a, "default"); st.State != "not_found" {
			t.Errorf("status of example %s after refused partitions: %+v", a, st)
		}
	}
	var run runOut
	f.ok(&run, "run", "example", "sum")
	if run.Partition != "default" || string(run.Value) != "30" {
		t.Errorf("run without a partition = %+v (value %s)", run, run.Value)
	}
}

// TestRawProtocolErrors sends what no client would to the coordinator's
// API subjects: a wrong protocol version, malformed JSON, unknown fields.
// Each gets a structured error reply, and nothing changes (invariant 7).
func TestRawProtocolErrors(t *testing.T) {
	f := newFleet(t)
	f.coordinator("c1")
	f.worker("w1")
	f.waitReady(1)

	for _, c := range []struct {
		name, verb, body, code string
	}{
		{"wrong version", protocol.VerbRun, `{"v":99,"pipeline":"example","asset":"sum"}`, protocol.CodeUnsupportedVersion},
		{"no version", protocol.VerbRun, `{"pipeline":"example","asset":"sum"}`, protocol.CodeUnsupportedVersion},
		{"malformed", protocol.VerbRun, `{"v":1,"pipeline":"example",`, protocol.CodeBadRequest},
		{"unknown field", protocol.VerbRun, `{"v":1,"pipeline":"example","asset":"sum","rm_rf":true}`, protocol.CodeBadRequest},
		{"trailing data", protocol.VerbRun, `{"v":1,"pipeline":"example","asset":"sum"} {}`, protocol.CodeBadRequest},
		{"empty", protocol.VerbRun, ``, protocol.CodeBadRequest},
		{"not utf-8", protocol.VerbRun, "{\"v\":1,\"pipeline\":\"example\",\"asset\":\"sum\",\"partition\":\"\xff\"}", protocol.CodeBadRequest},
		{"bad priority", protocol.VerbRun, `{"v":1,"pipeline":"example","asset":"sum","priority":9}`, protocol.CodeBadRequest},
		{"wrong version on invalidate", protocol.VerbInvalidate, `{"v":2,"pipeline":"example","asset":"numbers","cascade":true}`, protocol.CodeUnsupportedVersion},
		{"wrong version on backfill", protocol.VerbBackfill, `{"v":0,"pipeline":"daily_sales","asset":"revenue","partitions":["2025-01-01"]}`, protocol.CodeUnsupportedVersion},
	} {
		msg, err := f.nc.Request(protocol.APISubject(c.verb), []byte(c.body), 10*time.Second)
		if err != nil {
			t.Errorf("%s: no reply: %v", c.name, err)
			continue
		}
		var reply struct {
			V     int             `json:"v"`
			OK    json.RawMessage `json:"ok"`
			Error *protocol.Error `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &reply); err != nil || reply.Error == nil || reply.OK != nil {
			t.Errorf("%s: reply %q is not a structured error (%v)", c.name, msg.Data, err)
			continue
		}
		if reply.V != protocol.Version || reply.Error.Code != c.code || reply.Error.Message == "" {
			t.Errorf("%s: reply %s, want v%d and code %s with a message", c.name, msg.Data, protocol.Version, c.code)
		}
	}
	// The coordinator still serves, and nothing ran or was invalidated.
	for _, a := range []string{"numbers", "doubled", "sum"} {
		if st := f.status("example", a, "default"); st.State != "not_found" {
			t.Errorf("status example %s after bad requests: %+v", a, st)
		}
	}
	if st := f.status("daily_sales", "revenue", "2025-01-01"); st.State != "not_found" {
		t.Errorf("status of revenue after bad requests: %+v", st)
	}
	var run runOut
	f.ok(&run, "run", "example", "sum")
	if string(run.Value) != "30" {
		t.Errorf("run after bad requests = %s", run.Value)
	}
}
