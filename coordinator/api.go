package coordinator

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/tracing"
	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// requestTimeout bounds the quick verbs (everything but run and backfill).
const requestTimeout = 30 * time.Second

// cancelBroadcast reaches every coordinator, so a cancel finds the run
// whichever coordinator drives it.
const cancelBroadcast = "flowstone.ctl.cancel"

// serve registers the API endpoints as a nats micro service.
func (c *Coordinator) serve() error {
	svc, err := micro.AddService(c.nc, micro.Config{
		Name: protocol.ServiceName, Version: protocol.ServiceVersion, QueueGroup: protocol.QueueGroup,
		Description: "FlowStone coordinator: run, get, status, cancel and the rest of the API",
		Metadata:    map[string]string{"coordinator": c.cfg.ID},
		// nats micro stats shows each endpoint's error replies by code.
		StatsHandler: func(ep *micro.Endpoint) any { return c.obs.errorsOf(ep.Name) },
	})
	if err != nil {
		return fmt.Errorf("coordinator: micro service: %w", err)
	}
	c.svc = svc
	g := svc.AddGroup(protocol.APIPrefix)
	endpoints := map[string]micro.Handler{
		protocol.VerbRun:        handle(c, requestTimeout, c.apiRun),
		protocol.VerbGet:        handle(c, requestTimeout, c.apiGet),
		protocol.VerbExists:     handle(c, requestTimeout, c.apiExists),
		protocol.VerbStatus:     handle(c, requestTimeout, c.apiStatus),
		protocol.VerbCancel:     handle(c, requestTimeout, c.apiCancel),
		protocol.VerbInvalidate: handle(c, requestTimeout, c.apiInvalidate),
		protocol.VerbBackfill:   handle(c, 0, c.apiBackfill),
		protocol.VerbGraph:      handle(c, requestTimeout, c.apiGraph),
		protocol.VerbAssets:     handle(c, requestTimeout, c.apiAssets),
		protocol.VerbInfo:       handle(c, requestTimeout, c.apiInfo),
		protocol.VerbPipelines:  handle(c, requestTimeout, c.apiPipelines),

		protocol.VerbBackfillStatus: handle(c, requestTimeout, c.apiBackfillStatus),
		protocol.VerbApprove:        handle(c, requestTimeout, c.apiApprove),
		protocol.VerbReject:         handle(c, requestTimeout, c.apiReject),
		protocol.VerbApprovals:      handle(c, requestTimeout, c.apiApprovals),
		protocol.VerbSignal:         handle(c, requestTimeout, c.apiSignal),

		protocol.VerbSchedules: handle(c, requestTimeout, c.apiSchedules),
		protocol.VerbSensors:   handle(c, requestTimeout, c.apiSensors),
		protocol.VerbPause:     handle(c, requestTimeout, c.apiPause),
		protocol.VerbResume:    handle(c, requestTimeout, c.apiResume),
	}
	for _, verb := range protocol.Verbs() {
		h, ok := endpoints[verb]
		if !ok {
			return fmt.Errorf("coordinator: no handler for verb %q", verb)
		}
		if err := g.AddEndpoint(verb, h, micro.WithEndpointPendingLimits(-1, -1)); err != nil {
			return fmt.Errorf("coordinator: endpoint %s: %w", verb, err)
		}
	}
	return nil
}

// handle adapts a typed handler: it decodes and validates the request
// (answering bad input with a structured error), runs fn off the
// subscription's goroutine, and never lets a panic go unanswered. A
// request that arrives once Stop has begun is answered unavailable, for
// the client to retry on another coordinator.
func handle[Req protocol.Request, Rep protocol.ReplyBody](c *Coordinator, timeout time.Duration, fn func(context.Context, Req) (Rep, *protocol.Error)) micro.Handler {
	return micro.HandlerFunc(func(r micro.Request) {
		arrived := time.Now()
		verb := verbOf(r.Subject())
		// Decoding is quick and bounded (MaxRequestBytes): it happens here,
		// so that nats micro counts a malformed request among the
		// endpoint's errors (it counts replies its handler made before
		// returning). The verb itself runs off the subscription's
		// goroutine; its errors are in the endpoint's stats data.
		req, perr := protocol.DecodeRequest[Req](r.Data())
		if perr != nil {
			c.reply(r, verb, arrived, protocol.EncodeError(perr), perr, true)
			return
		}
		ok := c.work.Go(func() {
			// The request's trace goes on here: the client's span is the
			// parent.
			sctx, span := tracing.Tracer().Start(tracing.Extract(c.ctx, nats.Header(r.Headers())), "flowstone.api "+verb,
				trace.WithSpanKind(trace.SpanKindServer))
			defer span.End()
			defer func() {
				if p := recover(); p != nil {
					c.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Msg("handler_panic")
					perr := protocol.Errorf(protocol.CodeInternal, "the coordinator failed on this request: %v", p)
					c.reply(r, verb, arrived, protocol.EncodeError(perr), perr, false)
				}
			}()
			ctx, cancel := sctx, context.CancelFunc(func() {})
			if timeout > 0 {
				ctx, cancel = context.WithTimeout(sctx, timeout)
			}
			defer cancel()
			rep, perr := fn(ctx, req)
			if perr != nil {
				span.SetStatus(codes.Error, perr.Code)
			}
			c.reply(r, verb, arrived, protocol.EncodeReply(rep, perr), perr, false)
		})
		if !ok {
			c.reply(r, verb, arrived, protocol.EncodeError(errStopping), errStopping, true)
		}
	})
}

// reply sends body and counts it. From the micro handler's own goroutine
// (inline) an error reply goes through micro, which counts it in the
// endpoint's num_errors; from a verb's goroutine the reply is published
// directly (micro's request is not safe to answer once its handler has
// returned), with micro's error headers, and counted in the endpoint's
// stats data. The body, the document clients read, is the same either
// way.
func (c *Coordinator) reply(r micro.Request, verb string, arrived time.Time, body []byte, perr *protocol.Error, inline bool) {
	var err error
	code := ""
	switch {
	case perr != nil && inline:
		code = perr.Code
		err = r.Error(perr.Code, headerText(perr.Message), body)
	case inline:
		err = r.Respond(body)
	default:
		m := &nats.Msg{Subject: r.Reply(), Data: body}
		if perr != nil {
			code = perr.Code
			m.Header = nats.Header{micro.ErrorHeader: []string{headerText(perr.Message)}, micro.ErrorCodeHeader: []string{perr.Code}}
		}
		err = c.nc.PublishMsg(m)
	}
	if err != nil {
		c.log.Warn().Err(err).Str("verb", verb).Msg("reply_failed")
	}
	c.obs.answered(verb, code, arrived)
}

// headerText is msg fit for a header value: one line, at most 256 bytes
// (the reply's body holds the whole error).
func headerText(msg string) string {
	msg = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > 256 {
		msg = strings.ToValidUTF8(msg[:256], "")
	}
	if msg == "" {
		msg = "error"
	}
	return msg
}

// verbOf is the verb of an API subject, its last token.
func verbOf(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}

// errStopping answers the requests and refuses the work that reach a
// coordinator once its Stop has begun.
var errStopping = &protocol.Error{Code: protocol.CodeUnavailable,
	Message: "this coordinator is stopping; send the request again (another coordinator, or this one restarted, takes it)"}

// storeBudget bounds how long a quick verb (run, get, exists, status)
// waits out the metadata or result store before it answers unavailable:
// well within a client's timeout (client.TimeoutDefault is 10 s), so that a
// cluster without quorum or a restarting nats-server is reported as such
// instead of as the client's own timeout.
const storeBudget = 4 * time.Second

// withStoreBudget bounds ctx by storeBudget.
func withStoreBudget(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, storeBudget)
}

// wireStore converts an error for the wire like wire, and reports a store
// that did not answer within the verb's budget, or kept failing with
// transient errors, as unavailable.
func wireStore(err error) *protocol.Error {
	pe := wire(err)
	if pe != nil && pe.Code == protocol.CodeStorageError && (errors.Is(err, context.DeadlineExceeded) || transient.Is(err)) {
		return &protocol.Error{Code: protocol.CodeUnavailable, Details: pe.Details,
			Message: "the fleet's store did not answer in " + storeBudget.String() + " (NATS restarting, or a JetStream cluster without quorum): try again; " + pe.Message}
	}
	return pe
}

func (c *Coordinator) pipeline(name string) (*flowstone.Pipeline, *protocol.Error) {
	return c.reg.get(name)
}

func (c *Coordinator) apiRun(ctx context.Context, req protocol.RunRequest) (protocol.RunReply, *protocol.Error) {
	part := cmp.Or(req.Partition, flowstone.DefaultPartition)
	reply := protocol.RunReply{Asset: req.Asset, Partition: part}
	p, perr := c.pipeline(req.Pipeline)
	if perr != nil {
		return reply, perr
	}
	if err := c.engine.Validate(p, req.Asset, runOptions("x", req)...); err != nil {
		return reply, wire(err)
	}
	ctx, cancel := withStoreBudget(ctx)
	defer cancel()
	if !req.Force && !req.Async {
		// A materialized target needs no run: answer at once.
		st, err := c.engine.Status(ctx, p, req.Asset, flowstone.Partition(part))
		if err != nil {
			return reply, wireStore(err)
		}
		if st.Value != nil {
			reply.RunID, reply.Cached = st.Value.RunID, true
			return reply, nil
		}
	}
	rec, perr := c.accept(ctx, req)
	if perr != nil {
		return reply, perr
	}
	reply.RunID = rec.RunID
	reply.LimitMS = runLimitMS(p, req)
	if req.Async {
		reply.Job = &protocol.Job{ID: rec.RunID, Pipeline: req.Pipeline, Asset: req.Asset, Partition: part,
			Priority: req.Priority, ScheduledAt: req.ScheduledAt, State: rec.State}
	}
	if rec.State == protocol.StateScheduled {
		if perr := c.schedule(ctx, rec); perr != nil {
			return reply, perr
		}
		return reply, nil
	}
	c.drive(p, rec)
	return reply, nil
}

func (c *Coordinator) apiGet(ctx context.Context, req protocol.GetRequest) (protocol.GetReply, *protocol.Error) {
	var reply protocol.GetReply
	p, perr := c.pipeline(req.Pipeline)
	if perr != nil {
		return reply, perr
	}
	opts := []flowstone.GetOption{flowstone.Partition(cmp.Or(req.Partition, flowstone.DefaultPartition))}
	if req.Storage != "" {
		opts = append(opts, flowstone.Storage(req.Storage))
	}
	qctx, cancel := withStoreBudget(ctx)
	defer cancel()
	res, err := c.engine.Get(qctx, p, req.Asset, opts...)
	if err != nil {
		return reply, wireStore(err)
	}
	rec := res.Record
	reply = protocol.GetReply{Asset: res.Asset, Partition: res.Partition, RunID: res.RunID, ResultRef: protocol.ResultRef{
		ObjectKey: rec.Value.ObjectKey, Storage: rec.Value.Storage, Size: rec.Value.Size, SHA256: rec.Value.SHA256, Encoding: protocol.Encoding(rec.Value.Encoding)}}
	for _, l := range rec.Value.Upstream {
		if protocol.ValidID(l.RunID) != nil {
			continue // a record of an older release, without the run
		}
		reply.Upstream = append(reply.Upstream, protocol.Lineage{Asset: l.Asset, Partition: l.Partition, RunID: l.RunID})
	}
	if rec.Value.Size <= protocol.InlineValueLimit {
		b, err := res.Bytes(qctx)
		if err != nil {
			return reply, wireStore(err)
		}
		if rec.Value.Encoding == flowstone.EncodingRaw {
			b, _ = json.Marshal(b) // base64 in a JSON string
		}
		reply.Value = b
		return reply, nil
	}
	if req.Stage {
		// The copy may take longer than a quick request: give it the
		// time protocol.StagingAllowance says the client waits.
		sctx, cancel := context.WithTimeout(c.ctx, requestTimeout+protocol.StagingAllowance(rec.Value.Size))
		defer cancel()
		out, perr := c.stager.stage(sctx, req.Pipeline, res)
		if perr != nil {
			return reply, perr
		}
		reply.Staged = out.name
	}
	return reply, nil
}

func (c *Coordinator) apiExists(ctx context.Context, req protocol.ExistsRequest) (protocol.ExistsReply, *protocol.Error) {
	p, perr := c.pipeline(req.Pipeline)
	if perr != nil {
		return protocol.ExistsReply{}, perr
	}
	ctx, cancel := withStoreBudget(ctx)
	defer cancel()
	ok, err := c.engine.Exists(ctx, p, req.Asset, flowstone.Partition(cmp.Or(req.Partition, flowstone.DefaultPartition)))
	return protocol.ExistsReply{Exists: ok}, wireStore(err)
}

func (c *Coordinator) apiStatus(ctx context.Context, req protocol.StatusRequest) (protocol.StatusReply, *protocol.Error) {
	p, perr := c.pipeline(req.Pipeline)
	if perr != nil {
		return protocol.StatusReply{}, perr
	}
	ctx, cancel := withStoreBudget(ctx)
	defer cancel()
	st, err := c.engine.Status(ctx, p, req.Asset, flowstone.Partition(cmp.Or(req.Partition, flowstone.DefaultPartition)))
	if err != nil {
		return protocol.StatusReply{}, wireStore(err)
	}
	reply := protocol.StatusReply{State: protocol.State(st.State), Partition: st.Partition, RunID: st.RunID,
		CompletedAt: st.CompletedAt, DurationMS: st.DurationMS, Storage: st.Storage, Error: bridge.WireError(st.Error)}
	if st.Scatter != nil {
		reply.Scatter = &protocol.ScatterStatus{Total: st.Scatter.Total, Completed: st.Scatter.Completed, Failed: st.Scatter.Failed, Cancelled: st.Scatter.Cancelled, Pending: st.Scatter.Pending}
		for _, f := range st.Scatter.FailedItems {
			reply.Scatter.FailedItems = append(reply.Scatter.FailedItems, protocol.ScatterFailure{Item: f.Item, Error: bridge.WireError(f.Error)})
		}
	}
	if v := st.Value; v != nil {
		reply.Value = &protocol.ValueStatus{RunID: v.RunID, CompletedAt: v.CompletedAt, Storage: v.Storage, Size: v.Size}
	}
	if s := st.Skip; s != nil {
		reply.Skip = &protocol.SkipStatus{Router: s.Router, Chosen: s.Chosen, Dependency: s.Dependency}
	}
	reply.Route = st.Route
	reply.Gate = gateStatus(st.Gate)
	// A run scheduled for later is the next attempt: unless one is under
	// way, it is where the partition stands.
	next, err := c.nextScheduled(ctx, schedTarget(req.Pipeline, req.Asset, req.Partition))
	if err != nil {
		return protocol.StatusReply{}, wireStore(unreachable(err, "read scheduled runs"))
	}
	if next != nil {
		at := next.At
		reply.ScheduledAt = &at
		if st.State != flowstone.StatePending && st.State != flowstone.StateRunning && !st.State.Waiting() {
			reply.State, reply.RunID = protocol.StateScheduled, next.RunID
			reply.CompletedAt, reply.DurationMS, reply.Error, reply.Scatter, reply.Gate, reply.Skip = nil, 0, nil, nil, nil, nil
		}
	}
	return reply, nil
}

func (c *Coordinator) apiCancel(ctx context.Context, req protocol.CancelRequest) (protocol.CancelReply, *protocol.Error) {
	p, perr := c.pipeline(req.Pipeline)
	if perr != nil {
		return protocol.CancelReply{}, perr
	}
	part := cmp.Or(req.Partition, flowstone.DefaultPartition)
	// The asset and the partition, checked as every verb checks them.
	if err := c.engine.Validate(p, req.Asset, flowstone.Partition(part)); err != nil {
		return protocol.CancelReply{}, wire(err)
	}
	n := c.cancelLocal(ctx, p, req.Asset, part)
	// The run may be driven by another coordinator: ask them all. Those
	// that cancelled something answer with their count.
	n += c.cancelElsewhere(ctx, req)
	if n == 0 {
		return protocol.CancelReply{}, &protocol.Error{Code: protocol.CodeNotFound,
			Message: fmt.Sprintf("nothing of %q (partition %q) is running, pending or scheduled", req.Asset, part),
			Details: map[string]any{"asset": req.Asset, "partition": part}}
	}
	return protocol.CancelReply{Cancelled: n}, nil
}

// cancelLocal cancels this coordinator's runs and schedules of a target.
func (c *Coordinator) cancelLocal(ctx context.Context, p *flowstone.Pipeline, asset, part string) int {
	n := c.cancelScheduled(ctx, bridge.MaterializationKey(p.Name(), asset, part))
	if err := c.engine.Cancel(ctx, p, asset, flowstone.Partition(part)); err == nil {
		n++
	}
	return n
}

// cancelWait is how long a cancel waits for the other coordinators'
// answers.
const cancelWait = 300 * time.Millisecond

// cancelElsewhere asks the other coordinators to cancel the target and
// returns how many runs or schedules they cancelled.
func (c *Coordinator) cancelElsewhere(ctx context.Context, req protocol.CancelRequest) int {
	b, err := json.Marshal(cancelOrder{From: c.cfg.ID, Request: req})
	if err != nil {
		return 0
	}
	inbox := c.nc.NewRespInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return 0
	}
	defer sub.Unsubscribe()
	if err := c.nc.PublishRequest(cancelBroadcast, inbox, b); err != nil {
		return 0
	}
	n := 0
	deadline := time.Now().Add(cancelWait)
	for {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			return n
		}
		var got int
		if json.Unmarshal(m.Data, &got) == nil {
			n += got
		}
	}
}

// cancelOrder is a cancel passed from one coordinator to the others.
type cancelOrder struct {
	From    string                 `json:"from"`
	Request protocol.CancelRequest `json:"request"`
}

func (c *Coordinator) onCancelBroadcast(m *nats.Msg) {
	var o cancelOrder
	if json.Unmarshal(m.Data, &o) != nil || o.From == c.cfg.ID {
		return
	}
	p, perr := c.pipeline(o.Request.Pipeline)
	if perr != nil {
		return
	}
	if n := c.cancelLocal(c.ctx, p, o.Request.Asset, cmp.Or(o.Request.Partition, flowstone.DefaultPartition)); n > 0 && m.Reply != "" {
		b, _ := json.Marshal(n)
		m.Respond(b)
	}
}

func (c *Coordinator) apiInvalidate(ctx context.Context, req protocol.InvalidateRequest) (protocol.InvalidateReply, *protocol.Error) {
	p, perr := c.pipeline(req.Pipeline)
	if perr != nil {
		return protocol.InvalidateReply{}, perr
	}
	// No partition named stays unnamed, so that a partitioned asset's
	// refusal says which options name partitions.
	var opts []flowstone.InvalidateOption
	switch {
	case req.All:
		opts = append(opts, flowstone.AllPartitions())
	case req.Partitions != nil:
		opts = append(opts, flowstone.Partitions(req.Partitions...))
	case req.Partition != "":
		opts = append(opts, flowstone.Partition(req.Partition))
	}
	if req.Cascade {
		opts = append(opts, flowstone.Cascade())
	}
	n, err := c.engine.Invalidate(ctx, p, req.Asset, opts...)
	return protocol.InvalidateReply{Count: n}, wire(err)
}

// apiBackfill accepts a backfill: validated, recorded, then driven by this
// coordinator (or, if it dies, by the one that adopts it). An async
// request is answered at once with the backfill's id; a synchronous one
// (clients that do not follow backfills by id) when the backfill ends.
func (c *Coordinator) apiBackfill(ctx context.Context, req protocol.BackfillRequest) (protocol.BackfillReply, *protocol.Error) {
	p, perr := c.pipeline(req.Pipeline)
	if perr != nil {
		return protocol.BackfillReply{}, perr
	}
	if perr := c.validateBackfill(p, req); perr != nil {
		return protocol.BackfillReply{}, perr
	}
	id, perr := c.acceptBackfill(ctx, p, req)
	if perr != nil {
		return protocol.BackfillReply{}, perr
	}
	if req.Async {
		return protocol.BackfillReply{RunID: id}, nil
	}
	rec, _, ok := c.nextBackfillRecord(ctx, id, 0, true)
	if !ok {
		return protocol.BackfillReply{}, &protocol.Error{Code: protocol.CodeUnavailable, Details: map[string]any{"backfill_id": id},
			Message: "backfill " + id + " goes on, but this coordinator is stopping: follow it with backfill_status (fsctl backfill --follow " + id + ")"}
	}
	return backfillReply(rec), nil
}

// apiBackfillStatus tells where a backfill stands, whichever coordinator
// drives it.
func (c *Coordinator) apiBackfillStatus(ctx context.Context, req protocol.BackfillStatusRequest) (protocol.BackfillStatusReply, *protocol.Error) {
	return c.backfillStatus(ctx, req)
}

func (c *Coordinator) apiGraph(ctx context.Context, req protocol.GraphRequest) (protocol.GraphReply, *protocol.Error) {
	p, perr := c.pipeline(req.Pipeline)
	if perr != nil {
		return protocol.GraphReply{}, perr
	}
	f, err := flowstone.ParseGraphFormat(string(cmp.Or(req.Format, protocol.GraphASCII)))
	if err != nil {
		return protocol.GraphReply{}, wire(err)
	}
	g, err := p.Graph(flowstone.Format(f))
	return protocol.GraphReply{Graph: g}, wire(err)
}

func (c *Coordinator) apiAssets(ctx context.Context, req protocol.AssetsRequest) (protocol.AssetsReply, *protocol.Error) {
	p, perr := c.pipeline(req.Pipeline)
	if perr != nil {
		return protocol.AssetsReply{}, perr
	}
	return protocol.AssetsReply{Assets: p.Assets()}, nil
}

func (c *Coordinator) apiInfo(ctx context.Context, req protocol.InfoRequest) (protocol.InfoReply, *protocol.Error) {
	p, perr := c.pipeline(req.Pipeline)
	if perr != nil {
		return protocol.InfoReply{}, perr
	}
	info, err := p.AssetInfo(req.Asset)
	if err != nil {
		return protocol.InfoReply{}, wire(err)
	}
	for _, a := range bridge.Manifest(p, "").Assets {
		if a.Name == info.Name {
			return protocol.InfoReply{AssetSpec: a}, nil
		}
	}
	return protocol.InfoReply{}, protocol.Errorf(protocol.CodeInternal, "asset %q missing from its own manifest", req.Asset)
}

func (c *Coordinator) apiPipelines(ctx context.Context, req protocol.PipelinesRequest) (protocol.PipelinesReply, *protocol.Error) {
	return protocol.PipelinesReply{Pipelines: c.reg.summaries(ctx)}, nil
}
