package protocol

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Gates. An asset declared with an approval gate waits, before it runs,
// for ApproveRequest (or RejectRequest); one with a signal gate for
// SignalRequest, carrying the token the fleet issued for it
// (ApprovalsReply lists both kinds, with a signal gate's token). Nothing
// executes while a gate waits. (All added within Version 1.)

// The kinds of gates (WaitingGate.Kind, GateStatus.Kind).
const (
	GateApproval = "approval"
	GateSignal   = "signal"
)

// MaxReasonBytes is the longest reason of an approval or a rejection.
const MaxReasonBytes = 4096

// MaxSignalPayloadBytes is the largest signal payload.
const MaxSignalPayloadBytes = 64 << 10

// MaxTokenBytes is the longest signal token.
const MaxTokenBytes = 16 << 10

// ApproveRequest lets an asset's approval gate pass for a partition
// (verb approve): the run waiting there runs the asset, then its
// dependents.
type ApproveRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partition is the partition; "" means DefaultPartition.
	Partition string `json:"partition,omitempty"`
	// Reason says why, for the record.
	Reason string `json:"reason,omitempty"`
}

// Verb returns VerbApprove.
func (ApproveRequest) Verb() string { return VerbApprove }
func (ApproveRequest) isRequest()   {}

// Validate checks the version, names, partition and reason.
func (r ApproveRequest) Validate() *Error {
	return checkDecision(r.V, r.Pipeline, r.Asset, r.Partition, r.Reason)
}

// RejectRequest ends an asset's waiting gate (an approval or a signal)
// for a partition (verb reject): the asset fails with CodeRejected, and
// the dependents of the run waiting there with CodeDependencyFailed.
type RejectRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
	// Partition is the partition; "" means DefaultPartition.
	Partition string `json:"partition,omitempty"`
	// Reason says why; the rejection's error carries it.
	Reason string `json:"reason,omitempty"`
}

// Verb returns VerbReject.
func (RejectRequest) Verb() string { return VerbReject }
func (RejectRequest) isRequest()   {}

// Validate checks the version, names, partition and reason.
func (r RejectRequest) Validate() *Error {
	return checkDecision(r.V, r.Pipeline, r.Asset, r.Partition, r.Reason)
}

func checkDecision(v int, pipeline, asset, partition, reason string) *Error {
	if err := checkTarget(v, pipeline, asset, partition); err != nil {
		return err
	}
	if len(reason) > MaxReasonBytes {
		return fieldErrorf("reason", "reason is %d bytes long; the limit is %d", len(reason), MaxReasonBytes)
	}
	return checkText("reason", reason)
}

// SignalRequest delivers a signal to the gate its token names (verb
// signal). A token the fleet did not sign is refused with CodeBadRequest,
// a gate that no longer waits (signalled already, rejected, expired) with
// CodeNotFound; either way nothing changes.
type SignalRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Token is the gate's token, as ApprovalsReply lists it.
	Token string `json:"token"`
	// Payload is the signal's JSON, at most MaxSignalPayloadBytes; absent
	// for none.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Verb returns VerbSignal.
func (SignalRequest) Verb() string { return VerbSignal }
func (SignalRequest) isRequest()   {}

// Validate checks the version, that the token is present and not too
// long, and the payload's size (whether it is JSON, the decoder has
// checked).
func (r SignalRequest) Validate() *Error {
	if err := checkVersion(r.V); err != nil {
		return err
	}
	if r.Token == "" {
		return fieldErrorf("token", "token is missing: give the token the fleet issued for the gate (fsctl approvals lists it)")
	}
	if len(r.Token) > MaxTokenBytes {
		return fieldErrorf("token", "token is %d bytes long; the limit is %d", len(r.Token), MaxTokenBytes)
	}
	if len(r.Payload) > MaxSignalPayloadBytes {
		return fieldErrorf("payload", "payload is %d bytes; the limit is %d", len(r.Payload), MaxSignalPayloadBytes)
	}
	return nil
}

// DecisionReply answers ApproveRequest, RejectRequest and SignalRequest.
type DecisionReply struct {
	// Asset names the gated asset decided.
	Asset string `json:"asset"`
	// Partition is its resolved partition.
	Partition string `json:"partition"`
}

func (DecisionReply) isReply() {}

// Validate checks the names.
func (r DecisionReply) Validate() *Error {
	if err := checkName("asset", r.Asset); err != nil {
		return err
	}
	return checkPartition("partition", r.Partition, false)
}

// ApprovalsRequest lists the gates that wait (verb approvals).
type ApprovalsRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline; "" lists every pipeline's.
	Pipeline string `json:"pipeline,omitempty"`
}

// Verb returns VerbApprovals.
func (ApprovalsRequest) Verb() string { return VerbApprovals }
func (ApprovalsRequest) isRequest()   {}

// Validate checks the version and the pipeline's name, if given.
func (r ApprovalsRequest) Validate() *Error {
	if err := checkVersion(r.V); err != nil {
		return err
	}
	return checkOptionalName("pipeline", r.Pipeline)
}

// ApprovalsReply answers an ApprovalsRequest.
type ApprovalsReply struct {
	// Gates are the gates that wait, oldest first.
	Gates []WaitingGate `json:"gates"`
}

func (ApprovalsReply) isReply() {}

// Validate checks every gate.
func (r ApprovalsReply) Validate() *Error {
	for i := range r.Gates {
		if err := r.Gates[i].validate(indexed("gates", i) + "."); err != nil {
			return err
		}
	}
	return nil
}

// WaitingGate is a gate that waits.
type WaitingGate struct {
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the gated asset.
	Asset string `json:"asset"`
	// Partition is the resolved partition that waits.
	Partition string `json:"partition"`
	// RunID is the run that waits there.
	RunID string `json:"run_id"`
	// Kind is GateApproval or GateSignal.
	Kind string `json:"kind"`
	// Message is an approval gate's question.
	Message string `json:"message,omitempty"`
	// Context is an approval gate's facts for the approver.
	Context map[string]any `json:"context,omitempty"`
	// OpenedAt is when the gate began to wait.
	OpenedAt time.Time `json:"opened_at"`
	// Deadline is when it expires.
	Deadline time.Time `json:"deadline"`
	// Token is a signal gate's token, for SignalRequest.
	Token string `json:"token,omitempty"`
}

func (g *WaitingGate) validate(prefix string) *Error {
	if err := checkName(prefix+"pipeline", g.Pipeline); err != nil {
		return err
	}
	if err := checkName(prefix+"asset", g.Asset); err != nil {
		return err
	}
	if err := checkPartition(prefix+"partition", g.Partition, false); err != nil {
		return err
	}
	if err := checkID(prefix+"run_id", g.RunID); err != nil {
		return err
	}
	if err := checkGateKind(prefix+"kind", g.Kind); err != nil {
		return err
	}
	if err := checkText(prefix+"message", g.Message); err != nil {
		return err
	}
	if err := checkTime(prefix+"opened_at", g.OpenedAt); err != nil {
		return err
	}
	if len(g.Token) > MaxTokenBytes || !utf8.ValidString(g.Token) {
		return fieldErrorf(prefix+"token", "%stoken is not a token", prefix)
	}
	return checkTime(prefix+"deadline", g.Deadline)
}

func checkGateKind(field, kind string) *Error {
	if kind != GateApproval && kind != GateSignal {
		return fieldErrorf(field, "%s %s is not a kind of gate (approval or signal)", field, quote(kind))
	}
	return nil
}

// GateStatus is an asset's gate in a StatusReply.
type GateStatus struct {
	// Kind is GateApproval or GateSignal.
	Kind string `json:"kind"`
	// Message is an approval gate's question.
	Message string `json:"message,omitempty"`
	// Context is an approval gate's facts for the approver.
	Context map[string]any `json:"context,omitempty"`
	// OpenedAt is when the gate began to wait.
	OpenedAt time.Time `json:"opened_at"`
	// Deadline is when it expires.
	Deadline time.Time `json:"deadline"`
	// Decision is how it was decided ("approved", "rejected",
	// "signalled", "expired"); "" while it waits.
	Decision string `json:"decision,omitempty"`
	// DecidedAt is when it was decided.
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	// Reason is why, as the decision gave it.
	Reason string `json:"reason,omitempty"`
}

func (g *GateStatus) validate(prefix string) *Error {
	if err := checkGateKind(prefix+"kind", g.Kind); err != nil {
		return err
	}
	if err := checkText(prefix+"message", g.Message); err != nil {
		return err
	}
	if err := checkText(prefix+"reason", g.Reason); err != nil {
		return err
	}
	if err := checkTime(prefix+"opened_at", g.OpenedAt); err != nil {
		return err
	}
	if g.DecidedAt != nil {
		if err := checkTime(prefix+"decided_at", *g.DecidedAt); err != nil {
			return err
		}
	}
	return checkTime(prefix+"deadline", g.Deadline)
}
