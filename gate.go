package flowstone

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Gates hold an asset back before it runs, until a person approves it
// (Approval) or a signal comes from outside (WaitForSignal). See the
// package documentation, "Gates".

// DefaultGateTimeout is how long a gate waits when its config sets no
// Timeout.
const DefaultGateTimeout = 24 * time.Hour

// MaxSignalPayload is the largest signal payload, in bytes, that Signal
// accepts.
const MaxSignalPayload = 64 << 10

// MaxReasonLen is the longest Reason, in bytes.
const MaxReasonLen = 4096

// ApprovalConfig declares an approval gate; see Approval.
type ApprovalConfig struct {
	// Message is the question for the approver ("Publish release
	// 2025-01?"); Approvals lists it.
	Message string
	// Context holds facts for the approver (a ticket, a count), listed
	// with the message. It must encode as JSON.
	Context map[string]any
	// Timeout is how long the gate waits for a decision; past it the
	// asset fails with a Timeout error. Defaults to DefaultGateTimeout.
	Timeout time.Duration
}

// Approval makes the asset wait for an approval each time it is about to
// run: once its dependencies are materialized, its record says
// StateWaitingApproval and nothing executes (no worker slot is held)
// until Approve lets it run, Reject or the gate's Timeout fails it, or
// the run ends. An approved asset runs as usual, its function called
// after the approval with its dependencies' values; the approval is
// of that execution, not of a value computed before it. A materialized
// asset that a run reuses asks for nothing.
func Approval(cfg ApprovalConfig) AssetOption {
	return assetOptionFunc(func(a *AssetDef) {
		a.gate = a.gate.then(&gateSpec{kind: GateApproval, message: cfg.Message, context: cfg.Context, timeout: cfg.Timeout})
	})
}

// SignalConfig declares a signal gate; see WaitForSignal.
type SignalConfig struct {
	// Timeout is how long the gate waits for its signal. Defaults to
	// DefaultGateTimeout.
	Timeout time.Duration
	// OnSignal makes the asset's value from the signal's payload (JSON,
	// nil when the signal carried none). Without it the payload itself is
	// the value.
	OnSignal func(c *Context, payload []byte) (any, error)
	// OnTimeout makes the value when the gate expires without a signal.
	// Without it the asset fails with a Timeout error.
	OnTimeout AssetFunc
}

// WaitForSignal makes the asset wait, each time it is about to run, for a
// signal from outside: once its dependencies are materialized its record
// says StateWaitingSignal, and the engine issues a token for the gate
// (WaitingGate.Token, listed by Approvals) that names the run, the asset
// and the partition and is signed with the engine's signal secret
// (EngineConfig.SignalSecret; a run of such an asset is refused without
// one). Signal with that token delivers a payload, and the asset's
// OnSignal makes its value from it; OnTimeout runs if the gate expires
// first. Nothing executes, and no worker slot is held, while it waits.
//
// The asset's value comes from the handlers: pass nil as its function.
func WaitForSignal(cfg SignalConfig) AssetOption {
	return assetOptionFunc(func(a *AssetDef) {
		a.gate = a.gate.then(&gateSpec{kind: GateSignal, timeout: cfg.Timeout, onSignal: cfg.OnSignal, onTimeout: cfg.OnTimeout,
			hasOnTimeout: cfg.OnTimeout != nil})
	})
}

// gateSpec is an asset's gate as declared.
type gateSpec struct {
	kind    GateKind
	message string
	context map[string]any
	timeout time.Duration
	// A signal gate's handlers (nil on a coordinator, which has no code).
	onSignal  func(c *Context, payload []byte) (any, error)
	onTimeout AssetFunc
	// hasOnTimeout: the declaration has an OnTimeout (a coordinator
	// knows it from the manifest).
	hasOnTimeout bool
	// twice: the asset declares more than one gate.
	twice bool
}

// then is the gate of an asset that already declared g and now declares
// next: next, marked if there was one before.
func (g *gateSpec) then(next *gateSpec) *gateSpec {
	next.twice = g != nil
	return next
}

// wait is how long the gate waits.
func (g *gateSpec) wait() time.Duration { return cmp.Or(g.timeout, DefaultGateTimeout) }

// check reports a gate declared wrong, as NewPipeline's ConfigError.
func (g *gateSpec) check(pipeline string, a AssetDef) error {
	d := map[string]any{"pipeline": pipeline, "asset": a.name}
	switch {
	case g.twice:
		return newError(TypeConfigError, d, "asset %q declares more than one gate (Approval, WaitForSignal): keep one", a.name)
	case g.timeout < 0:
		return newError(TypeConfigError, d, "the gate of asset %q has a negative Timeout (%v): leave it 0 for DefaultGateTimeout", a.name, g.timeout)
	case !utf8.ValidString(g.message):
		return newError(TypeConfigError, d, "the approval message of asset %q is not valid UTF-8", a.name)
	case a.scatter != nil:
		return newError(TypeConfigError, d, "asset %q is a scatter asset with a gate: put the gate on an asset upstream of it", a.name)
	case g.kind == GateSignal && a.fn != nil:
		return newError(TypeConfigError, d,
			"asset %q waits for a signal: its value comes from SignalConfig.OnSignal (or is the payload itself), so pass nil as its function", a.name)
	}
	if len(g.context) > 0 {
		if _, err := json.Marshal(g.context); err != nil {
			return wrapError(TypeConfigError, err, d, "the approval context of asset %q does not encode as JSON: %v", a.name, err)
		}
	}
	return nil
}

// GateKind says what a gate waits for.
type GateKind string

// The kinds of gates.
const (
	GateApproval GateKind = "approval" // Approval: a person's decision
	GateSignal   GateKind = "signal"   // WaitForSignal: a signal from outside
)

// GateDecision says how a gate was decided.
type GateDecision string

// The decisions of a gate.
const (
	GateApproved  GateDecision = "approved"  // Approve: the asset runs
	GateRejected  GateDecision = "rejected"  // Reject: the asset failed
	GateSignalled GateDecision = "signalled" // Signal: OnSignal makes the value
	GateExpired   GateDecision = "expired"   // the Timeout passed: OnTimeout, or a Timeout error
)

// Gate is an asset's gate as its record keeps it (Materialization.Gate,
// StatusInfo.Gate).
type Gate struct {
	// Kind is what the gate waits for.
	Kind GateKind `json:"kind"`
	// Message is an approval gate's question, as declared.
	Message string `json:"message,omitempty"`
	// Context is an approval gate's facts for the approver, as declared.
	Context map[string]any `json:"context,omitempty"`
	// OpenedAt is when the gate began to wait.
	OpenedAt time.Time `json:"opened_at"`
	// Deadline is when it expires.
	Deadline time.Time `json:"deadline"`
	// Decision is how the gate was decided ("" while it waits).
	Decision GateDecision `json:"decision,omitempty"`
	// DecidedAt is when it was decided (nil while it waits).
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	// Reason is why, as given to Approve or Reject.
	Reason string `json:"reason,omitempty"`
	// Payload is the signal's payload, kept until the asset has run on
	// it.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// clone copies g (its maps are never changed, so they are shared).
func (g *Gate) clone() *Gate {
	if g == nil {
		return nil
	}
	c := *g
	return &c
}

// WaitingGate is a gate that waits, as Approvals lists it.
type WaitingGate struct {
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset is the gated asset.
	Asset string `json:"asset"`
	// Partition is the partition that waits.
	Partition string `json:"partition"`
	// RunID is the run that waits there.
	RunID string `json:"run_id"`
	// Kind is what the gate waits for.
	Kind GateKind `json:"kind"`
	// Message is an approval gate's question, as declared.
	Message string `json:"message,omitempty"`
	// Context is an approval gate's facts for the approver.
	Context map[string]any `json:"context,omitempty"`
	// OpenedAt is when the gate began to wait.
	OpenedAt time.Time `json:"opened_at"`
	// Deadline is when it expires.
	Deadline time.Time `json:"deadline"`
	// Token is a signal gate's token, what Signal takes: it names the
	// run, the asset and the partition, signed with the signal secret.
	// Hand it to whatever sends the signal.
	Token string `json:"token,omitempty"`
}

// ApproveOption configures Approve and Reject: Partition, Reason.
type ApproveOption interface{ applyApprove(*approveConfig) }

type approveConfig struct {
	partition string
	reason    string
}

func newApproveConfig(opts []ApproveOption) approveConfig {
	c := approveConfig{partition: DefaultPartition}
	for _, o := range opts {
		o.applyApprove(&c)
	}
	return c
}

func (o partitionOption) applyApprove(c *approveConfig) { c.partition = string(o) }

type reasonOption string

func (o reasonOption) applyApprove(c *approveConfig) { c.reason = string(o) }

// Reason says why a gate is approved or rejected, at most MaxReasonLen
// bytes of UTF-8: the record keeps it, and a rejection's error carries it.
func Reason(text string) ApproveOption { return reasonOption(text) }

// gateNode looks up asset and checks that it has a gate of kind (any kind
// when kind is ""), and checks the options' partition and reason.
func (e *Engine) gateNode(p *Pipeline, asset string, kind GateKind, cfg approveConfig) (*node, error) {
	n, err := p.lookup(asset)
	if err != nil {
		return nil, err
	}
	if g := n.def.gate; g == nil || kind != "" && g.kind != kind {
		what := "a gate (Approval, WaitForSignal)"
		if kind == GateApproval {
			what = "an approval gate (Approval)"
		}
		return nil, newError(TypeBadRequest, map[string]any{"pipeline": p.name, "asset": asset},
			"asset %q has no %s: nothing of it waits for a decision", asset, what)
	}
	if err := e.checkPartitionFor(p, n, cfg.partition); err != nil {
		return nil, err
	}
	if len(cfg.reason) > MaxReasonLen || !utf8.ValidString(cfg.reason) {
		return nil, newError(TypeBadRequest, map[string]any{"field": "reason", "length": len(cfg.reason), "limit": MaxReasonLen},
			"the reason is not valid: give at most %d bytes of UTF-8", MaxReasonLen)
	}
	return n, nil
}

// nothingWaits is the NotFound error of a decision that finds no gate
// waiting: why is the record's state (nil: none).
func nothingWaits(p *Pipeline, asset, partition, verb string, rec *Materialization) *Error {
	state := StateNotFound
	if rec != nil {
		state = rec.State
	}
	d := map[string]any{"pipeline": p.name, "asset": asset, "partition": partition, "state": state}
	msg := "it is " + string(state)
	if rec != nil && rec.State.Waiting() && rec.Gate != nil {
		d["deadline"] = rec.Gate.Deadline
		msg = "its gate expired at " + rec.Gate.Deadline.UTC().Format(time.RFC3339)
		if rec.State == StateWaitingSignal && verb == "approve" {
			msg = "it waits for a signal, not an approval (deliver it with Signal, or Reject it)"
		}
	}
	return newError(TypeNotFound, d, "cannot %s %q (partition %q): nothing waits for a decision there; %s", verb, asset, partition, msg)
}

// Approve lets the approval gate of asset (Approval) pass for the
// partition (Partition; DefaultPartition without it), with an optional
// Reason: the run that waits there resumes, runs the asset, its function
// called now with its dependencies' values, and then its dependents. It
// returns a NotFound error when no approval waits there (none was asked
// for, it was decided already, or it expired), and a BadRequest error for
// an asset without an approval gate or a bad partition or reason; nothing
// changes then.
func (e *Engine) Approve(ctx context.Context, p *Pipeline, asset string, opts ...ApproveOption) error {
	cfg := newApproveConfig(opts)
	n, err := e.gateNode(p, asset, GateApproval, cfg)
	if err != nil {
		return err
	}
	key := materializationKey(p.name, asset, cfg.partition)
	rec, ok, err := e.x.records.decideGate(ctx, key, GateApproved, cfg.reason, nil)
	if err != nil {
		return err
	}
	e.wakeGate(key)
	if !ok {
		return nothingWaits(p, n.def.name, cfg.partition, "approve", rec)
	}
	return nil
}

// Reject ends the gate of asset that waits for the partition, an approval
// or a signal, with an optional Reason: the asset fails with a Rejected
// error that carries the reason, and the dependents of the run that
// waited fail with a DependencyFailed error naming it. The asset's last
// good value stays. Errors as Approve's.
func (e *Engine) Reject(ctx context.Context, p *Pipeline, asset string, opts ...ApproveOption) error {
	cfg := newApproveConfig(opts)
	n, err := e.gateNode(p, asset, "", cfg)
	if err != nil {
		return err
	}
	key := materializationKey(p.name, asset, cfg.partition)
	rec, ok, err := e.x.records.decideGate(ctx, key, GateRejected, cfg.reason, func(cur *Materialization) *Error {
		return rejectedError(p.name, cur, cfg.reason)
	})
	if err != nil {
		return err
	}
	e.wakeGate(key)
	if !ok {
		return nothingWaits(p, n.def.name, cfg.partition, "reject", rec)
	}
	return nil
}

// rejectedError is the error a rejected gate leaves in its record.
func rejectedError(pipeline string, cur *Materialization, reason string) *Error {
	d := map[string]any{"pipeline": pipeline, "asset": cur.Asset, "partition": cur.Partition, "run_id": cur.RunID, "gate": string(cur.Gate.Kind)}
	msg := "the " + string(cur.Gate.Kind) + " gate of asset \"" + cur.Asset + "\" (partition \"" + cur.Partition + "\") was rejected"
	if reason != "" {
		d["reason"] = reason
		msg += ": " + reason
	}
	return newError(TypeRejected, d, "%s", msg)
}

// Approvals lists the gates of p's assets that wait, approvals and
// signals, oldest first. A signal gate's entry carries its Token when the
// engine has a signal secret.
func (e *Engine) Approvals(ctx context.Context, p *Pipeline) ([]WaitingGate, error) {
	out := []WaitingGate{}
	for _, n := range p.nodes {
		if n.def.gate == nil {
			continue
		}
		prefix := recordPrefix(p.name, n.def.name)
		keys, err := e.kv.Keys(ctx, prefix)
		if err != nil {
			return nil, wrapError(TypeStorageError, err, map[string]any{"asset": n.def.name, "prefix": prefix},
				"list the records of %q: %v", n.def.name, err)
		}
		for _, key := range keys {
			if tok := strings.TrimPrefix(key, prefix); tok == "" || strings.Contains(tok, ".") {
				continue // not a record of this asset
			}
			rec, _, err := e.x.records.Read(ctx, key)
			if err != nil {
				return nil, err
			}
			if rec == nil || !rec.State.Waiting() || rec.Gate == nil {
				continue
			}
			g := rec.Gate
			w := WaitingGate{Pipeline: p.name, Asset: rec.Asset, Partition: rec.Partition, RunID: rec.RunID, Kind: g.Kind,
				Message: g.Message, Context: g.Context, OpenedAt: g.OpenedAt, Deadline: g.Deadline}
			if g.Kind == GateSignal && e.secret != nil {
				w.Token = signalToken(e.secret, tokenClaim{Pipeline: p.name, Asset: rec.Asset, Partition: rec.Partition, RunID: rec.RunID,
					Opened: g.OpenedAt.UnixNano()})
			}
			out = append(out, w)
		}
	}
	slices.SortStableFunc(out, func(a, b WaitingGate) int { return a.OpenedAt.Compare(b.OpenedAt) })
	return out, nil
}

// Signal delivers a signal to the gate that token names (a
// WaitingGate.Token of a WaitForSignal asset), with payload, JSON of at
// most MaxSignalPayload bytes or nil: the run that waits there resumes
// and the asset's OnSignal makes its value from the payload. A token
// that the engine's signal secret did not sign, or that is malformed, is
// a BadRequest error; a gate that no longer waits (signalled already,
// rejected, expired, or its run ended) a NotFound error: a signal is
// delivered once. Nothing changes on an error. An engine without a
// signal secret refuses every signal with a ConfigError.
func (e *Engine) Signal(ctx context.Context, token string, payload []byte) error {
	_, _, err := e.signal(ctx, token, payload)
	return err
}

// signal is Signal; it also returns what the token names and the key of
// its record, once the token is verified.
func (e *Engine) signal(ctx context.Context, token string, payload []byte) (tokenClaim, string, error) {
	if e.secret == nil {
		return tokenClaim{}, "", noSecret("")
	}
	c, err := parseToken(e.secret, token)
	if err != nil {
		return tokenClaim{}, "", err
	}
	if len(payload) > MaxSignalPayload {
		return tokenClaim{}, "", newError(TypeBadRequest, map[string]any{"field": "payload", "size": len(payload), "limit": MaxSignalPayload},
			"the signal's payload is %d bytes; the limit is %d", len(payload), MaxSignalPayload)
	}
	if len(payload) > 0 && !json.Valid(payload) {
		return tokenClaim{}, "", newError(TypeBadRequest, map[string]any{"field": "payload"}, "the signal's payload is not JSON")
	}
	key := materializationKey(c.Pipeline, c.Asset, c.Partition)
	rec, ok, err := e.x.records.signalGate(ctx, key, c, payload)
	if err != nil {
		return c, key, err
	}
	e.wakeGate(key)
	if !ok {
		state := StateNotFound
		if rec != nil {
			state = rec.State
		}
		return c, key, newError(TypeNotFound, map[string]any{"pipeline": c.Pipeline, "asset": c.Asset, "partition": c.Partition, "run_id": c.RunID, "state": state},
			"no gate waits for this signal (asset %q, partition %q, run %s): it was signalled already, rejected or expired, or its run ended",
			c.Asset, c.Partition, c.RunID)
	}
	return c, key, nil
}

// noSecret is the ConfigError of a signal gate on an engine without a
// signal secret (asset "" for Signal itself).
func noSecret(asset string) *Error {
	what := "an asset with WaitForSignal needs"
	d := map[string]any{"missing": "signal_secret"}
	if asset != "" {
		what = "asset \"" + asset + "\" waits for a signal: it needs"
		d["asset"] = asset
	}
	return newError(TypeConfigError, d,
		"%s a signal secret to sign its tokens, and this engine has none: set EngineConfig.SignalSecret (at least %d random bytes); on the fleet, start the coordinators with --signal-secret-file or FLOWSTONE_SIGNAL_SECRET",
		what, minSecretLen)
}

// checkGates refuses a run of target, before anything runs, that would
// reach a signal gate without a signal secret to sign its token.
func (e *Engine) checkGates(target *node, withDeps bool) error {
	if e.secret != nil {
		return nil
	}
	if g := target.def.gate; g != nil && g.kind == GateSignal {
		return noSecret(target.def.name)
	}
	if withDeps && target.signalUp != nil {
		return noSecret(target.signalUp.def.name)
	}
	return nil
}

// Approve lets asset's approval gate pass on the Default engine; see
// Engine.Approve.
func Approve(ctx context.Context, p *Pipeline, asset string, opts ...ApproveOption) error {
	return Default().Approve(ctx, p, asset, opts...)
}

// Reject ends asset's waiting gate on the Default engine; see
// Engine.Reject.
func Reject(ctx context.Context, p *Pipeline, asset string, opts ...ApproveOption) error {
	return Default().Reject(ctx, p, asset, opts...)
}

// Approvals lists the gates of p that wait on the Default engine; see
// Engine.Approvals. (The Default engine has no signal secret, so it runs
// no signal gate: Signal is an Engine's method only.)
func Approvals(ctx context.Context, p *Pipeline) ([]WaitingGate, error) {
	return Default().Approvals(ctx, p)
}

// Approve is flowstone.Approve(ctx, p, asset, opts...).
func (p *Pipeline) Approve(ctx context.Context, asset string, opts ...ApproveOption) error {
	return Approve(ctx, p, asset, opts...)
}

// Reject is flowstone.Reject(ctx, p, asset, opts...).
func (p *Pipeline) Reject(ctx context.Context, asset string, opts ...ApproveOption) error {
	return Reject(ctx, p, asset, opts...)
}

// Approvals is flowstone.Approvals(ctx, p).
func (p *Pipeline) Approvals(ctx context.Context) ([]WaitingGate, error) { return Approvals(ctx, p) }
