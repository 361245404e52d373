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
// process registering on one Registerer share them.
type metrics struct {
	startedC   *prometheus.CounterVec
	succeededC *prometheus.CounterVec
	failedC    *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	depth      *prometheus.GaugeVec

	// pipelines holds each hosted pipeline's series, looked up once: a
	// vector's label lookup (hashing, locking) cost more than the rest of
	// a no-op task's bookkeeping.
	pipelines map[string]*pipelineMetrics
}

// pipelineMetrics are the series of one hosted pipeline.
type pipelineMetrics struct {
	started, succeeded prometheus.Counter
	succeededDuration  prometheus.Observer
	failedDuration     prometheus.Observer
	depth              [protocol.MaxPriority + 1]prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, hosted []*hosted) (*metrics, error) {
	m := &metrics{
		startedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowstone_worker_tasks_started_total",
			Help: "Tasks taken for execution.",
		}, []string{"pipeline"}),
		succeededC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowstone_worker_tasks_succeeded_total",
			Help: "Tasks completed with a result.",
		}, []string{"pipeline"}),
		failedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowstone_worker_tasks_failed_total",
			Help: "Tasks completed with an error, by error code.",
		}, []string{"pipeline", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flowstone_worker_task_duration_seconds",
			Help:    "Time from taking a task to completing it.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 11), // 0.5ms .. 9min
		}, []string{"pipeline", "outcome"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowstone_worker_queue_depth",
			Help: "Tasks waiting in a pipeline's queue at a priority, as of this worker's last fetch from it.",
		}, []string{"pipeline", "priority"}),
	}
	if reg != nil {
		var err error
		m.startedC, err = register(reg, m.startedC)
		if err == nil {
			m.succeededC, err = register(reg, m.succeededC)
		}
		if err == nil {
			m.failedC, err = register(reg, m.failedC)
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
		pm := &pipelineMetrics{started: m.startedC.WithLabelValues(h.name), succeeded: m.succeededC.WithLabelValues(h.name),
			succeededDuration: m.duration.WithLabelValues(h.name, "succeeded"),
			failedDuration:    m.duration.WithLabelValues(h.name, "failed")}
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

func (m *metrics) started(pipeline string) {
	if pm := m.pipelines[pipeline]; pm != nil {
		pm.started.Inc()
		return
	}
	m.startedC.WithLabelValues(pipeline).Inc()
}

func (m *metrics) succeeded(pipeline string, d time.Duration) {
	if pm := m.pipelines[pipeline]; pm != nil {
		pm.succeeded.Inc()
		pm.succeededDuration.Observe(d.Seconds())
		return
	}
	m.succeededC.WithLabelValues(pipeline).Inc()
	m.duration.WithLabelValues(pipeline, "succeeded").Observe(d.Seconds())
}

func (m *metrics) failed(pipeline, code string, d time.Duration) {
	m.failedC.WithLabelValues(pipeline, code).Inc()
	if pm := m.pipelines[pipeline]; pm != nil {
		pm.failedDuration.Observe(d.Seconds())
		return
	}
	m.duration.WithLabelValues(pipeline, "failed").Observe(d.Seconds())
}

func (m *metrics) queueDepth(s *source, pending uint64) {
	if pm := m.pipelines[s.h.name]; pm != nil && s.priority >= 0 && s.priority < len(pm.depth) {
		pm.depth[s.priority].Set(float64(pending))
		return
	}
	m.depth.WithLabelValues(s.h.name, strconv.Itoa(s.priority)).Set(float64(pending))
}
