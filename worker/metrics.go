package worker

import (
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// Stats counts a worker's tasks since Start.
type Stats struct {
	// Started counts the tasks taken for execution (cached and refused
	// ones included; malformed messages are not tasks).
	Started uint64
	// Succeeded counts the tasks completed with a result.
	Succeeded uint64
	// Failed counts the tasks completed with an error, cancelled and
	// timed out ones included.
	Failed uint64
	// Running is how many tasks are executing or being completed now.
	Running int
}

// Stats returns the worker's counters. Tasks handed back to the queue by
// Stop count as started only.
func (w *Worker) Stats() Stats {
	w.mu.Lock()
	running := len(w.running)
	w.mu.Unlock()
	return Stats{Started: w.stats.started.Load(), Succeeded: w.stats.succeeded.Load(),
		Failed: w.stats.failed.Load(), Running: running}
}

type counters struct {
	started, succeeded, failed atomic.Uint64
}

// metrics are the worker's Prometheus collectors. Several workers of one
// process registering on one Registerer share them. Their pipeline and
// asset labels take the values of the hosted pipelines only, so the
// series are bounded by the assets the worker hosts.
type metrics struct {
	startedC    *prometheus.CounterVec
	succeededC  *prometheus.CounterVec
	failedC     *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	depth       *prometheus.GaugeVec
	redelivered *prometheus.CounterVec
	items       *prometheus.CounterVec

	// pipelines holds each hosted pipeline's series, looked up once: a
	// vector's label lookup (hashing, locking) cost more than the rest of
	// a no-op task's bookkeeping.
	pipelines map[string]*pipelineMetrics
}

// pipelineMetrics are the series of one hosted pipeline.
type pipelineMetrics struct {
	assets      map[string]*assetMetrics
	depth       [protocol.MaxPriority + 1]prometheus.Gauge
	redelivered prometheus.Counter
}

// assetMetrics are the series of one hosted asset.
type assetMetrics struct {
	started, succeeded prometheus.Counter
	succeededDuration  prometheus.Observer
	failedDuration     prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, hosted []*hosted) (*metrics, error) {
	m := &metrics{
		startedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowstone_worker_tasks_started_total",
			Help: "Tasks taken for execution.",
		}, []string{"pipeline", "asset"}),
		succeededC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowstone_worker_tasks_succeeded_total",
			Help: "Tasks completed with a result.",
		}, []string{"pipeline", "asset"}),
		failedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowstone_worker_tasks_failed_total",
			Help: "Tasks completed with an error, by error code.",
		}, []string{"pipeline", "asset", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flowstone_worker_task_duration_seconds",
			Help:    "Time from taking a task to completing it.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 11), // 0.5ms .. 9min
		}, []string{"pipeline", "asset", "outcome"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowstone_worker_queue_depth",
			Help: "Tasks waiting in a pipeline's queue at a priority, as of this worker's last fetch from it.",
		}, []string{"pipeline", "priority"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowstone_worker_tasks_redelivered_total",
			Help: "Tasks taken from a message delivered before (its worker died, stopped or lost its connection).",
		}, []string{"pipeline"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowstone_worker_scatter_items_total",
			Help: "Scatter items this worker ran, by how they ended (completed, failed, cancelled).",
		}, []string{"pipeline", "asset", "state"}),
	}
	if reg != nil {
		var err error
		for _, c := range []**prometheus.CounterVec{&m.startedC, &m.succeededC, &m.failedC, &m.redelivered, &m.items} {
			if err == nil {
				*c, err = register(reg, *c)
			}
		}
		if err == nil {
			m.duration, err = register(reg, m.duration)
		}
		if err == nil {
			m.depth, err = register(reg, m.depth)
		}
		if err != nil {
			return nil, err
		}
	}
	m.pipelines = make(map[string]*pipelineMetrics, len(hosted))
	for _, h := range hosted {
		// Series exist from the start, at zero.
		pm := &pipelineMetrics{assets: map[string]*assetMetrics{}, redelivered: m.redelivered.WithLabelValues(h.name)}
		for _, a := range h.p.Assets() {
			pm.assets[a] = &assetMetrics{started: m.startedC.WithLabelValues(h.name, a), succeeded: m.succeededC.WithLabelValues(h.name, a),
				succeededDuration: m.duration.WithLabelValues(h.name, a, "succeeded"),
				failedDuration:    m.duration.WithLabelValues(h.name, a, "failed")}
		}
		for prio := range pm.depth {
			pm.depth[prio] = m.depth.WithLabelValues(h.name, strconv.Itoa(prio))
		}
		m.pipelines[h.name] = pm
	}
	return m, nil
}

// register registers c, or returns the equal collector already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// asset returns the series of a hosted asset, or nil.
func (m *metrics) asset(pipeline, asset string) *assetMetrics {
	if pm := m.pipelines[pipeline]; pm != nil {
		return pm.assets[asset]
	}
	return nil
}

func (m *metrics) started(pipeline, asset string, redelivered bool) {
	if redelivered {
		if pm := m.pipelines[pipeline]; pm != nil {
			pm.redelivered.Inc()
		}
	}
	if am := m.asset(pipeline, asset); am != nil {
		am.started.Inc()
	}
}

func (m *metrics) succeeded(pipeline, asset string, d time.Duration) {
	if am := m.asset(pipeline, asset); am != nil {
		am.succeeded.Inc()
		am.succeededDuration.Observe(d.Seconds())
	}
}

func (m *metrics) failed(pipeline, asset, code string, d time.Duration) {
	if am := m.asset(pipeline, asset); am != nil {
		m.failedC.WithLabelValues(pipeline, asset, code).Inc()
		am.failedDuration.Observe(d.Seconds())
	}
}

// scatterItems counts the items of a batch this worker ran, by state.
func (m *metrics) scatterItems(pipeline, asset string, out []protocol.ItemOutcome) {
	if m.asset(pipeline, asset) == nil {
		return
	}
	var n [3]int
	for _, it := range out {
		switch it.State {
		case protocol.ItemCompleted:
			n[0]++
		case protocol.ItemFailed:
			n[1]++
		default:
			n[2]++
		}
	}
	for i, state := range []string{protocol.ItemCompleted, protocol.ItemFailed, protocol.ItemCancelled} {
		if n[i] > 0 {
			m.items.WithLabelValues(pipeline, asset, state).Add(float64(n[i]))
		}
	}
}

func (m *metrics) queueDepth(s *source, pending uint64) {
	if pm := m.pipelines[s.h.name]; pm != nil && s.priority >= 0 && s.priority < len(pm.depth) {
		pm.depth[s.priority].Set(float64(pending))
		return
	}
	m.depth.WithLabelValues(s.h.name, strconv.Itoa(s.priority)).Set(float64(pending))
}
