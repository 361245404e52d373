package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// waitingGate polls fsctl approvals release until the gate of asset's
// partition waits, and returns it.
func waitingGate(t *testing.T, asset, part string) flowstone.WaitingGate {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct{ Gates []flowstone.WaitingGate }
		ok(t, &list, "approvals", "release")
		for _, g := range list.Gates {
			if g.Asset == asset && g.Partition == part {
				return g
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gate of %s [%s] never waited: %+v", asset, part, list.Gates)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitState polls fsctl status until asset's partition is in a terminal
// state, and returns it.
func waitState(t *testing.T, asset, part string) flowstone.StatusInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st flowstone.StatusInfo
		ok(t, &st, "status", "release", asset, "--partition", part)
		if st.State.Terminal() {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s [%s] stayed %s", asset, part, st.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestApproveAndReject(t *testing.T) {
	var info flowstone.Info
	ok(t, &info, "info", "release", "publish")
	if !info.HasApproval || info.HasSignal {
		t.Errorf("info release publish = %+v, want an approval gate", info)
	}
	ok(t, &info, "info", "release", "smoke")
	if info.HasApproval || !info.HasSignal {
		t.Errorf("info release smoke = %+v, want a signal gate", info)
	}
	r := fsctl(t, append([]string{"info", "release", "publish"}, server(t)...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "gate:") || !strings.Contains(r.stdout, "approval") {
		t.Errorf("info of a gated asset: exit %d, %q", r.code, r.stdout)
	}
	part := uniq("v1")
	var res runJSON
	ok(t, &res, "run", "release", "announce", "--partition", part, "--async")
	g := waitingGate(t, "publish", part)
	if g.Kind != flowstone.GateApproval || g.Message != "Publish this release?" || g.RunID != res.RunID {
		t.Fatalf("waiting gate = %+v", g)
	}
	var st flowstone.StatusInfo
	ok(t, &st, "status", "release", "publish", "--partition", part)
	if st.State != flowstone.StateWaitingApproval || st.Gate == nil {
		t.Fatalf("status of the waiting gate = %+v", st)
	}
	r = fsctl(t, append([]string{"status", "release", "publish", "--partition", part}, server(t)...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "waiting_approval") || !strings.Contains(r.stdout, "approval, waiting since") ||
		!strings.Contains(r.stdout, "Publish this release?") {
		t.Errorf("status of the waiting gate: exit %d, %q", r.code, r.stdout)
	}
	r = fsctl(t, append([]string{"approvals"}, server(t)...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "PIPELINE") || !strings.Contains(r.stdout, part) {
		t.Errorf("approvals: exit %d, %q", r.code, r.stdout)
	}
	var approved map[string]any
	ok(t, &approved, "approve", "release", "publish", "--partition", part, "--reason", "all green")
	if approved["approved"] != true || approved["partition"] != part {
		t.Errorf("approve = %v", approved)
	}
	if st := waitState(t, "announce", part); st.State != flowstone.StateCompleted {
		t.Fatalf("announce after the approval = %+v", st)
	}
	fails(t, 1, "not_found", "approve", "release", "publish", "--partition", part)

	part = uniq("v2")
	ok(t, &res, "run", "release", "announce", "--partition", part, "--async")
	waitingGate(t, "publish", part)
	r = fsctl(t, append([]string{"reject", "release", "publish", "--partition", part, "--reason", "not yet"}, server(t)...)...)
	if r.code != 0 || r.stdout != "rejected publish ["+part+"]\n" {
		t.Errorf("reject: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	st = waitState(t, "announce", part)
	if st.State != flowstone.StateFailed || st.Error == nil || st.Error.Type != flowstone.TypeDependencyFailed ||
		!strings.Contains(st.Error.Message, "not yet") {
		t.Fatalf("announce after the rejection = %+v (%v)", st, st.Error)
	}
	ok(t, &st, "status", "release", "publish", "--partition", part)
	if st.State != flowstone.StateFailed || st.Error == nil || st.Error.Type != flowstone.TypeRejected || st.Gate.Reason != "not yet" {
		t.Fatalf("publish after the rejection = %+v", st)
	}
	fails(t, 1, "bad_request", "approve", "release", "build", "--partition", part)
	fails(t, 1, "asset_not_found", "reject", "release", "nope")
	fails(t, 1, "pipeline_not_found", "approve", "nope", "publish")
}

func TestSignal(t *testing.T) {
	part := uniq("v3")
	var res runJSON
	ok(t, &res, "run", "release", "smoke", "--partition", part, "--async")
	g := waitingGate(t, "smoke", part)
	if g.Kind != flowstone.GateSignal || !strings.HasPrefix(g.Token, "fsg1.") {
		t.Fatalf("waiting gate = %+v", g)
	}
	r := fsctl(t, append([]string{"approvals", "release"}, server(t)...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "fsctl signal "+g.Token) {
		t.Errorf("approvals of a signal gate: exit %d, %q", r.code, r.stdout)
	}
	fails(t, 1, "bad_request", "signal", g.Token[:len(g.Token)-4]+"AAAA", "--payload", `{"passed":false}`)
	fails(t, 2, "usage", "signal", g.Token, "--payload", "{not json")
	var signalled map[string]bool
	ok(t, &signalled, "signal", g.Token, "--payload", `{"passed":true,"notes":"ok"}`)
	if st := waitState(t, "smoke", part); st.State != flowstone.StateCompleted {
		t.Fatalf("smoke after the signal = %+v", st)
	}
	var got runJSON
	ok(t, &got, "get", "release", "smoke", "--partition", part)
	if compact(got.Value) != `{"passed":true,"notes":"ok"}` {
		t.Errorf("smoke = %s", got.Value)
	}
	fails(t, 1, "not_found", "signal", g.Token, "--payload", `{"passed":false}`)
}
