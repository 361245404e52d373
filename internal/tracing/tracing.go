// Package tracing is the fleet's OpenTelemetry tracing: one run is one
// trace, from the client's request through the coordinator that drives it
// to the workers that execute its assets. The W3C trace context travels in
// the headers of API requests (traceparent), in a run's record (so that a
// coordinator adopting the run continues its trace) and in each task
// (Task.TraceParent: tasks share messages, so a header would not do).
//
// Tracing is off unless Setup is given an endpoint: the global tracer
// provider is then OpenTelemetry's no-op, and spans cost next to nothing.
package tracing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// instrumentation names the tracer.
const instrumentation = "github.com/flowstone-go/flowstone"

// propagator reads and writes W3C trace context (traceparent, tracestate).
var propagator = propagation.TraceContext{}

// Tracer is the fleet's tracer, from the global provider (no-op unless
// Setup installed one).
func Tracer() trace.Tracer { return otel.Tracer(instrumentation) }

// BatchTimeout is how long a finished span waits before it is exported
// with others.
const BatchTimeout = 2 * time.Second

// Setup installs a tracer provider that exports spans over OTLP/HTTP to
// endpoint ("http://collector:4318", or host:port for plain HTTP), named
// service, and returns the function that flushes and stops it. With an
// empty endpoint it installs nothing and the shutdown does nothing.
func Setup(ctx context.Context, service, endpoint string) (shutdown func(context.Context) error, err error) {
	if endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	opts := []otlptracehttp.Option{}
	switch {
	case strings.HasPrefix(endpoint, "http://"):
		opts = append(opts, otlptracehttp.WithEndpointURL(endpoint+"/v1/traces"), otlptracehttp.WithInsecure())
	case strings.HasPrefix(endpoint, "https://"):
		opts = append(opts, otlptracehttp.WithEndpointURL(endpoint+"/v1/traces"))
	default:
		opts = append(opts, otlptracehttp.WithEndpoint(endpoint), otlptracehttp.WithInsecure())
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter for %s: %w", endpoint, err)
	}
	res := resource.NewSchemaless(semconv.ServiceName(service))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(BatchTimeout)), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// headerCarrier adapts NATS headers to the propagator.
type headerCarrier nats.Header

func (h headerCarrier) Get(key string) string { return nats.Header(h).Get(key) }
func (h headerCarrier) Set(key, value string) { nats.Header(h).Set(key, value) }
func (h headerCarrier) Keys() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}

// Inject writes the trace context of ctx's span into h.
func Inject(ctx context.Context, h nats.Header) { propagator.Inject(ctx, headerCarrier(h)) }

// Extract returns ctx with the trace context h carries, if any.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return propagator.Extract(ctx, headerCarrier(h))
}

// TraceParent is the W3C traceparent of ctx's span, or "" without a
// sampled span.
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceParent returns ctx carrying the remote span context traceparent
// names ("" or a malformed one: ctx unchanged).
func WithTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}
