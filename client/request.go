package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/tracing"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// call sends req to its API subject and decodes the reply: the result, or
// the coordinator's error as an *flowstone.Error, or the transport's
// failure mapped to one.
func call[T protocol.ReplyBody](ctx context.Context, c *Client, req protocol.Request) (T, error) {
	var zero T
	body, perr := protocol.EncodeRequest(req)
	if perr != nil {
		return zero, bridge.FromWire(perr)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	verb := req.Verb()
	ctx, span := tracing.Tracer().Start(ctx, "flowstone.client "+verb, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	m := &nats.Msg{Subject: protocol.APISubject(verb), Data: body, Header: nats.Header{}}
	tracing.Inject(ctx, m.Header)
	rctx, done := c.refused.watch(ctx, m.Subject)
	msg, err := c.nc.RequestMsgWithContext(rctx, m)
	done()
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		if rerr := refused(rctx, "the "+verb+" request"); rerr != nil {
			return zero, rerr
		}
		return zero, c.requestError(ctx, verb, err)
	}
	out, perr := protocol.DecodeReply[T](msg.Data)
	if perr != nil {
		if sentByPeer(msg.Data, perr) {
			return zero, bridge.FromWire(perr)
		}
		return zero, c.badReply(verb, msg, perr)
	}
	return out, nil
}

// withTimeout bounds ctx by the client's timeout if it has no deadline.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.timeout)
}

// sentByPeer reports whether perr is the error a well-formed reply
// carries, as opposed to DecodeReply's verdict on a malformed one.
func sentByPeer(data []byte, perr *protocol.Error) bool {
	var env struct {
		V     int             `json:"v"`
		Error *protocol.Error `json:"error"`
	}
	if json.Unmarshal(data, &env) != nil || env.V != protocol.Version || env.Error == nil {
		return false
	}
	return env.Error.Code == perr.Code && env.Error.Message == perr.Message
}

// badReply reports a reply the client cannot accept: a coordinator of
// another protocol version, or something that is no coordinator at all.
func (c *Client) badReply(verb string, msg *nats.Msg, perr *protocol.Error) error {
	details := map[string]any{"verb": verb, "server": c.url(), "reply_error": perr.Message}
	if desc := msg.Header.Get(micro.ErrorHeader); desc != "" {
		// A micro service error (a handler that failed outside the protocol).
		details["service_error"] = desc
		details["service_error_code"] = msg.Header.Get(micro.ErrorCodeHeader)
		return bridge.FromWire(&protocol.Error{Code: protocol.CodeInternal, Details: details,
			Message: "the coordinator failed to answer " + verb + ": " + desc})
	}
	if perr.Code == protocol.CodeUnsupportedVersion {
		return bridge.FromWire(&protocol.Error{Code: perr.Code, Details: details,
			Message: "the coordinator answered " + verb + " in another protocol version (" + perr.Message + "): run a client and a fleet of the same FlowStone release"})
	}
	return bridge.FromWire(&protocol.Error{Code: protocol.CodeInternal, Details: details,
		Message: "the reply to " + verb + " from " + c.url() + " is not a FlowStone reply (" + perr.Message +
			"): is something else answering on " + protocol.APISubject(verb) + ", or a coordinator of another release?"})
}

// requestError maps a failed request to an *flowstone.Error.
func (c *Client) requestError(ctx context.Context, verb string, err error) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &flowstone.Error{Type: flowstone.TypeUnavailable,
			Message: "no coordinator is answering on " + c.url() + ": start one (fsctl dev, cmd/coordinator) or check --server",
			Details: map[string]any{"server": c.url(), "verb": verb}}
	case errors.Is(err, nats.ErrMaxPayload):
		return &flowstone.Error{Type: flowstone.TypeBadRequest,
			Message: "the " + verb + " request is larger than the NATS server accepts (max_payload " + sizeString(c.nc.MaxPayload()) + "): send fewer partitions per request",
			Details: map[string]any{"code": protocol.CodePayloadTooLarge, "limit": c.nc.MaxPayload()}}
	}
	return c.transportError(ctx, verb, err)
}

// transportError maps a NATS or JetStream failure during op.
func (c *Client) transportError(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return &causedError{fe: &flowstone.Error{Type: flowstone.TypeTimeout,
			Message: "no answer to " + op + " from the fleet at " + c.url() + " in time" + deadlineNote(ctx) +
				": the coordinator may be overloaded or stopping; retry, or allow more time (--timeout)",
			Details: map[string]any{"server": c.url(), "op": op}}, cause: context.DeadlineExceeded}
	case errors.Is(err, context.Canceled):
		return &causedError{fe: &flowstone.Error{Type: flowstone.TypeCancelled,
			Message: op + " was cancelled before the fleet answered", Details: map[string]any{"op": op}}, cause: context.Canceled}
	}
	return &flowstone.Error{Type: flowstone.TypeUnavailable,
		Message: "cannot reach the fleet at " + c.url() + " for " + op + ": " + err.Error() + ": check that NATS and a coordinator are running (fsctl dev) and --server",
		Details: map[string]any{"server": c.url(), "op": op, "cause": err.Error()}}
}

func deadlineNote(ctx context.Context) string {
	if d, ok := ctx.Deadline(); ok {
		return " (deadline " + d.Format(time.RFC3339) + ")"
	}
	return ""
}

// causedError is an *flowstone.Error that also matches the Go error that
// caused it (context.DeadlineExceeded, context.Canceled) under errors.Is.
type causedError struct {
	fe    *flowstone.Error
	cause error
}

func (e *causedError) Error() string   { return e.fe.Error() }
func (e *causedError) Unwrap() []error { return []error{e.fe, e.cause} }

// url is the server the client talks to, without credentials.
func (c *Client) url() string {
	if u := c.nc.ConnectedUrlRedacted(); u != "" {
		return u
	}
	return redact(c.nc.Opts.Url)
}

// redact hides credentials in a (comma-separated list of) NATS URL(s).
func redact(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			if strings.Contains(p, "@") {
				parts[i] = "(unparsable url)"
			}
			continue
		}
		if u.User != nil {
			u.User = url.User("redacted")
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

func sizeString(n int64) string { return strconv.FormatInt(n, 10) + " bytes" }

// checkPartition refuses the empty key as the library does; on the wire ""
// would silently mean the default partition.
func checkPartition(key string) error {
	if key == "" {
		return &flowstone.Error{Type: flowstone.TypeBadRequest, Message: "empty partition key: omit Partition for the default partition, or give a key"}
	}
	return nil
}
