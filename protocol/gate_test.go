package protocol_test

import (
	"testing"

	"github.com/flowstone-go/flowstone/protocol"
)

// A manifest carries an asset's gate; an asset has one gate at most.
func TestManifestGates(t *testing.T) {
	m := validManifest()
	m.Assets[0].HasApproval, m.Assets[0].ApprovalMessage, m.Assets[0].GateTimeoutMS = true, "go?", 60_000
	m.Assets[0].ApprovalContext = map[string]any{"ticket": "REL-1"}
	m.Assets[1].HasSignal, m.Assets[1].SignalOnTimeout, m.Assets[1].GateTimeoutMS = true, true, 1_000
	roundTripMessage(t, "gated manifest", manifestCodec, m)

	both := validManifest()
	both.Assets[0].HasApproval, both.Assets[0].HasSignal = true, true
	if err := both.Validate(); err == nil || err.Code != protocol.CodeBadRequest || err.Details["field"] != "assets[0].has_signal" {
		t.Errorf("a manifest with two gates on one asset: %v", err)
	}
	neg := validManifest()
	neg.Assets[0].GateTimeoutMS = -1
	if err := neg.Validate(); err == nil || err.Details["field"] != "assets[0].gate_timeout_ms" {
		t.Errorf("a negative gate timeout: %v", err)
	}
}
