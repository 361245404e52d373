package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

// gateOut is a gate as fsctl approvals --json lists it (status --json
// has a gate of the same shape, with its decision).
type gateOut struct {
	Pipeline  string         `json:"pipeline"`
	Asset     string         `json:"asset"`
	Partition string         `json:"partition"`
	RunID     string         `json:"run_id"`
	Kind      string         `json:"kind"`
	Message   string         `json:"message"`
	Context   map[string]any `json:"context"`
	OpenedAt  time.Time      `json:"opened_at"`
	Deadline  time.Time      `json:"deadline"`
	Token     string         `json:"token"`
	Decision  string         `json:"decision"`
	DecidedAt *time.Time     `json:"decided_at"`
	Reason    string         `json:"reason"`
}

// waitGate polls fsctl approvals until the gate of asset's partition
// waits, and returns it.
func (f *fleet) waitGate(asset, partition string) gateOut {
	f.t.Helper()
	var found gateOut
	f.eventually("fsctl approvals to list the gate of "+asset+" ["+partition+"]", func() (bool, string) {
		r := f.fsctl("approvals", "release")
		if r.code != 0 {
			return false, r.String()
		}
		var out struct {
			Gates []gateOut `json:"gates"`
		}
		decode(f.t, r, &out)
		for _, g := range out.Gates {
			if g.Asset == asset && g.Partition == partition {
				found = g
				return true, ""
			}
		}
		return false, r.stdout
	})
	return found
}

// TestApprovalSurvivesCoordinatorRestart: a run waits at an approval gate
// (release.publish), its coordinator is SIGKILLed and started again, and
// the gate still waits, the same gate; fsctl approve then resumes the
// run: publish runs once, after the approval, and announce after it.
func TestApprovalSurvivesCoordinatorRestart(t *testing.T) {
	f := newFleet(t)
	coord := f.coordinator("c1")
	f.worker("w1")
	f.waitReady(1)
	w := f.watch("release")
	const part = "v2025.10"

	var run runOut
	f.ok(&run, "run", "release", "announce", "--partition", part, "--async")
	before := f.waitGate("publish", part)
	if before.Kind != "approval" || before.Message != "Publish this release?" || before.RunID != run.RunID || before.Token != "" {
		t.Fatalf("waiting gate = %+v (run %s)", before, run.RunID)
	}
	if st := f.status("release", "publish", part); st.State != "waiting_approval" || st.RunID != run.RunID || st.Gate == nil || st.Gate.Kind != "approval" {
		t.Fatalf("status of the waiting gate = %+v", st)
	}
	w.waitEvent(protocol.EventGateWait, "publish", part)

	coord.kill(t)
	f.coordinator("c1")
	f.waitReady(1)
	after := f.waitGate("publish", part)
	if after.RunID != before.RunID || !after.OpenedAt.Equal(before.OpenedAt) || !after.Deadline.Equal(before.Deadline) {
		t.Fatalf("the gate after the restart = %+v, want the one before it, %+v", after, before)
	}
	if n := w.count(protocol.EventRunStart, "publish", part); n != 0 {
		t.Fatalf("publish started %d times before its approval", n)
	}

	var approved map[string]any
	f.ok(&approved, "approve", "release", "publish", "--partition", part, "--reason", "e2e")
	if approved["approved"] != true {
		t.Fatalf("approve = %v", approved)
	}
	if st := f.waitStatus("release", "announce", part, "completed", stateIs("completed", "failed", "cancelled")); st.State != "completed" {
		t.Fatalf("announce after the approval = %+v", st)
	}
	var got runOut
	f.ok(&got, "get", "release", "announce", "--partition", part)
	if string(got.Value) != `"announced: published `+part+`"` {
		t.Errorf("announce = %s", got.Value)
	}
	w.waitEvent(protocol.EventGateApproved, "publish", part)
	w.waitEvent(protocol.EventRunStop, "publish", part)
	if n := w.count(protocol.EventRunStart, "publish", part); n != 1 {
		t.Errorf("publish started %d times, want once", n)
	}
	f.fails(1, "not_found", "approve", "release", "publish", "--partition", part)
}

// TestSignalOnTheFleet: with the coordinator's secret from a file, a
// signal gate issues a token; a forged token is refused and changes
// nothing, the real one delivers its payload once, and the same token
// again is refused.
func TestSignalOnTheFleet(t *testing.T) {
	f := newFleet(t)
	secret := filepath.Join(t.TempDir(), "signal-secret")
	if err := os.WriteFile(secret, []byte("e2e-signal-secret-of-32-bytes!!!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	coord := f.coordinator("c1", "--signal-secret-file", secret)
	f.worker("w1")
	f.waitReady(1)
	const part = "v2025.11"

	f.ok(nil, "run", "release", "smoke", "--partition", part, "--async")
	g := f.waitGate("smoke", part)
	if g.Kind != "signal" || !strings.HasPrefix(g.Token, "fsg1.") {
		t.Fatalf("waiting gate = %+v", g)
	}
	if strings.Contains(coord.stderr.text(), "e2e-signal-secret") {
		t.Error("the coordinator logged its signal secret")
	}
	forged := g.Token[:len(g.Token)-4] + "AAAA"
	f.fails(1, "bad_request", "signal", forged, "--payload", `{"passed":true}`)
	if st := f.status("release", "smoke", part); st.State != "waiting_signal" {
		t.Fatalf("status after a forged signal = %+v", st)
	}
	f.ok(nil, "signal", g.Token, "--payload", `{"passed":true,"notes":"e2e"}`)
	if st := f.waitStatus("release", "smoke", part, "completed", stateIs("completed", "failed", "cancelled")); st.State != "completed" {
		t.Fatalf("smoke after the signal = %+v", st)
	}
	f.fails(1, "not_found", "signal", g.Token, "--payload", `{"passed":false}`)
	var got runOut
	f.ok(&got, "get", "release", "smoke", "--partition", part)
	var report struct {
		Passed bool   `json:"passed"`
		Notes  string `json:"notes"`
	}
	if err := json.Unmarshal(got.Value, &report); err != nil || !report.Passed || report.Notes != "e2e" {
		t.Errorf("smoke = %s, %v", got.Value, err)
	}
}
