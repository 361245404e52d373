package coordinator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// observations are the coordinator's own counters and histograms: API
// requests by verb and outcome, runs by pipeline, asset and outcome, and
// tasks given up. Their labels take bounded values: the protocol's verbs
// and error codes, and the pipelines and assets the workers host.
type observations struct {
	requests    *prometheus.CounterVec
	requestTime *prometheus.HistogramVec
	runs        *prometheus.HistogramVec
	deadLetters *prometheus.CounterVec
}

func newObservations() *observations {
	return &observations{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowstone_api_requests_total",
			Help: "API requests this coordinator answered, by verb and outcome (ok, or the error code).",
		}, []string{"verb", "code"}),
		requestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flowstone_api_request_duration_seconds",
			Help:    "Time from an API request's arrival to its reply (a run's reply comes when it ends unless async).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 11), // 0.5ms .. 9min
		}, []string{"verb"}),
		runs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flowstone_run_duration_seconds",
			Help:    "Time a run took on this coordinator, from its start to its end, by pipeline, target asset and state (completed, failed, cancelled).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 11), // 1ms .. 17min
		}, []string{"pipeline", "asset", "state"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowstone_tasks_given_up_total",
			Help: "Tasks delivered MaxDeliver times without finishing (dead letters), failed for good by this coordinator.",
		}, []string{"pipeline"}),
	}
}

func (o *observations) collectors() []prometheus.Collector {
	return []prometheus.Collector{o.requests, o.requestTime, o.runs, o.deadLetters}
}

// answered counts a reply to verb: code is "" when it succeeded.
func (o *observations) answered(verb, code string, since time.Time) {
	if code == "" {
		code = "ok"
	}
	o.requests.WithLabelValues(verb, code).Inc()
	o.requestTime.WithLabelValues(verb).Observe(time.Since(since).Seconds())
}
