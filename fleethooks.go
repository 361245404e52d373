package flowstone

import (
	"context"
	"io"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/rs/zerolog"
)

// The fleet's packages (coordinator, worker, client, internal/...) need
// more of this package than its API: the resolvers of options, the wire
// form of errors, records, the executor. That machinery stays unexported
// here, and reaches them through package internal/bridge, to which
// fleetHooks hands it when this package is initialized (see
// docs/ARCHITECTURE.md, "The API and the bridge").
func init() { hook.Root = fleetHooks{} }

// fleetHooks has the methods internal/bridge asks of this package; each
// calls the unexported function of the same name.
type fleetHooks struct{}

func (fleetHooks) ResolveRun(pipeline, asset string, opts ...RunOption) (RunRequest, error) {
	return resolveRun(pipeline, asset, opts...)
}

func (fleetHooks) ResolveGet(opts ...GetOption) hook.GetRequest { return resolveGet(opts...) }

func (fleetHooks) ResolveInvalidate(opts ...InvalidateOption) (hook.InvalidateRequest, error) {
	return resolveInvalidate(opts...)
}

func (fleetHooks) ResolveBackfill(opts ...BackfillOption) (backfillRequest, error) {
	return resolveBackfill(opts...)
}

func (fleetHooks) ResolveGraph(opts ...GraphOption) GraphFormat { return resolveGraph(opts...) }

func (fleetHooks) WireError(e *Error) *protocol.Error { return e.wireError() }

func (fleetHooks) FromWire(w *protocol.Error) *Error { return fromWire(w) }

func (fleetHooks) NewResult(rec *Materialization, cached bool, codec Codec, open func(ctx context.Context) (io.ReadCloser, error)) *Result {
	return newResult(rec, cached, codec, open)
}

func (fleetHooks) Manifest(p *Pipeline, worker string) protocol.Manifest { return p.manifest(worker) }

func (fleetHooks) PipelineFromManifest(m protocol.Manifest) (*Pipeline, error) {
	return pipelineFromManifest(m)
}

func (fleetHooks) MarshalRecord(m *Materialization) ([]byte, error) { return marshalRecord(m) }

func (fleetHooks) UnmarshalRecord(b []byte) (*Materialization, error) { return unmarshalRecord(b) }

func (fleetHooks) MaterializationKey(pipeline, asset, partition string) string {
	return materializationKey(pipeline, asset, partition)
}

func (fleetHooks) ObjectKey(pipeline, asset, partition, runID string) string {
	return objectKey(pipeline, asset, partition, runID)
}

// NewEngine takes d as any: internal/bridge names its own Dispatcher
// interface, with the method of dispatcher.
func (fleetHooks) NewEngine(cfg EngineConfig, d any) (*Engine, error) {
	var disp dispatcher
	if d != nil {
		disp = d.(dispatcher)
	}
	return newEngine(cfg, disp)
}

// NewExecutor, EngineExecutor and ExecutorRecords return an *executor or a
// *records as any: internal/bridge wraps them, by their methods.
func (fleetHooks) NewExecutor(cfg hook.ExecutorConfig) (any, error) {
	x, err := newExecutor(cfg)
	if err != nil {
		return nil, err
	}
	return x, nil
}

func (fleetHooks) EngineExecutor(e *Engine) any { return e.x }

func (fleetHooks) ExecutorRecords(x any) any { return x.(*executor).records }

// NewAutomation returns a fleet coordinator's scheduler, not started, as
// any: internal/bridge uses it by its methods.
func (fleetHooks) NewAutomation(store kv.Store, clock hook.Clock, pipelines func() []*Pipeline, launch hook.Launcher[Pipeline],
	evaluate func(ctx context.Context, p *Pipeline, sensor, cursor string, now time.Time) (SensorResult, *Error), log zerolog.Logger, owner string) any {
	return newFleetAutomation(store, clock, pipelines, launch, evaluate, log, owner)
}

// AutomationStore returns the state store of the fleet's automation
// bucket, as any (by its methods: Schedules, Sensors, SetPaused).
func (fleetHooks) AutomationStore(store kv.Store, clock hook.Clock) any {
	if clock == nil {
		clock = realClock{}
	}
	return autoStore{kv: store, prefix: fleetAutoPrefix, clock: clock}
}

func (fleetHooks) EvaluateSensor(ctx context.Context, p *Pipeline, name, cursor string, now time.Time, log zerolog.Logger) (SensorResult, *Error) {
	return evaluateSensor(ctx, p, name, cursor, now, log)
}

// SetClock gives e's scheduler (StartAutomation) a clock, for tests of
// other packages (sensors) that move a fake one.
func (fleetHooks) SetClock(e *Engine, c hook.Clock) {
	e.mu.Lock()
	e.clock = c
	e.mu.Unlock()
}
