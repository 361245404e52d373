package coordinator_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// An operator sees API errors where they look: in nats micro stats and in
// the coordinator's metrics, by verb and error code; and runs' durations
// by pipeline, asset and state. The metrics lint clean (promtool's
// linter).
func TestAPIAndRunMetrics(t *testing.T) {
	e := newEnv(t)
	c := e.startCoordinator("c1")
	reg := prometheus.NewRegistry()
	c.RegisterMetrics(reg)
	e.startWorker(pipelines.Example())
	e.waitPipeline("example")

	for range 3 {
		_, perr := call[protocol.GetReply](e, protocol.VerbGet, protocol.GetRequest{V: protocol.Version, Pipeline: "nosuch", Asset: "sum"})
		if perr == nil || perr.Code != protocol.CodePipelineNotFound {
			t.Fatalf("get of an unknown pipeline: %v", perr)
		}
	}
	// A malformed request: refused before the verb runs.
	if _, perr := callRaw[protocol.StatusReply](e, protocol.VerbStatus, []byte(`{"v":1,`)); perr == nil || perr.Code != protocol.CodeBadRequest {
		t.Fatalf("a malformed status request: %v", perr)
	}
	if _, rec := e.run(protocol.RunRequest{V: protocol.Version, Pipeline: "example", Asset: "sum"}); rec.State != protocol.StateCompleted {
		t.Fatalf("run = %+v", rec)
	}

	// nats micro stats: the three error replies count as errors.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := e.nc.RequestWithContext(ctx, "$SRV.STATS."+protocol.ServiceName, nil)
	if err != nil {
		t.Fatal(err)
	}
	var stats struct {
		Endpoints []struct {
			Name      string `json:"name"`
			NumErrors int    `json:"num_errors"`
			Data      struct {
				Errors int            `json:"errors"`
				ByCode map[string]int `json:"errors_by_code"`
			} `json:"data"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(msg.Data, &stats); err != nil {
		t.Fatal(err)
	}
	for _, ep := range stats.Endpoints {
		switch ep.Name {
		case protocol.VerbGet:
			if ep.Data.Errors != 3 || ep.Data.ByCode[protocol.CodePipelineNotFound] != 3 {
				t.Errorf("micro stats of get: %+v; want 3 pipeline_not_found errors", ep)
			}
		case protocol.VerbStatus:
			if ep.NumErrors != 1 || ep.Data.ByCode[protocol.CodeBadRequest] != 1 {
				t.Errorf("micro stats of status: %+v; want the malformed request among its errors", ep)
			}
		case protocol.VerbRun:
			if ep.NumErrors != 0 || ep.Data.Errors != 0 {
				t.Errorf("micro stats of run: %+v; want no error", ep)
			}
		}
	}

	families := gather(t, reg)
	if got := sample(families, "flowstone_api_requests_total", map[string]string{"verb": "get", "code": "pipeline_not_found"}); got != 3 {
		t.Fatalf("get requests answered pipeline_not_found: %v, want 3", got)
	}
	if got := sample(families, "flowstone_run_duration_seconds", map[string]string{"pipeline": "example", "asset": "sum", "state": "completed"}); got != 1 {
		t.Fatalf("runs of example/sum completed: %v, want 1", got)
	}
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil || len(problems) > 0 {
		t.Fatalf("the coordinator's metrics do not lint: %v %+v", err, problems)
	}
}

func gather(t *testing.T, g prometheus.Gatherer) []*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// sample is the value of the series of name with labels: a counter's
// value, or a histogram's count; -1 if there is none.
func sample(mfs []*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}
