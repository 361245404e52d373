package coordinator

import (
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// observations are the coordinator's own counters and histograms: API
// requests by verb and outcome, runs by pipeline, asset and outcome, and
// tasks given up. Their labels take bounded values: the protocol's verbs
// and error codes, and the pipelines and assets the workers host.
type observations struct {
	mu     sync.Mutex
	errors map[string]map[string]int // verb → error code → replies

	requests    *prometheus.CounterVec
	requestTime *prometheus.HistogramVec
	runs        *prometheus.HistogramVec
	deadLetters *prometheus.CounterVec
}

func newObservations() *observations {
	return &observations{
		errors: map[string]map[string]int{},
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
	} else {
		o.mu.Lock()
		if o.errors[verb] == nil {
			o.errors[verb] = map[string]int{}
		}
		o.errors[verb][code]++
		o.mu.Unlock()
	}
	o.requests.WithLabelValues(verb, code).Inc()
	o.requestTime.WithLabelValues(verb).Observe(time.Since(since).Seconds())
}

// endpointErrors is what nats micro stats shows of an endpoint's error
// replies (in its "data").
type endpointErrors struct {
	Errors int            `json:"errors"`
	ByCode map[string]int `json:"errors_by_code,omitempty"`
}

// errorsOf returns verb's error replies so far.
func (o *observations) errorsOf(verb string) endpointErrors {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := endpointErrors{ByCode: maps.Clone(o.errors[verb])}
	for _, n := range out.ByCode {
		out.Errors += n
	}
	return out
}
